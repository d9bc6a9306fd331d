"""A fourth modality from one module (tests/modalities/sensor.py: 1-D sensor streams, 1-D
patches): train -> export (tensor and raw-input signatures) -> the local gRPC server -> the
client, without any other file knowing about it.

The module registers itself when imported; the fixture imports it for these tests only and
unregisters it afterwards, so no other test sees a fourth modality (its data field would be
in every config made meanwhile)."""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import sys

import numpy as np
import pytest

from pipelines import demo_prediction
from polyvit_tf import modalities
from polyvit_tf import train
from polyvit_tf.configs import specs
from polyvit_tf.data import pipeline
from polyvit_tf.data import synthetic
from polyvit_tf.export import read_metadata
from polyvit_tf.export import savedmodel
from serving import client as client_lib
from serving import local_server

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def sensor():
  module = importlib.import_module('tests.modalities.sensor')  # importing it registers it
  yield module
  modalities.unregister(module.MODALITY.name)
  del sys.modules[module.__name__]


def test_nothing_outside_the_module_names_the_modality(sensor):
  """The library, the pipelines and the serving code never mention `sensor`: the module and
  its own registry line are all it took."""
  mentions = [str(p.relative_to(ROOT)) for top in ('polyvit_tf', 'pipelines', 'serving')
              for p in (ROOT / top).rglob('*.py')
              if re.search(r'\bsensor\b', p.read_text(), re.IGNORECASE)]
  assert mentions == []
  assert modalities.names()[:3] == ('image', 'audio', 'video')
  assert modalities.get('sensor') is sensor.MODALITY


def test_config_is_resolved_and_checked_by_the_module(sensor):
  spec = specs.resolve(sensor.get_config()).validate()
  assert spec.modalities['sensor'].grid == (8,)
  assert spec.data['gestures'].options == sensor.SensorOptions(32, 3, 1.0, True, 2)
  assert spec.task('gestures').loss == 'softmax_xent'  # the base Modality's default
  bad = sensor.get_config()
  bad.tasks.gestures.data.sensor_scale = 0.0
  with pytest.raises(specs.ConfigError, match=r'tasks.gestures.data.sensor_scale'):
    specs.resolve(bad).data
  bad = sensor.get_config()
  bad.modalities.sensor.patch_size = (4, 4)
  with pytest.raises(specs.ConfigError, match=r'modalities.sensor: .* 1 entries \(T,\)'):
    specs.resolve(bad).modalities


@pytest.mark.slow
def test_train_export_serve_and_classify(sensor, tmp_path):
  config = synthetic.write_synthetic_tfrecords(sensor.get_config(), str(tmp_path / 'data'),
                                               examples_per_class=4)
  workdir = str(tmp_path / 'run')
  metrics = train.run(config, workdir)
  assert metrics['gestures']['num_examples'] == 16

  version_dir = savedmodel.export_saved_model(workdir, str(tmp_path / 'models'))
  meta = read_metadata(version_dir)
  assert meta['signatures']['gestures'] == {
      'task': 'gestures', 'kind': 'tensor', 'input': 'sensor', 'dtype': 'float32',
      'shape': [-1, 32, 3]}
  assert meta['signatures']['gestures_raw']['input'] == 'csv'

  # The first eval example as a CSV file (the modality writes it) and as preprocessed views.
  csv, labels = demo_prediction.write_media_file(config, 'gestures', str(tmp_path / 'media'))
  assert csv.endswith('.csv') and labels == [0]
  views = next(iter(pipeline.eval_dataset(config, 'gestures')))['inputs'].numpy()[0]
  npy = str(tmp_path / 'view.npy')
  np.save(npy, views[0])

  with local_server.LocalServer(str(tmp_path / 'models'), port=0) as server:
    client = client_lib.make_client(f'127.0.0.1:{server.port}')
    lines = client_lib.classify(client, 'gestures', [csv, npy])
    assert [l.split(': ')[0] for l in lines] == [csv, npy]
    for line in lines:  # top-4 of 4 classes, by name
      assert sorted(n.split(' ')[0] for n in line.split(': ')[1].split(', ')) == sorted(
          ('still', 'walk', 'run', 'shake'))
    with open(csv, 'rb') as f:
      served = client.predict('gestures_raw', {'csv': np.array([f.read()], dtype=object)})
    tensor = client.predict('gestures', {'sensor': views})
    client.close()
  # Served from the CSV text = the eval pipeline's two views, logits averaged (the default
  # eval.view_averaging), softmax (the task's loss); the CSV keeps 6 decimals.
  mean = tensor['logits'].mean(0)
  np.testing.assert_allclose(served['logits'][0], mean, atol=1e-4)
  np.testing.assert_allclose(served['probabilities'][0],
                             np.exp(mean) / np.exp(mean).sum(), atol=1e-5)
  assert os.path.exists(os.path.join(workdir, 'eval', 'metrics.json'))
