"""Command lines: a config error fails before any data with the key named; the schedule
picture (Fig. 2 style) is written for a config."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np

from polyvit_tf.configs import tiny
from polyvit_tf.train import schedule_plot
from polyvit_tf.train import schedules

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_train_cli_config_error_exits_before_data(tmp_path):
  cmd = [sys.executable, '-m', 'polyvit_tf.train', '--config=tests/train/configs.py',
         f'--workdir={tmp_path}', '--data=tests.train.synthetic:refusing',
         '--config.schedule.name=round_robin']
  env = {**os.environ, 'PYTHONPATH': str(ROOT), 'TF_CPP_MIN_LOG_LEVEL': '2'}
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "Config error: schedule.name: unknown schedule 'round_robin'" in proc.stderr
  assert 'data was read' not in proc.stderr
  assert not (tmp_path / 'checkpoints').exists()


def test_schedule_picture(tmp_path):
  cfg = tiny.get_config()
  out = str(tmp_path / 'schedules.png')
  built = schedule_plot.plot(cfg, out, bins=16)
  assert [s.name for s in built] == list(schedules.SCHEDULES)
  assert os.path.getsize(out) > 10_000
  with open(out, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  occ = schedule_plot.occupancy(built[3], bins=16)  # weighted: each bin's shares sum to 1
  np.testing.assert_allclose(occ.sum(axis=0), 1.0)
  assert occ.shape == (4, 16)
