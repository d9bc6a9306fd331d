"""Shared test set-up: quiet TensorFlow, CPU only, no network."""

import os

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
# Tests never download: TFDS and Hugging Face must work from local files only.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('NO_GCE_CHECK', 'true')


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
  """configs/tiny.py reading synthetic TFRecords (4 tasks, 3 modalities), with multi-view
  evaluation for audio (3 clips) and video (2 temporal x 3 spatial)."""
  from polyvit_tf.configs import tiny  # pylint: disable=import-outside-toplevel
  from polyvit_tf.data import synthetic  # pylint: disable=import-outside-toplevel
  config = tiny.get_config()
  config.tasks.audio_a.eval_views = 3
  config.tasks.video_a.eval_views = 6
  out = tmp_path_factory.mktemp('tiny_records')
  return synthetic.write_synthetic_tfrecords(config, str(out), examples_per_class=3)


# Session fixtures shared by tests/export and tests/serving: one tiny run, exported once.
@pytest.fixture(scope='session')
def exported_base(tmp_path_factory) -> str:
  from tests.export import fixtures  # pylint: disable=import-outside-toplevel
  return fixtures.exported(tmp_path_factory)


@pytest.fixture(scope='session')
def exported_dir(exported_base) -> str:
  from polyvit_tf.export import latest_version_dir  # pylint: disable=import-outside-toplevel
  return latest_version_dir(exported_base)


@pytest.fixture(scope='session')
def tfds_data_dir(tmp_path_factory) -> str:
  """A TFDS data_dir with small real prepared data sets (tests/data/tfds_sets.py)."""
  from tests.data import tfds_sets  # pylint: disable=import-outside-toplevel
  return tfds_sets.write(str(tmp_path_factory.mktemp('tfds')))
