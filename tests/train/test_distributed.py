"""MirroredStrategy (two logical CPU devices) and MultiWorkerMirroredStrategy (two worker
processes on loopback) give the same update as one device on the same global batches, and a
resumed mirrored run continues exactly."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import portpicker
import pytest

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.model import weights

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT = 600


def _env(**extra):
  env = {**os.environ, 'PYTHONPATH': str(ROOT), 'TF_CPP_MIN_LOG_LEVEL': '2',
         'CUDA_VISIBLE_DEVICES': ''}
  env.update(extra)
  return env


def _start(args, log, **env):
  return subprocess.Popen([sys.executable] + args, cwd=ROOT, env=_env(**env),
                          stdout=open(log, 'w'), stderr=subprocess.STDOUT)


def _finish(proc, log):
  proc.wait(timeout=TIMEOUT)
  assert proc.returncode == 0, pathlib.Path(log).read_text()[-4000:]


@pytest.mark.slow
def test_mirrored_and_multi_worker_equal_one_device(tmp_path):
  local = tmp_path / 'local'
  runner = _start(['-m', 'tests.train.strategy_runner', str(local)], tmp_path / 'runner.log')
  ports = [portpicker.pick_unused_port() for _ in range(2)]
  workers = []
  for i in range(2):
    tf_config = {'cluster': {'worker': [f'localhost:{p}' for p in ports]},
                 'task': {'type': 'worker', 'index': i}}
    workers.append(_start(
        ['-m', 'polyvit_tf.train', '--config=tests/train/configs.py:equiv',
         f'--workdir={tmp_path / "multi_worker"}', '--data=tests.train.synthetic',
         '--config.distribution.strategy=multi_worker'],
        tmp_path / f'worker{i}.log', TF_CONFIG=json.dumps(tf_config)))
  _finish(runner, tmp_path / 'runner.log')
  for i, w in enumerate(workers):
    _finish(w, tmp_path / f'worker{i}.log')

  one = dict(np.load(local / 'default.npz'))
  mirrored = dict(np.load(local / 'mirrored.npz'))
  _, model = workdir_lib.load_model(str(tmp_path / 'multi_worker'))
  multi = weights.get(model)
  assert sorted(one) == sorted(mirrored) == sorted(multi)
  err_mirrored = max(float(np.abs(one[k] - mirrored[k]).max()) for k in one)
  err_multi = max(float(np.abs(one[k] - multi[k]).max()) for k in one)
  print(f'max |mirrored - one device| = {err_mirrored:.3g}; '
        f'max |multi-worker - one device| = {err_multi:.3g}')
  # Same global batch, gradients summed over replicas: equal up to float32 summation order.
  assert err_mirrored < 2e-6 and err_multi < 2e-6
  resumed = dict(np.load(local / 'mirrored_resumed.npz'))
  assert all(np.array_equal(resumed[k], mirrored[k]) for k in mirrored)  # exact resume
  with open(tmp_path / 'multi_worker' / 'eval' / 'metrics.json') as f:
    assert json.load(f)['image_a']['num_examples'] == 37


@pytest.mark.slow
def test_clipping_placement_differs_on_two_replicas(tmp_path):
  """optimizer.clip_per_replica_modalities under MirroredStrategy (2 CPU devices): replica
  gradients (3, 0, 0) and (0, 0, 0.4), shares of the global mean-loss gradient, lr 1."""
  log = tmp_path / 'clip.log'
  _finish(_start(['-m', 'tests.train.clip_runner', str(tmp_path)], log), log)
  line = next(l for l in log.read_text().splitlines() if l.startswith('CLIP_RESULT '))
  r = json.loads(line[len('CLIP_RESULT '):])
  assert r['replicas'] == 2
  # After the all-reduce: the sum (3, 0, 0.4) is clipped to norm 1.
  total = np.array([3.0, 0.0, 0.4])
  after = np.array([1.0, -2.0, 0.5]) - total / np.linalg.norm(total)
  np.testing.assert_allclose(r['after']['a'] + r['after']['b'][0], after, atol=1e-6)
  assert r['after']['norm'] == pytest.approx(np.linalg.norm(total))
  # Per replica: each replica's own mean-loss gradient (2x its share), (6, 0, 0) and
  # (0, 0, 0.8), is clipped to norm 1 -> (1, 0, 0) and (0, 0, 0.8); their mean is applied.
  per_replica = np.array([1.0, -2.0, 0.5]) - np.array([0.5, 0.0, 0.4])
  np.testing.assert_allclose(r['per_replica']['a'] + r['per_replica']['b'][0], per_replica,
                             atol=1e-6)
  assert r['per_replica']['norm'] == pytest.approx((6.0 + 0.8) / 2)
  print(f'one step: max |per-replica - after| = {np.abs(per_replica - after).max():.4g}; '
        f'4 audio training steps: max |weights difference| = {r["train_max_diff"]:.4g}')
  assert r['train_max_diff'] > 1e-3  # the audio steps of a real run clip per replica
