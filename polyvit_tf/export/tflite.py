"""TFLite export: one .tflite holding every task's signature (weights stored once), or one task.

Converted from an exported SavedModel version directory (savedmodel.py), through its
tensor-input task signatures. The TFLite signatures keep the numeric outputs (`logits`,
`probabilities`, `top_k_ids`, `top_k_scores`); class names ship beside the model:

  <stem>.tflite                the model, signatures named by task
  <stem>.labels/<task>.txt     one class name per line, line i = class id i
  <stem>.json                  manifest: the SavedModel's version (`source_version`, the
                               served version: polyvit_tf/versions.py), quantization, per
                               task its signature, input name,
                               shape and dtype, modality, activation, class names and label
                               file, and everything an app needs to make the inputs from
                               decoded media (`preprocessing`, export/preprocessing_spec.py)
                               and to combine views (`combine_views`); the export's report
                               adds the measured `agreement` with the SavedModel

The manifest (without `agreement`) is also embedded in the .tflite as the Model.metadata
entry `polyvit_manifest` (UTF-8 JSON in a buffer): the TFLite schema's generic metadata, the
way the converter stores its own CONVERSION_METADATA. Not the tflite-support
`TFLITE_METADATA` block (its writer needs protobuf < 4, which this stack cannot have, and its
schema has no log-mel front end, views or view combination). Read it without TensorFlow with
polyvit_tf.edge.reference_preprocess.read_embedded_manifest.

Quantization (`quantization=`):
  float32       no quantization
  float16       weights stored as float16 (dequantized at load on CPU)
  dynamic_int8  weights int8, activations float (dynamic-range quantization)
  int8          weights and activations int8, calibrated on a representative data set;
                ops without an int8 kernel stay float (builtins fallback), inputs and
                outputs stay float32
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Mapping

import ml_collections
import numpy as np
import tensorflow as tf

from polyvit_tf import versions
from polyvit_tf.edge import reference_preprocess
from polyvit_tf.export import preprocessing_spec
from polyvit_tf.export import savedmodel
from polyvit_tf.export import signatures as signatures_lib

QUANTIZATIONS = ('float32', 'float16', 'dynamic_int8', 'int8')
MANIFEST_FORMAT = 'polyvit_tf.tflite/2'
CALIBRATION_EXAMPLES = 16


def stem(out_path: str) -> str:
  return out_path[:-len('.tflite')] if out_path.endswith('.tflite') else out_path


def export_tflite(saved_model_dir: str, out_path: str, *, quantization: str = 'float32',
                  tasks: list[str] | None = None,
                  representative_data: Mapping[str, np.ndarray] | None = None,
                  version: int | None = None) -> str:
  """Converts the tensor signatures of `tasks` (default: all) into one .tflite at `out_path`.

  `version` is the SavedModel's version the manifest records (default: the version
  directory's, `versions.version_of`; the pipeline passes the version it pushes).

  `representative_data` (task -> float32 (n, *input_shape) preprocessed examples) calibrates
  full int8; without it, int8 calibrates on `demo_data.inputs(..., source='synthetic')` and
  logs a warning. Writes the label files and the manifest beside the model; returns out_path.
  """
  if quantization not in QUANTIZATIONS:
    raise ValueError(f'quantization must be one of {list(QUANTIZATIONS)}, got '
                     f'{quantization!r}.')
  meta = savedmodel.read_metadata(saved_model_dir)
  tasks = list(meta['tasks']) if tasks is None else list(tasks)
  unknown = [t for t in tasks if t not in meta['tasks']]
  if unknown or not tasks:
    raise ValueError(f'{saved_model_dir}: unknown tasks {unknown}; it has '
                     f'{list(meta["tasks"])}.')
  if quantization == 'int8' and representative_data is not None:
    missing = [t for t in tasks if t not in representative_data]
    if missing:
      raise ValueError(f'representative_data has no examples for tasks {missing}.')
  converter = tf.lite.TFLiteConverter.from_saved_model(_numeric_saved_model(saved_model_dir),
                                                       signature_keys=tasks)
  _configure(converter, quantization, meta, tasks, representative_data)
  meta = {**meta, versions.KEY: versions.check(
      versions.version_of(saved_model_dir) if version is None else version)}
  manifest = build_manifest(meta, savedmodel.read_config(saved_model_dir), tasks, out_path,
                            quantization)
  flatbuffer = embed_manifest(converter.convert(), manifest)
  tf.io.gfile.makedirs(os.path.dirname(os.path.abspath(out_path)))
  with tf.io.gfile.GFile(out_path, 'wb') as f:
    f.write(flatbuffer)
  write_labels(meta, tasks, out_path)
  write_manifest(manifest, out_path)
  return out_path


_NUMERIC_CACHE: dict[tuple[str, int], tempfile.TemporaryDirectory] = {}


def _numeric_saved_model(saved_model_dir: str) -> str:
  """A SavedModel of every task's numeric signature, made once per export in this process."""
  key = (os.path.abspath(saved_model_dir),
         tf.io.gfile.stat(os.path.join(saved_model_dir, 'saved_model.pb')).mtime_nsec)
  if key not in _NUMERIC_CACHE:
    tmp = tempfile.TemporaryDirectory(prefix='polyvit_tflite_')  # removed at exit
    tasks = list(savedmodel.read_metadata(saved_model_dir)['tasks'])
    _save_numeric_signatures(saved_model_dir, tasks, os.path.join(tmp.name, 'numeric'))
    _NUMERIC_CACHE[key] = tmp
  return os.path.join(_NUMERIC_CACHE[key].name, 'numeric')


def _save_numeric_signatures(saved_model_dir: str, tasks: list[str], out_dir: str) -> None:
  """Re-saves the task signatures without the string output (TFLite int8 has no strings)."""
  loaded = tf.saved_model.load(saved_model_dir)
  module = tf.Module()
  module.source = loaded
  sigs = {}

  def numeric(fn, name):
    def call(x):
      outputs = fn(**{name: x})
      return {k: outputs[k] for k in signatures_lib.NUMERIC_OUTPUT_KEYS}
    return call

  for task in tasks:
    fn = loaded.signatures[task]
    (name, spec), = fn.structured_input_signature[1].items()
    sigs[task] = tf.function(numeric(fn, name), input_signature=[
        tf.TensorSpec(spec.shape, spec.dtype, name=name)]).get_concrete_function()
  tf.saved_model.save(module, out_dir, signatures=sigs)


def _configure(converter: tf.lite.TFLiteConverter, quantization: str, meta: dict,
               tasks: list[str], representative_data: Mapping[str, np.ndarray] | None) -> None:
  if quantization == 'float32':
    return
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantization == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  elif quantization == 'int8':
    if representative_data is None:
      from polyvit_tf.export import demo_data  # pylint: disable=import-outside-toplevel
      logging.warning('int8 calibration on synthetic inputs (no representative data given); '
                      'pass representative_data for a deployable model.')
      representative_data = {
          t: demo_data.synthetic_inputs(meta['tasks'][t]['input_shape'], CALIBRATION_EXAMPLES,
                                        seed=i) for i, t in enumerate(tasks)}

    def dataset():
      for task in tasks:
        name = meta['signatures'][task]['input']
        for x in np.asarray(representative_data[task], np.float32):
          yield task, {name: x[np.newaxis]}

    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]


def _labels_dir(out_path: str) -> str:
  return stem(out_path) + '.labels'


def build_manifest(meta: dict, config: ml_collections.ConfigDict, tasks: list[str],
                   out_path: str, quantization: str) -> dict:
  """The manifest of the model at `out_path` (see the module doc); labels are relative paths."""
  labels_dir = os.path.relpath(_labels_dir(os.path.abspath(out_path)),
                               os.path.dirname(os.path.abspath(out_path)))
  manifest = {'format': MANIFEST_FORMAT, 'model': os.path.basename(out_path),
              'quantization': quantization, 'source_version': meta['version'],
              'config_name': meta.get('config_name', ''),
              'preprocessing_format': preprocessing_spec.FORMAT, 'tasks': {}}
  for task in tasks:
    t, sig = meta['tasks'][task], meta['signatures'][task]
    manifest['tasks'][task] = {
        'signature': task, 'input': sig['input'], 'dtype': sig['dtype'],
        'shape': sig['shape'], 'modality': t['modality'], 'multilabel': t['multilabel'],
        # The exported probabilities' activation (that of the task's loss); exports made
        # before it was recorded served sigmoids for multi-label tasks, softmax otherwise.
        'activation': t.get('activation', 'sigmoid' if t['multilabel'] else 'softmax'),
        'outputs': list(signatures_lib.NUMERIC_OUTPUT_KEYS),
        'top_k': min(int(meta['top_k']), len(t['class_names'])),
        'labels': os.path.join(labels_dir, f'{task}.txt'),
        'class_names': list(t['class_names']),
        'preprocessing': preprocessing_spec.for_task(config, task),
        'combine_views': preprocessing_spec.combine_views(config),
    }
  return manifest


def embed_manifest(flatbuffer: bytes, manifest: dict) -> bytes:
  """`flatbuffer` with `manifest` as the Model.metadata entry `polyvit_manifest` (replaced
  when present)."""
  # pylint: disable=import-outside-toplevel
  from tensorflow.lite.python import schema_py_generated as schema
  from tensorflow.lite.tools import flatbuffer_utils

  model = flatbuffer_utils.convert_bytearray_to_object(flatbuffer)
  buffer = schema.BufferT()
  buffer.data = np.frombuffer(json.dumps(manifest, sort_keys=True).encode('utf-8'), np.uint8)
  name = reference_preprocess.METADATA_NAME.encode('utf-8')
  model.metadata = [m for m in (model.metadata or []) if m.name != name]
  model.buffers.append(buffer)
  entry = schema.MetadataT()
  entry.name, entry.buffer = name, len(model.buffers) - 1
  model.metadata.append(entry)
  return flatbuffer_utils.convert_object_to_bytearray(model)


def write_labels(meta: dict, tasks: list[str], out_path: str) -> None:
  """`<stem>.labels/<task>.txt`: one class name per line, line i = class id i."""
  tf.io.gfile.makedirs(_labels_dir(out_path))
  for task in tasks:
    with tf.io.gfile.GFile(os.path.join(_labels_dir(out_path), f'{task}.txt'), 'w') as f:
      f.write('\n'.join(meta['tasks'][task]['class_names']) + '\n')


def write_manifest(manifest: dict, out_path: str) -> str:
  """Writes `<stem>.json`; returns its path."""
  path = stem(out_path) + '.json'
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(manifest, f, indent=2)
  return path


def read_manifest(out_path: str) -> dict:
  with tf.io.gfile.GFile(stem(out_path) + '.json') as f:
    return json.load(f)


def remove(out_path: str) -> None:
  """Deletes a converted model: the .tflite, its manifest and its label files."""
  for path in (out_path, stem(out_path) + '.json'):
    if tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)
  if tf.io.gfile.isdir(_labels_dir(out_path)):
    tf.io.gfile.rmtree(_labels_dir(out_path))


def read_labels(out_path: str, task: str) -> list[str]:
  with tf.io.gfile.GFile(os.path.join(_labels_dir(out_path), f'{task}.txt')) as f:
    return f.read().splitlines()
