"""Pieces shared by the training benchmarks (no flags): one-task configs at the paper's token
counts, constant batches, and the trainer's own step function on them."""

from __future__ import annotations

import ml_collections
import numpy as np
import tensorflow as tf

from polyvit_tf.configs import base
from polyvit_tf.model import polyvit
from polyvit_tf.train import optim
from polyvit_tf.train import schedules
from polyvit_tf.train.steps import StepFactory

NUM_CLASSES = {'image': 1000, 'audio': 527, 'video': 400}
# Examples per step: every matmul still has >= 400 rows (batch x tokens), and a step of
# B at 1569 tokens stays under half a minute on a loaded 2-core CPU.
PAPER_BATCH = {('Ti', 'image'): 4, ('Ti', 'audio'): 4, ('Ti', 'video'): 1,
               ('S', 'image'): 2, ('S', 'audio'): 2, ('S', 'video'): 1,
               ('B', 'image'): 1, ('B', 'audio'): 1, ('B', 'video'): 1}
QUICK_BATCH = {('Ti', m): 8 for m in NUM_CLASSES} | {('S', m): 4 for m in NUM_CLASSES} | {
    ('B', m): 2 for m in NUM_CLASSES}


def modalities(quick: bool) -> ml_collections.ConfigDict:
  if not quick:
    return base.paper_modalities()
  return ml_collections.ConfigDict(dict(
      image=base.modality_config((224, 224), (16, 16), 3),
      audio=base.modality_config((400, 128), (16, 16), 3),
      video=base.modality_config((16, 112, 112), (4, 16, 16), 3)))


def one_task_config(size: str, modality: str, batch: int, *, quick: bool, xla: bool,
                    bf16: bool, modality_configs: ml_collections.ConfigDict | None = None,
                    num_layers: int = 0) -> ml_collections.ConfigDict:
  """A single-task config (the task is named after its modality): `size` encoder,
  `modality` at paper (or quick) token counts, or as `modality_configs` gives it;
  `num_layers` > 0 replaces the size's encoder depth."""
  task = base.task_config(modality, NUM_CLASSES[modality], train_steps=1000,
                          warmup_steps=10, learning_rate=0.03, batch_size=batch)
  mods = modality_configs if modality_configs is not None else modalities(quick)
  model = base.model_config(size, **({'num_layers': num_layers} if num_layers else {}))
  return base.assemble(model, mods, {modality: task},
                       name=f'bench_{size}_{modality}',
                       train=dict(use_xla=xla, mixed_precision=bf16))


def constant_batch(config: ml_collections.ConfigDict, task: str, seed: int = 0) -> dict:
  spec = config.tasks[task]
  shape = tuple(config.modalities[spec.modality].input_size) + (
      config.modalities[spec.modality].channels,)
  rng = np.random.default_rng(seed)
  labels = np.zeros((spec.batch_size, spec.num_classes), np.float32)
  labels[np.arange(spec.batch_size), rng.integers(0, spec.num_classes, spec.batch_size)] = 1
  return {'inputs': rng.uniform(-1, 1, (spec.batch_size,) + shape).astype(np.float32),
          'labels': labels}


class StepRunner:
  """The trainer's step function of `task` on a constant batch, built as the trainer builds
  it (model under the strategy scope, one optimizer over every variable). `xla_scope`
  (with `train.use_xla`): 'step' compiles the whole replica step, 'gradients' the
  forward/backward pass only (polyvit_tf.train.steps)."""

  def __init__(self, config: ml_collections.ConfigDict, task: str, xla_scope: str = 'step'):
    self.config, self.task = config, task
    self.strategy = tf.distribute.get_strategy()
    self.model = polyvit.build(config, seed=int(config.seed),
                               mixed_precision=bool(config.train.get('mixed_precision')))
    self.optimizer = optim.Optimizer(config, self.model.trainable_variables)
    self.step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.position = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.factory = StepFactory(self.model, self.optimizer, self.strategy, config,
                               step=self.step_var, data_positions={task: self.position},
                               xla_scope=xla_scope)
    batch = constant_batch(config, task)
    self.iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    self.fn = self.factory.step_fn(schedules.TaskStep(task))
    self.lr = tf.constant(1e-4, tf.float32)

  def __call__(self) -> float:
    (loss,), _, ok = self.fn((self.iterator,), self.lr)
    if not bool(ok):
      raise FloatingPointError(f'{self.task}: non-finite loss {float(loss)}')
    return float(loss)
