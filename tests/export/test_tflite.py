"""TFLite: multi-signature files agree with the SavedModel; sizes, labels and quantization."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.lite.tools import flatbuffer_utils

from polyvit_tf.edge import reference_preprocess
from polyvit_tf.export import demo_data
from polyvit_tf.export import report as report_lib
from polyvit_tf.export import preprocessing_spec
from polyvit_tf.export import savedmodel
from polyvit_tf.export import tflite as tflite_lib
from tests.export import fixtures

TASKS = ['image_a', 'video_a']  # two modalities keep the conversions few


@pytest.fixture(scope='module')
def data(exported_dir):
  meta = savedmodel.read_metadata(exported_dir)
  shape = lambda t: meta['tasks'][t]['input_shape']  # noqa: E731
  held_out = {t: demo_data.synthetic_inputs(shape(t), 12, seed=i) for i, t in enumerate(TASKS)}
  calibration = {t: demo_data.synthetic_inputs(shape(t), 12, seed=10 + i)
                 for i, t in enumerate(TASKS)}
  return held_out, calibration, report_lib.saved_model_logits(exported_dir, held_out)


@pytest.fixture(scope='module')
def float32_report(exported_dir, data, tmp_path_factory):
  held_out, _, reference = data
  out = str(tmp_path_factory.mktemp('tflite'))
  return report_lib.variant_report(exported_dir, out, 'float32', held_out,
                                   reference_logits=reference)


def test_float32_multi_signature_agrees_with_saved_model(float32_report):
  r = float32_report
  interpreter = tf.lite.Interpreter(model_path=r.path)
  signatures = interpreter.get_signature_list()
  assert sorted(signatures) == sorted(TASKS)
  assert signatures['video_a']['inputs'] == ['video']
  assert sorted(signatures['video_a']['outputs']) == sorted(
      ['logits', 'probabilities', 'top_k_ids', 'top_k_scores'])
  for t in r.tasks:
    assert t.num_examples == 12
    assert t.max_abs_logit_diff < 1e-4, t
    assert t.top1_agreement == 1.0
    assert t.latency_ms > 0


def test_weights_are_stored_once(float32_report):
  r = float32_report
  # Two tasks in one file cost less than two single-task files: the encoder is shared.
  assert set(r.single_task_bytes) == set(TASKS)
  assert max(r.single_task_bytes.values()) < r.size_bytes < r.single_task_total
  table = report_lib.format_report([r])
  assert '| float32 | video_a | 12 |' in table


def test_labels_and_manifest(float32_report, exported_dir):
  path = float32_report.path
  meta = savedmodel.read_metadata(exported_dir)
  assert tflite_lib.read_labels(path, 'image_a') == [f'digit {i}' for i in range(10)]
  assert tflite_lib.read_labels(path, 'video_a') == [f'class_{i}' for i in range(4)]
  with open(tflite_lib.stem(path) + '.json') as f:
    manifest = json.load(f)
  assert manifest['quantization'] == 'float32'
  assert manifest['source_version'] == meta['version'] == int(os.path.basename(exported_dir))
  assert manifest['tasks']['video_a']['shape'] == meta['signatures']['video_a']['shape']
  assert os.path.exists(os.path.join(os.path.dirname(path),
                                     manifest['tasks']['image_a']['labels']))
  config = savedmodel.read_config(exported_dir)
  for task, entry in manifest['tasks'].items():
    assert entry['preprocessing'] == json.loads(json.dumps(
        preprocessing_spec.for_task(config, task)))
    assert entry['class_names'] == meta['tasks'][task]['class_names']
    assert entry['combine_views']['mode'] == config.eval.view_averaging
  video = manifest['tasks']['video_a']['preprocessing']
  assert (video['views']['count'], video['frames']) == (2, 4)


def test_manifest_is_embedded_in_the_model(float32_report, tmp_path):
  path = float32_report.path
  manifest = {k: v for k, v in tflite_lib.read_manifest(path).items() if k != 'agreement'}
  assert reference_preprocess.read_embedded_manifest(path) == manifest
  with open(path, 'rb') as f:
    flatbuffer = f.read()
  again = tflite_lib.embed_manifest(flatbuffer, {**manifest, 'model': 'other'})
  names = [m.name for m in flatbuffer_utils.convert_bytearray_to_object(again).metadata]
  assert names.count(reference_preprocess.METADATA_NAME.encode()) == 1  # replaced
  assert b'CONVERSION_METADATA' in names  # the converter's own entry is kept
  assert reference_preprocess.read_embedded_manifest(again)['model'] == 'other'
  # The rewritten model still runs and gives the same logits.
  (tmp_path / 'again.tflite').write_bytes(again)
  x = np.zeros((1, 32, 32, 3), np.float32)
  outs = [tf.lite.Interpreter(model_path=p).get_signature_runner('image_a')(image=x)['logits']
          for p in (path, str(tmp_path / 'again.tflite'))]
  np.testing.assert_array_equal(*outs)


def test_agreement_gate(float32_report, tmp_path, caplog):
  r = dataclasses.replace(float32_report, path=str(tmp_path / 'm.tflite'), single_task_paths={})
  shutil.copy(float32_report.path, r.path)
  tflite_lib.write_manifest(tflite_lib.read_manifest(float32_report.path), r.path)
  assert report_lib.check_agreement(r, 1.0) == []  # float32 agrees on every example
  agreement = tflite_lib.read_manifest(r.path)['agreement']
  assert agreement['action'] == 'passed' and agreement['tasks']['image_a']['top1_agreement'] == 1
  assert '| float32 | 1.0 | - | passed |' in report_lib.format_report([r])
  low = dataclasses.replace(r, tasks=[dataclasses.replace(r.tasks[0], top1_agreement=0.75),
                                      *r.tasks[1:]])
  with pytest.raises(report_lib.AgreementError,
                     match=rf'{r.tasks[0].task}: top-1 agreement 0.750 over 12 examples'):
    report_lib.check_agreement(low, 0.9)
  assert tflite_lib.read_manifest(r.path)['agreement']['action'] == 'refused'
  with caplog.at_level('WARNING'):
    assert report_lib.check_agreement(low, 0.9, allow_low_agreement=True) == [r.tasks[0].task]
  assert 'LOW AGREEMENT, KEPT BECAUSE ALLOWED' in caplog.text
  assert f'| float32 | 0.9 | {r.tasks[0].task} | kept (--allow_low_agreement) |' in (
      report_lib.format_report([low]))
  with pytest.raises(ValueError, match='min_top1_agreement must be in'):
    report_lib.check_agreement(r, 1.5)
  report_lib.remove_variant(low)
  assert sorted(os.listdir(tmp_path)) == []


BOUNDS = fixtures.QUANTIZED_BOUNDS


@pytest.mark.parametrize('quantization', sorted(BOUNDS))
def test_quantized_variants_within_bounds(exported_dir, data, float32_report, tmp_path,
                                          quantization):
  held_out, calibration, reference = data
  path = tflite_lib.export_tflite(exported_dir, str(tmp_path / f'{quantization}.tflite'),
                                  quantization=quantization, tasks=TASKS,
                                  representative_data=calibration)
  assert os.path.getsize(path) < float32_report.size_bytes
  max_rel, min_top1 = BOUNDS[quantization]
  for t in report_lib.compare_tflite(path, reference, held_out):
    assert t.max_abs_logit_diff <= max_rel * t.logit_scale, t
    assert t.top1_agreement >= min_top1, t
  if quantization == 'int8':  # activations really are int8
    details = tf.lite.Interpreter(model_path=path).get_tensor_details()
    assert sum(d['dtype'] == np.int8 for d in details) > len(details) // 2


def test_bad_arguments_are_named(exported_dir, tmp_path):
  with pytest.raises(ValueError, match='quantization must be one of'):
    tflite_lib.export_tflite(exported_dir, str(tmp_path / 'x.tflite'), quantization='int4')
  with pytest.raises(ValueError, match=r"unknown tasks \['nope'\]"):
    tflite_lib.export_tflite(exported_dir, str(tmp_path / 'x.tflite'), tasks=['nope'])
  with pytest.raises(ValueError, match=r"no examples for tasks \['video_a'\]"):
    tflite_lib.export_tflite(exported_dir, str(tmp_path / 'x.tflite'), quantization='int8',
                             tasks=TASKS, representative_data={'image_a': np.zeros((1, 32, 32,
                                                                                    3))})
