"""Subprocess helper of test_distributed: trains the 'equiv' test config with the default
strategy on one CPU device and with MirroredStrategy on two logical CPU devices (same global
batches), and saves both final weights to <out>/default.npz and <out>/mirrored.npz; then a
mirrored run stopped at step 4 and resumed in a new trainer (<out>/mirrored_resumed.npz).

  python -m tests.train.strategy_runner <out_dir>
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')

from polyvit_tf.train import strategy as strategy_lib  # noqa: E402

strategy_lib.configure_cpu_devices(2)  # before anything else starts TensorFlow

import numpy as np  # noqa: E402

from polyvit_tf.train import loop  # noqa: E402
from tests.train import configs  # noqa: E402
from tests.train import synthetic  # noqa: E402


def _run(out: str, name: str, strategy: str, stop_at: int = 0) -> loop.Trainer:
  cfg = configs.get_config('equiv')
  cfg.distribution.strategy = strategy
  cfg.train.total_steps_override = stop_at
  trainer = loop.Trainer(cfg, os.path.join(out, name), data=synthetic)
  assert trainer.strategy.num_replicas_in_sync == (2 if strategy == 'mirrored' else 1)
  trainer.train()
  trainer.close()
  return trainer


def main(out: str) -> None:
  for name in ('default', 'mirrored'):
    trainer = _run(out, name, name)
    np.savez(os.path.join(out, f'{name}.npz'), **loop.final_weights(trainer))
  # Mirrored, stopped after 4 steps (checkpoint) and resumed by a new trainer: each task
  # stream restarts at its position x 2 local replicas.
  _run(out, 'mirrored_resumed', 'mirrored', stop_at=4)
  trainer = _run(out, 'mirrored_resumed', 'mirrored')
  np.savez(os.path.join(out, 'mirrored_resumed.npz'), **loop.final_weights(trainer))


if __name__ == '__main__':
  main(sys.argv[1])
