"""One traced training step per task (and one for the accumulated schedule), one eval step.

Every replica runs the same task in a step: the host picks the task from the schedule and
calls that task's step function, which pulls one batch from the task's distributed iterator
and runs forward, backward, all-reduce and the shared optimizer update on every replica.
Shapes are static (drop_remainder batches), nothing leaves the device inside a step (TPU), and
with `train.use_xla` the forward/backward pass is compiled with XLA (jit_compile).

The per-replica loss is sum(per-example losses) / global batch, so the all-reduced (summed)
gradient equals the gradient of the mean loss over the global batch: N replicas give the
same update as one device on the same global batch.
"""

from __future__ import annotations

from typing import Sequence

import ml_collections
import tensorflow as tf

from polyvit_tf.model.polyvit import PolyViT
from polyvit_tf.train import losses
from polyvit_tf.train.optim import Optimizer


class StepFactory:
  """Builds (and caches) the tf.functions of a run's steps."""

  def __init__(self, model: PolyViT, optimizer: Optimizer, strategy: tf.distribute.Strategy,
               config: ml_collections.ConfigDict, *, step: tf.Variable,
               data_positions: dict[str, tf.Variable], encoder_training: bool = True):
    self.model, self.optimizer, self.strategy = model, optimizer, strategy
    self.use_xla = bool(config.train.use_xla)
    self.step = step
    self.data_positions = data_positions
    self.encoder_training = encoder_training
    self._train: dict = {}
    self._eval: dict = {}
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

    if self.use_xla:
      compute = tf.function(compute, jit_compile=True)

    def fn(batch):
      loss, grads = compute(batch['inputs'], batch['labels'])
      return loss, {index[v.path]: g for v, g in zip(used, grads) if g is not None}

    self._grad_fns[task] = fn
    return fn

  # ---------------------------------------------------------------------------- train
  def train_step(self, task: str):
    """tf.function (iterator, lr) -> (mean loss over the global batch, grad norm, ok)."""
    if task in self._train:
      return self._train[task]
    grad_fn, optimizer, strategy = self._grad_fn(task), self.optimizer, self.strategy
    position = self.data_positions[task]
    per_replica = optimizer.clips_per_replica([self.model.task(task).modality])

    def replica_step(batch, lr):
      loss, grads = grad_fn(batch)
      norm, ok = optimizer.apply_gradients(grads, lr, loss, clip_per_replica=per_replica)
      return loss, norm, ok

    @tf.function
    def step(iterator, lr):
      batch = next(iterator)
      loss, norm, ok = strategy.run(replica_step, args=(batch, lr))
      loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
      norm = strategy.experimental_local_results(norm)[0]
      ok = strategy.experimental_local_results(ok)[0]
      increment = tf.cast(ok, tf.int64)
      position.assign_add(increment)
      self.step.assign_add(increment)
      return loss, norm, ok

    self._train[task] = step
    return step

  def accumulated_step(self, tasks: Sequence[str]):
    """tf.function (iterators, lr) -> (per-task losses, grad norm, ok): one update from the
    summed gradients of one batch of every task (the accumulated schedule)."""
    key = ('*',) + tuple(tasks)
    if key in self._train:
      return self._train[key]
    grad_fns = [self._grad_fn(t) for t in tasks]
    optimizer, strategy = self.optimizer, self.strategy
    positions = [self.data_positions[t] for t in tasks]
    per_replica = optimizer.clips_per_replica([self.model.task(t).modality for t in tasks])

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

    self._train[key] = step
    return step

  # ----------------------------------------------------------------------------- eval
  def eval_step(self, task: str):
    """tf.function (distributed batch) -> (logits (B, V, C), labels, mask) gathered from
    every replica of every worker."""
    if task in self._eval:
      return self._eval[task]
    keras_model = self.model.model_for(task)
    input_shape = self.model.input_shape(task)
    num_classes = self.model.task(task).num_classes
    strategy = self.strategy

    def replica_eval(batch):
      x = batch['inputs']
      views = x.shape[1]
      flat = tf.reshape(x, (-1,) + tuple(input_shape))
      logits = tf.cast(keras_model(flat, training=False), tf.float32)
      logits = tf.reshape(logits, (-1, views, num_classes))
      return logits, tf.cast(batch['labels'], tf.float32), tf.cast(batch['mask'], tf.float32)

    @tf.function
    def step(batch):
      out = strategy.run(replica_eval, args=(batch,))
      return tuple(strategy.gather(o, axis=0) for o in out)

    self._eval[task] = step
    return step
