"""The local TFX pipeline end to end (LocalDagRunner, sqlite ML Metadata, Beam DirectRunner).

One tiny demo run goes through every component and ends blessed, pushed and with a TFLite
artifact, every artifact and the local server naming the pushed version; a second run with unreachable thresholds reuses the trained model from the cache,
is not blessed and pushes nothing; a data set with out-of-range labels and a missing feature
stops at the validation gate, before the Trainer. The evaluator is never taken from the cache:
its baseline is the model served from the serving directory.
"""

from __future__ import annotations

import io
import json
import os

import grpc
import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tfx.utils import path_utils
from PIL import Image

from pipelines import layout
from pipelines.components import gate as gate_lib
from pipelines import list_runs
from pipelines import run_local
from polyvit_tf.configs import base
from polyvit_tf.configs import demo
from polyvit_tf.data import features
from polyvit_tf.data import records
from polyvit_tf.edge import reference_preprocess
from polyvit_tf.export import savedmodel
from polyvit_tf.export import tflite as tflite_lib
from polyvit_tf.modalities import image as image_modality
from serving import local_server
from tests.pipelines import tiny

pytestmark = pytest.mark.slow
UNFINISHED = '41'
_props = list_runs._props  # pylint: disable=protected-access


def _producer(store, artifact_id: int):
  """The execution that output `artifact_id`."""
  events = [e for e in store.get_events_by_artifact_ids([artifact_id])
            if e.type == metadata_store_pb2.Event.OUTPUT]
  return store.get_executions_by_id([events[0].execution_id])[0]


def _inputs(store, execution_id: int) -> list:
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if e.type == metadata_store_pb2.Event.INPUT]
  return store.get_artifacts_by_id([e.artifact_id for e in events])


@pytest.fixture(scope='module')
def demo_runs(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('pipeline'))
  config = tiny.demo_config(str(tmp_path_factory.mktemp('demo_data')))
  # An unfinished push someone left: never a baseline, but the next version is above it, so
  # the pushed version (42) differs from the one the Trainer's own copy records (1).
  os.makedirs(os.path.join(layout.serving_dir(root), UNFINISHED, 'variables'))
  first = run_local.run(config, root)
  rerun = run_local.run(config, root)  # same config: everything reused, nothing re-pushed
  for task in config.tasks.keys():
    config.pipeline.thresholds[task] = 1.01  # unreachable
  second = run_local.run(config, root)
  return root, first, rerun, second


def test_first_run_is_blessed_pushed_and_exported(demo_runs):
  root, first, _, _ = demo_runs
  assert first.blessed is True
  assert set(first.metrics) == {'digits', 'digit_groups', 'tones', 'motion'}
  assert all(0.0 <= m['top1'] <= 1.0 for m in first.metrics.values())
  assert first.pushed_to and first.pushed_to.startswith(layout.serving_dir(root))
  assert tf.io.gfile.exists(os.path.join(first.pushed_to, 'saved_model.pb'))
  assert len(first.tflite) == 1 and os.path.getsize(first.tflite[0]) > 10_000
  assert all(s == 'COMPLETE' for s in first.states.values()), first.states


def _served_version(serving_dir: str) -> int:
  """The version GetModelMetadata of the local gRPC server reports for `serving_dir`."""
  with local_server.LocalServer(serving_dir, port=0, warmup=False) as server:
    with grpc.insecure_channel(f'127.0.0.1:{server.port}') as channel:
      request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
      request.model_spec.name = 'polyvit'
      response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
          request, timeout=60)
  return response.model_spec.version.value


def test_the_pushed_version_is_the_one_every_artifact_and_the_server_report(demo_runs):
  root, first, rerun, _ = demo_runs
  version = int(os.path.basename(first.pushed_to))
  assert version == 42 and first.version == version
  store = list_runs.open_store(layout.metadata_path(root))
  # The Trainer's copy records its work dir's version (1), the pushed copy 42, and the rerun
  # still recognised the served model as the candidate: the identity ignores the version.
  trained = [a for a in store.get_artifacts_by_type('Model')
             if 'format' not in a.custom_properties][0]
  assert savedmodel.read_metadata(path_utils.serving_model_path(trained.uri))['version'] == 1
  assert rerun.new_model is False and rerun.version == version
  blessing = _props(store.get_artifacts_by_type('ModelBlessing')[0])
  assert blessing['version'] == version and blessing['reasons'].startswith(f'version {version}:')
  pushed = _props(store.get_artifacts_by_type('PushedModel')[0])
  assert pushed['pushed_version'] == str(version)
  evaluation = store.get_artifacts_by_type('ModelEvaluation')[0]
  with open(os.path.join(evaluation.uri, 'metrics.json')) as f:
    assert json.load(f)['version'] == version
  assert savedmodel.read_metadata(first.pushed_to)['version'] == version
  tflite_path = first.tflite[0]
  assert tflite_lib.read_manifest(tflite_path)['source_version'] == version
  assert reference_preprocess.read_embedded_manifest(tflite_path)['source_version'] == version
  tflite = [a for a in store.get_artifacts_by_type('Model') if 'format' in a.custom_properties]
  assert _props(tflite[0])['version'] == version
  assert _served_version(layout.serving_dir(root)) == version


def test_ml_metadata_records_the_lineage(demo_runs):
  root, _, _, _ = demo_runs
  store = list_runs.open_store(layout.metadata_path(root))
  pusher = list_runs.executions_of(store, 'Pusher')[0]
  model = [a for a in _inputs(store, pusher.id)
           if store.get_artifact_types_by_id([a.type_id])[0].name == 'Model'][0]
  trainer = _producer(store, model.id)
  assert list_runs.node_id(store, trainer) == 'Trainer'
  examples = [a for a in _inputs(store, trainer.id)
              if store.get_artifact_types_by_id([a.type_id])[0].name == 'Examples'][0]
  assert list_runs.node_id(store, _producer(store, examples.id)) == 'PolyViTExampleGen'
  evaluation = [a for a in store.get_artifacts_by_type('ModelEvaluation')][0]
  assert 'digits/top1' in evaluation.custom_properties


def test_rerun_reuses_the_cache_and_does_not_push_the_same_model_again(demo_runs):
  root, first, rerun, _ = demo_runs
  for node in ('PolyViTExampleGen', 'StatisticsGen', 'Trainer'):
    assert rerun.states[node] == 'CACHED', (node, rerun.states)
  assert rerun.states['PolyViTEvaluator'] == 'COMPLETE'  # never cached: reads what is served
  assert rerun.blessed is True and rerun.new_model is False
  assert rerun.metrics == first.metrics  # the evaluator re-ran on the same model and data
  assert rerun.pushed_to is None and rerun.tflite == []
  assert sorted(os.listdir(layout.serving_dir(root))) == [UNFINISHED, '42']


def test_second_run_reuses_the_model_and_is_not_pushed(demo_runs):
  root, first, _, second = demo_runs
  assert second.states['Trainer'] == 'CACHED'
  assert second.states['PolyViTExampleGen'] == 'CACHED'
  assert second.states['PolyViTEvaluator'] == 'COMPLETE'
  assert second.blessed is False
  assert second.pushed_to is None and second.tflite == []
  # Only the first run's model was pushed.
  assert sorted(os.listdir(layout.serving_dir(root))) == [UNFINISHED, '42']
  text = list_runs.format_runs(list_runs.summarize(
      list_runs.open_store(layout.metadata_path(root))))
  assert 'BLESSED' in text and 'not blessed' in text


def _png(seed: int) -> bytes:
  pixels = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
  out = io.BytesIO()
  Image.fromarray(pixels).save(out, format='PNG')
  return out.getvalue()


def test_bad_data_stops_before_training(tmp_path):
  data = tmp_path / 'bad'
  for split in ('train', 'test'):
    examples = [image_modality.example(f'{split}/{i}', i % 12, _png(i)) for i in range(12)]
    no_image = tf.train.Example()
    no_image.features.feature[features.ID].bytes_list.value.append(b'no_image')
    no_image.features.feature[features.LABELS].int64_list.value.append(1)
    records.write_split(str(data), split, examples + [no_image])
  config = demo.get_config('small')
  config.tasks = {'bad_digits': base.task_config(
      'image', 10, train_steps=2, warmup_steps=1, learning_rate=0.03, batch_size=4,
      data=base.data_config(f'tfrecord:{data}', eval_split='test'))}
  config.pipeline.thresholds = {'bad_digits': 0.0}
  with pytest.raises(gate_lib.DataAnomaliesError) as failure:
    run_local.run(config, str(tmp_path / 'root'))
  message = str(failure.value)
  # Both problems are named, per split: the out-of-range label and the missing feature.
  for split in ('bad_digits_train', 'bad_digits_eval'):
    assert f'{split}: labels: Out-of-range values (Unexpectedly large value: 11.)' in message
    assert f'{split}: image/encoded: Column dropped' in message
  store = list_runs.open_store(layout.metadata_path(str(tmp_path / 'root')))
  gate = list_runs.executions_of(store, 'gate_bad_digits')
  assert gate and gate[0].last_known_state == metadata_store_pb2.Execution.FAILED
  assert not list_runs.executions_of(store, 'Trainer')
