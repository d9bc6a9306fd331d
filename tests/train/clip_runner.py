"""Subprocess helper of test_distributed's clipping test: gradient-clipping placement under
MirroredStrategy over two logical CPU devices, printed as one JSON line.

  python -m tests.train.clip_runner <out_dir>

1. The optimizer alone: replica 0 and replica 1 hold different gradients; one SGD step with
   clipping after the all-reduce and one with per-replica clipping, from the same weights.
2. The trainer: the audio task of the 'equiv' test config (4 steps) trained with the
   default `optimizer.clip_per_replica_modalities` (video, audio) and with () (clipped after
   the all-reduce, as image steps are); the final weights' largest difference.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')

from polyvit_tf.train import strategy as strategy_lib  # noqa: E402

strategy_lib.configure_cpu_devices(2)  # before anything else starts TensorFlow

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from polyvit_tf.configs import base  # noqa: E402
from polyvit_tf.train import loop  # noqa: E402
from polyvit_tf.train import optim  # noqa: E402
from tests.train import configs  # noqa: E402
from tests.train import synthetic  # noqa: E402

# Per-replica shares of the gradient of the global mean loss (what the steps hand over).
REPLICA_GRADS = ({0: [3.0, 0.0], 1: [[0.0]]}, {0: [0.0, 0.0], 1: [[0.4]]})


def optimizer_step(strategy, per_replica: bool) -> dict:
  cfg = base.base_config()  # SGD, momentum 0.9, grad_clip_norm 1.0
  with strategy.scope():
    a = keras.Variable(np.array([1.0, -2.0], np.float32), name='a')
    b = keras.Variable(np.array([[0.5]], np.float32), name='b')
    opt = optim.Optimizer(cfg, [a, b])

  @tf.function
  def step():
    def fn():
      rid = tf.distribute.get_replica_context().replica_id_in_sync_group
      grads = {i: tf.where(tf.equal(rid, 0), tf.constant(REPLICA_GRADS[0][i], tf.float32),
                           tf.constant(REPLICA_GRADS[1][i], tf.float32)) for i in (0, 1)}
      return opt.apply_gradients(grads, tf.constant(1.0), tf.constant(1.0),
                                 clip_per_replica=per_replica)
    norm, ok = strategy.run(fn)
    return strategy.experimental_local_results(norm)[0], strategy.experimental_local_results(ok)[0]

  norm, ok = step()
  return {'a': a.numpy().tolist(), 'b': b.numpy().tolist(), 'norm': float(norm),
          'ok': bool(ok)}


def train(out: str, name: str, per_replica_modalities) -> dict:
  cfg = configs.get_config('equiv')
  del cfg.tasks['image_a']  # audio steps only: the ones whose clipping placement differs
  cfg.distribution.strategy = 'mirrored'
  cfg.optimizer.clip_per_replica_modalities = tuple(per_replica_modalities)
  trainer = loop.Trainer(cfg, os.path.join(out, name), data=synthetic)
  assert trainer.strategy.num_replicas_in_sync == 2
  trainer.train()
  trainer.close()
  return loop.final_weights(trainer)


def max_diff(x: dict, y: dict) -> float:
  return max(float(np.abs(x[k] - y[k]).max()) for k in x)


def main(out: str) -> None:
  cfg = configs.get_config('equiv')
  cfg.distribution.strategy = 'mirrored'
  strategy = strategy_lib.from_config(cfg)  # the one the trainers below use too
  result = {'replicas': strategy.num_replicas_in_sync,
            'after': optimizer_step(strategy, False),
            'per_replica': optimizer_step(strategy, True)}
  default = train(out, 'default', ('video', 'audio'))
  after = train(out, 'after', ())
  result['train_max_diff'] = max_diff(default, after)
  result['train_audio_head_diff'] = max(
      float(np.abs(default[k] - after[k]).max()) for k in default if k.startswith('head_audio'))
  print('CLIP_RESULT ' + json.dumps(result))


if __name__ == '__main__':
  main(sys.argv[1])
