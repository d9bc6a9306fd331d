"""The built-in demo data: offline, deterministic builds; the demo config's pipelines."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from polyvit_tf.configs import demo
from polyvit_tf.data import pipeline
from polyvit_tf.data import records
from polyvit_tf.data import stats
from polyvit_tf.data.demo import builder
from polyvit_tf.configs import specs as specs_lib


@pytest.fixture(scope='module')
def two_builds(tmp_path_factory):
  """Every demo data set built twice, with the network switched off."""
  def no_network(*args, **kwargs):
    raise OSError('network access during a demo build')

  roots = [tmp_path_factory.mktemp(f'demo{i}') for i in range(2)]
  mp = pytest.MonkeyPatch()
  mp.setattr(socket.socket, 'connect', no_network)
  try:
    dirs = [builder.build_all(str(root)) for root in roots]
  finally:
    mp.undo()
  return roots, dirs


def test_builds_are_identical_and_complete(two_builds):
  _, (first, second) = two_builds
  assert sorted(first) == sorted(builder.DATASETS)
  config = demo.get_config()
  for name in builder.DATASETS:
    assert builder.fingerprint(first[name]) == builder.fingerprint(second[name]), name
    info = records.read_info(first[name])
    task = config.tasks[name]
    assert info['modality'] == task.modality
    assert tuple(info['class_names']) == tuple(task.class_names)
    assert set(info['splits']) == {'train', 'validation', 'test'}
  sizes = {n: records.read_info(first[n])['splits']['train']['num_examples']
           for n in builder.DATASETS}
  assert sizes['digit_groups'] < min(v for k, v in sizes.items() if k != 'digit_groups') / 3


def test_ensure_reuses_a_current_build(two_builds):
  roots, (first, _) = two_builds
  before = builder.fingerprint(first['digits'])
  assert builder.ensure('digits', str(roots[0])) == first['digits']
  assert builder.fingerprint(first['digits']) == before


@pytest.mark.parametrize('variant', ['', 'small'])
def test_demo_config_pipelines(two_builds, variant):
  roots, _ = two_builds
  config = demo.get_config(variant)
  spec = specs_lib.resolve(config).validate()
  for task in config.tasks:
    config.tasks[task].data.data_dir = str(roots[0])
    config.tasks[task].data.shuffle_buffer = 64  # first batch without reading whole splits
  for task in config.tasks:
    t = spec.task(task)
    shape = spec.input_shape(task)
    if variant == 'small':
      assert config.tasks[task].batch_size == 8
      full_steps = demo.get_config().tasks[task].train_steps
      assert config.tasks[task].train_steps == max(4, full_steps // 25)
      continue
    batch = next(iter(pipeline.train_dataset(config, task, seed=0)))
    assert batch['inputs'].shape == (config.tasks[task].batch_size, *shape)
    assert np.isfinite(batch['inputs'].numpy()).all()
    views = next(iter(pipeline.eval_dataset(config, task, batch_size=4)))['inputs']
    assert views.shape == (4, config.tasks[task].eval_views, *shape)


def test_tones_statistics_match_the_config(two_builds):
  roots, _ = two_builds
  config = demo.get_config()
  config.tasks.tones.data.data_dir = str(roots[0])
  result = stats.audio_norm_stats(config, 'tones')
  assert result['num_examples'] == 720 and result['skipped'] == 0
  assert abs(result['mean'] - demo.TONES_NORM_MEAN) < 1e-3
  assert abs(result['std'] - demo.TONES_NORM_STD) < 1e-3
