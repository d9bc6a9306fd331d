"""SavedModel export: every task's signatures in one SavedModel, in a TF Serving version layout.

  <out>/<version>/saved_model.pb, variables/        the model (keras.export.ExportArchive)
  <out>/<version>/assets.extra/polyvit_export.json  tasks, signatures, inputs, class names
  <out>/<version>/assets.extra/polyvit_config.json  the run's config (polyvit_tf.configs.io)
  <out>/<version>/assets.extra/tf_serving_warmup_requests
                                                    one PredictionLog per signature (raw
                                                    and tf.Example ones with tiny real
                                                    media made here);
                                                    TF Serving replays them at load

A version is written to a temporary directory beside it and renamed into place, so a server
watching `<out>` never sees a half-written version. The version (default: 1 + the highest
under `<out>`) is the directory's name and polyvit_export.json's `version`
(polyvit_tf/versions.py: the one version rule).
"""

from __future__ import annotations

import json
import os

import keras
import ml_collections
import numpy as np
import tensorflow as tf

from polyvit_tf import versions
from polyvit_tf import workdir as workdir_lib
from polyvit_tf.configs import io as config_io
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import features
from polyvit_tf.export import signatures as signatures_lib
from polyvit_tf.model import PolyViT
from polyvit_tf.model import prediction as prediction_lib

METADATA_FILE = versions.METADATA_FILE
CONFIG_FILE = 'polyvit_config.json'
WARMUP_FILE = 'tf_serving_warmup_requests'
ASSETS_EXTRA = versions.ASSETS_EXTRA

next_version = versions.next_version
latest_version_dir = versions.latest_version_dir


def export_model(model: PolyViT, config: ml_collections.ConfigDict, out_dir: str, *,
                 version: int | None = None, top_k: int = signatures_lib.DEFAULT_TOP_K,
                 raw: bool = True) -> str:
  """Writes `model`'s signatures as `<out_dir>/<version>/`; returns that directory."""
  version = versions.check(next_version(out_dir) if version is None else version)
  final = os.path.join(out_dir, str(version))
  if tf.io.gfile.exists(final):
    raise FileExistsError(f'{final} exists; TF Serving versions are immutable, pick another.')
  tmp = os.path.join(out_dir, f'.tmp-{version}')
  if tf.io.gfile.exists(tmp):
    tf.io.gfile.rmtree(tmp)
  tf.io.gfile.makedirs(out_dir)

  try:
    sigs = signatures_lib.all_signatures(model, config, top_k=top_k, raw=raw)
    archive = keras.export.ExportArchive()
    for task in model.task_names:
      archive.track(model.model_for(task))
    for sig in sigs:
      archive.add_endpoint(sig.name, sig.fn, input_signature=[sig.input_spec])
    archive.write_out(tmp, verbose=False)

    extra = os.path.join(tmp, ASSETS_EXTRA)
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, METADATA_FILE), 'w') as f:
      json.dump(export_metadata(model, config, sigs, version=version, top_k=top_k), f,
                indent=2)
    config_io.save(config, os.path.join(extra, CONFIG_FILE))
    write_warmup_requests(model, config, sigs, os.path.join(extra, WARMUP_FILE))
    tf.io.gfile.rename(tmp, final)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.rmtree(tmp)
  return final


def export_saved_model(workdir: str, out_dir: str, *, version: int | None = None) -> str:
  """Exports the latest checkpoint of the run in `workdir` to `<out_dir>/<version>/`.

  `version` defaults to one more than the largest existing version. Returns the version
  directory (what TF Serving loads, and what `export_tflite` converts).
  """
  config, model = workdir_lib.load_model(workdir)
  return export_model(model, config, out_dir, version=version)


def export_metadata(model: PolyViT, config: ml_collections.ConfigDict,
                    sigs: list[signatures_lib.Signature], *, version: int,
                    top_k: int) -> dict:
  """What a client needs besides the signature defs: tasks, modalities, class names, and
  how the probabilities are made (`activation`, `view_averaging`)."""
  spec = specs_lib.resolve(config)
  return {
      'format': 'polyvit_tf.export/1',
      'config_name': config.get('name', ''),
      'version': version,
      'top_k': top_k,
      'serving_default': sigs[0].name,
      'tasks': {
          task: {
              'modality': model.task(task).modality,
              'num_classes': model.task(task).num_classes,
              'multilabel': model.task(task).multilabel,
              'input_shape': list(model.input_shape(task)),
              'eval_views': spec.task(task).eval_views,
              'activation': prediction_lib.PredictionSpec.of(spec, task).activation,
              'view_averaging': spec.eval.view_averaging,
              'class_names': list(spec.task(task).class_names),
              'signatures': {s.kind: s.name for s in sigs if s.task == task},
          } for task in model.task_names},
      'signatures': {
          s.name: {'task': s.task, 'kind': s.kind, 'input': s.input_spec.name,
                   'dtype': s.input_spec.dtype.name,
                   'shape': [d if d is not None else -1 for d in s.input_spec.shape.as_list()]}
          for s in sigs},
  }


def read_metadata(version_dir: str) -> dict:
  with tf.io.gfile.GFile(os.path.join(version_dir, ASSETS_EXTRA, METADATA_FILE)) as f:
    return json.load(f)


def read_config(version_dir: str) -> ml_collections.ConfigDict:
  """The config the exported model was built from."""
  return config_io.load(os.path.join(version_dir, ASSETS_EXTRA, CONFIG_FILE))


def warmup_input(model: PolyViT, config: ml_collections.ConfigDict,
                 sig: signatures_lib.Signature) -> np.ndarray:
  """A batch of one valid input of `sig`: zeros for tensor signatures, tiny real media made
  by the task's modality module for the raw ones (`warmup_input`: e.g. a 16 x 16 JPEG, one
  second of a 440 Hz tone as a WAV, a clip of JPEG / uint8 frames), and for the tf.Example
  one a serialized example of the modality's synthetic payload at the task's geometry, so
  that warming up runs the parsers and decoders and passes their checks."""
  if sig.kind == 'tensor':
    return np.zeros((1,) + model.input_shape(sig.task), np.float32)
  task = model.task(sig.task)
  geometry = model.modalities[task.modality]
  if sig.kind == signatures_lib.EXAMPLES:
    opts = specs_lib.resolve(config).data[sig.task].options
    payload = geometry.impl.synthetic_payload([0], task.num_classes, geometry, opts,
                                              np.random.default_rng(0))
    return np.array([features.example('warmup', 0, payload).SerializeToString()], object)
  return geometry.impl.warmup_input(sig.kind, geometry)


def write_warmup_requests(model: PolyViT, config: ml_collections.ConfigDict,
                          sigs: list[signatures_lib.Signature], path: str) -> None:
  """A TFRecord of PredictionLogs: one batch of one `warmup_input` per signature, and one
  for serving_default (the first signature)."""
  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import predict_pb2
  from tensorflow_serving.apis import prediction_log_pb2

  with tf.io.TFRecordWriter(path) as writer:
    for name, sig in [(s.name, s) for s in sigs] + [('serving_default', sigs[0])]:
      request = predict_pb2.PredictRequest()
      request.model_spec.signature_name = name
      request.inputs[sig.input_spec.name].CopyFrom(
          tf.make_tensor_proto(warmup_input(model, config, sig)))
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())
