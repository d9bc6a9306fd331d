"""One traced training step per step kind of the schedule (polyvit_tf/train/schedules.py).

Every replica runs the same step: the host reads the step's kind from the schedule (one task,
or every task for the accumulated schedule) and calls that kind's step function, which pulls
one batch from the distributed iterator of each of its tasks and runs forward, backward (the
tasks' gradients summed), all-reduce and the shared optimizer update on every replica.
Shapes are static (drop_remainder batches) and nothing leaves the device inside a step (TPU).

With `train.use_xla` each replica's step compiles WHOLE as one XLA computation, as a TPU
compiles it: forward, backward, the tasks' gradients summed, all-reduce, clipping (per
replica or after the all-reduce) and the optimizer update (`tf.function(jit_compile=True)`,
which raises naming the op rather than falling back when an op cannot compile). Only the
`next()` of each task's iterator stays outside, in the step's host-side tf.function.
`xla_scope='gradients'` compiles the forward/backward pass alone (as `train.use_xla` did
before; the benchmarks' `xla` variant); it is what a step over several CPU devices compiles,
where TensorFlow cannot compile a replica step whole (strategy.compiles_replica_steps).

The per-replica loss is sum(per-example losses) / global batch, so the all-reduced (summed)
gradient equals the gradient of the mean loss over the global batch: N replicas give the
same update as one device on the same global batch.
"""

from __future__ import annotations

import ml_collections
import tensorflow as tf
from absl import logging

from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.model.polyvit import PolyViT
from polyvit_tf.train import losses
from polyvit_tf.train import schedules
from polyvit_tf.train import strategy as strategy_lib
from polyvit_tf.train.optim import Optimizer


XLA_SCOPES = ('step', 'gradients')


class StepFactory:
  """Builds (and caches) the tf.functions of a run's training steps."""

  def __init__(self, model: PolyViT, optimizer: Optimizer, strategy: tf.distribute.Strategy,
               config: ml_collections.ConfigDict, *, step: tf.Variable,
               data_positions: dict[str, tf.Variable], encoder_training: bool = True,
               xla_scope: str = 'step'):
    if xla_scope not in XLA_SCOPES:
      raise ValueError(f'xla_scope must be one of {XLA_SCOPES}, got {xla_scope!r}')
    self.model, self.optimizer, self.strategy = model, optimizer, strategy
    self.use_xla = specs_lib.resolve(config).train.use_xla
    self.xla_scope = xla_scope if self.use_xla else None
    if self.xla_scope == 'step' and not strategy_lib.compiles_replica_steps(strategy):
      logging.warning('train.use_xla: %s cannot compile a replica step whole (several CPU '
                      'devices); only the forward/backward pass is compiled.',
                      strategy_lib.describe(strategy))
      self.xla_scope = 'gradients'
    self.step = step
    self.data_positions = data_positions
    self.encoder_training = encoder_training
    self._train: dict = {}
    self._replica: dict = {}
    self._grad_fns: dict = {}

  # ------------------------------------------------------------------------ gradients
  def _grad_fn(self, task: str):
    """(batch) -> (loss, {optimizer index: gradient}) for one replica's batch of `task`."""
    if task in self._grad_fns:
      return self._grad_fns[task]
    spec = self.model.task(task)
    keras_model = self.model.model_for(task)
    index = self.optimizer.index
    used = [v for v in self.model.variables_for(task) if v.path in index]
    num_replicas = self.strategy.num_replicas_in_sync
    training = self.encoder_training

    def compute(inputs, labels):
      with tf.GradientTape() as tape:
        logits = keras_model(inputs, training=training)
        per_example = losses.per_example_loss(spec.loss, labels, logits)
        global_batch = tf.cast(tf.shape(per_example)[0] * num_replicas, tf.float32)
        loss = tf.reduce_sum(per_example) / global_batch
      grads = tape.gradient(loss, used)
      return loss, grads

    if self.xla_scope == 'gradients':
      compute = tf.function(compute, jit_compile=True)

    def fn(batch):
      loss, grads = compute(batch['inputs'], batch['labels'])
      return loss, {index[v.path]: g for v, g in zip(used, grads) if g is not None}

    self._grad_fns[task] = fn
    return fn

  # ---------------------------------------------------------------------------- train
  def replica_fn(self, kind: schedules.Step):
    """(batches, lr) -> (per-task losses, grad norm, ok): one replica's step of `kind`, run
    in replica context (`strategy.run`); with `train.use_xla` a jit_compile tf.function."""
    self.step_fn(kind)
    return self._replica[kind]

  def step_fn(self, kind: schedules.Step):
    """tf.function (iterators, lr) -> (per-task losses, grad norm, ok) of a step of `kind`
    (polyvit_tf.train.schedules): one batch from the iterator of each of the kind's tasks,
    their gradients summed, one update. `iterators` holds one iterator per task of the kind,
    in its order."""
    if kind in self._train:
      return self._train[kind]
    grad_fns = [self._grad_fn(t) for t in kind.tasks]
    optimizer, strategy = self.optimizer, self.strategy
    positions = [self.data_positions[t] for t in kind.tasks]
    per_replica = optimizer.clips_per_replica([self.model.task(t).modality for t in kind.tasks])

    def replica_step(batches, lr):
      total, task_losses = {}, []
      for grad_fn, batch in zip(grad_fns, batches):
        loss, grads = grad_fn(batch)
        task_losses.append(loss)
        for i, g in grads.items():
          total[i] = g if i not in total else total[i] + g
      norm, ok = optimizer.apply_gradients(total, lr, tf.add_n(task_losses),
                                           clip_per_replica=per_replica)
      return tuple(task_losses), norm, ok

    if self.xla_scope == 'step' and not strategy_lib.is_tpu(strategy):
      replica_step = tf.function(replica_step, jit_compile=True)  # a TPU compiles it itself

    @tf.function
    def step(iterators, lr):
      batches = tuple(next(it) for it in iterators)
      task_losses, norm, ok = strategy.run(replica_step, args=(batches, lr))
      task_losses = tuple(strategy.reduce(tf.distribute.ReduceOp.SUM, l, axis=None)
                          for l in task_losses)
      norm = strategy.experimental_local_results(norm)[0]
      ok = strategy.experimental_local_results(ok)[0]
      increment = tf.cast(ok, tf.int64)
      for position in positions:
        position.assign_add(increment)
      self.step.assign_add(increment)
      return task_losses, norm, ok

    self._train[kind], self._replica[kind] = step, replica_step
    return step
