"""Exact resume: a training subprocess killed with SIGKILL and restarted from its work
directory ends with the weights of an uninterrupted run (same config and seed)."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.model import weights

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT = 600


def _start(workdir, log, data='tests.train.synthetic'):
  cmd = [sys.executable, '-m', 'polyvit_tf.train', '--config=tests/train/configs.py:resume',
         f'--workdir={workdir}', f'--data={data}']
  env = {**os.environ, 'PYTHONPATH': str(ROOT), 'TF_CPP_MIN_LOG_LEVEL': '2',
         'CUDA_VISIBLE_DEVICES': ''}
  return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, 'w'),
                          stderr=subprocess.STDOUT)


def _step(workdir) -> int:
  path = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
  return int(path.rsplit('-', 1)[1]) if path else 0


@pytest.mark.slow
def test_sigkill_and_resume_equals_uninterrupted_run(tmp_path):
  reference, victim = str(tmp_path / 'reference'), str(tmp_path / 'victim')
  ref = _start(reference, tmp_path / 'reference.log')
  # Same data, delivered slowly (sleeps only), so the run can be caught mid-way.
  proc = _start(victim, tmp_path / 'victim.log', 'tests.train.synthetic:slow')
  deadline = time.monotonic() + TIMEOUT
  while _step(victim) < 10 and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.05)
  assert proc.poll() is None, 'the run ended before it could be killed'
  proc.send_signal(signal.SIGKILL)  # no chance to save: the newest checkpoint is step 10
  proc.wait(timeout=60)
  killed_at = _step(victim)
  assert proc.returncode == -signal.SIGKILL and 10 <= killed_at < 30

  resumed = _start(victim, tmp_path / 'resumed.log')
  for p, log in ((resumed, 'resumed.log'), (ref, 'reference.log')):
    p.wait(timeout=TIMEOUT)
    assert p.returncode == 0, (tmp_path / log).read_text()[-4000:]
  assert f'at step {killed_at}' in (tmp_path / 'resumed.log').read_text()
  assert _step(victim) == _step(reference) == 30

  a = weights.get(workdir_lib.load_model(reference)[1])
  b = weights.get(workdir_lib.load_model(victim)[1])
  err = max(float(np.abs(a[k] - b[k]).max()) for k in a)
  print(f'killed at checkpoint {killed_at}; max |resumed - uninterrupted| = {err}')
  assert err == 0.0
