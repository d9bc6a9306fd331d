"""Fixtures of the data tests: the tiny config with small synthetic TFRecords."""

from __future__ import annotations

import pytest

from polyvit_tf.configs import tiny
from polyvit_tf.data import synthetic


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
  """configs/tiny.py reading synthetic TFRecords (4 tasks, 3 modalities), with multi-view
  evaluation for audio (3 clips) and video (2 temporal x 3 spatial)."""
  config = tiny.get_config()
  config.tasks.audio_a.eval_views = 3
  config.tasks.video_a.eval_views = 6
  out = tmp_path_factory.mktemp('tiny_records')
  return synthetic.write_synthetic_tfrecords(config, str(out), examples_per_class=3)
