"""The co-training optimizer: ONE state for all tasks, global-norm clipping, idle-parameter policy.

SGD with momentum (the paper, Appendix A: "we use a single momentum state when co-training"):
  m <- beta * m + g ;  w <- w - lr * m          (the Flax/optax form the original uses)
AdamW (option): Adam moments with bias correction at the optimizer's update count, decoupled
weight decay w <- w - lr * (m_hat / (sqrt(v_hat) + eps) + wd * w).

`optimizer.idle_params` decides what happens to parameters the step's task does not use
(other tasks' heads, other modalities' tokenizers and adaptors):
  'shared_momentum'  (the paper / original code) they get a zero gradient but are still
                     updated: the shared momentum keeps moving them, scaled by the current
                     task's learning rate. An idle head therefore drifts.
  'freeze_idle'      they are not touched at all, their momentum included.

Gradients are clipped to a global norm (`optimizer.grad_clip_norm`, 1.0 in the paper; <= 0
disables) and all-reduced over replicas, in one of two orders, as the original trainer does:
  after the all-reduce (image steps): the summed gradient, i.e. the gradient of the mean loss
                     over the global batch, is clipped;
  per replica (steps of a modality in `optimizer.clip_per_replica_modalities`, default video
                     and audio, as ViViT and MBT): each replica's gradient of its OWN mean loss
                     (N times its share of the sum) is clipped, and the N clipped gradients
                     are averaged. The reported norm is then the mean of the replicas' norms.
With one replica the two are the same computation. The update is skipped entirely (weights,
slots and counters unchanged) when the loss or the gradient norm is not finite, so the
caller can stop with the last good state intact. Slots are float32 (the
original keeps momentum in bfloat16). All slots are created in the constructor, before the
first step; the update runs through `merge_call` (where the strategy needs one) +
`extended.update`, which is how tf.distribute applies one update to every replica's copy
(default, Mirrored, MultiWorker, TPU).
"""

from __future__ import annotations

from typing import Sequence

import ml_collections
import tensorflow as tf

from polyvit_tf.configs import base
from polyvit_tf.configs import specs as specs_lib

OPTIMIZERS = base.OPTIMIZERS
IDLE_PARAMS = base.IDLE_PARAMS


class _Untracked:
  """Holds the model's variables without making them checkpoint children of the optimizer."""

  def __init__(self, items):
    self.items = list(items)


def _slot_name(path: str) -> str:
  return path.replace('/', '.')


class Optimizer(tf.Module):
  """One optimizer state over `variables` (keras Variables), shared by every task."""

  def __init__(self, config: ml_collections.ConfigDict, variables: Sequence,
               name: str = 'optimizer'):
    super().__init__(name=name)
    opt = specs_lib.resolve(config).optimizer
    self.kind = opt.name
    self.momentum = opt.momentum
    self.weight_decay = opt.weight_decay
    self.clip_norm = opt.grad_clip_norm
    self.per_replica_modalities = frozenset(opt.clip_per_replica_modalities)
    self.freeze_idle = opt.idle_params == 'freeze_idle'
    self.beta1, self.beta2, self.epsilon = opt.beta1, opt.beta2, opt.epsilon
    self._vars = _Untracked(variables)
    self.index = {v.path: i for i, v in enumerate(self._vars.items)}
    strategy = tf.distribute.get_strategy()
    self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name='iterations')
    names = ('m', 'v') if self.kind == 'adamw' else ('momentum',)
    self.slots = {n: {} for n in names}
    for v in self._vars.items:
      with strategy.extended.colocate_vars_with(v.value):
        for n in names:
          self.slots[n][_slot_name(v.path)] = tf.Variable(
              tf.zeros(v.shape, v.dtype), trainable=False, name=f'{n}/{_slot_name(v.path)}')

  @property
  def variables_list(self) -> list:
    return list(self._vars.items)

  def slot(self, name: str, variable) -> tf.Variable:
    return self.slots[name][_slot_name(variable.path)]

  def clips_per_replica(self, modalities) -> bool:
    """Whether a step over tasks of `modalities` clips per replica: all of them are listed
    in `optimizer.clip_per_replica_modalities` (an accumulated step mixing modalities clips
    after the all-reduce), and clipping is on."""
    modalities = set(modalities)
    return self.clip_norm > 0 and bool(modalities) and modalities <= self.per_replica_modalities

  def _clip(self, grads: list, norm: tf.Tensor) -> list:
    scale = tf.minimum(1.0, self.clip_norm / tf.maximum(norm, 1e-12))
    return [g * scale for g in grads]

  # ------------------------------------------------------------------- replica context
  def apply_gradients(self, grads: dict[int, tf.Tensor], lr, loss, *,
                      clip_per_replica: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
    """Call in replica context with this replica's gradients by variable index (variables
    the step does not use are absent): its share of the gradient of the global mean loss.
    `clip_per_replica` (see `clips_per_replica`) clips before the all-reduce. Returns
    (gradient norm, ok)."""
    ctx = tf.distribute.get_replica_context()
    keys = sorted(grads)
    local = [grads[k] for k in keys]
    total_loss = ctx.all_reduce(tf.distribute.ReduceOp.SUM, loss)
    if clip_per_replica and self.clip_norm > 0:
      replicas = float(ctx.num_replicas_in_sync)
      own_norm = tf.linalg.global_norm(local) * replicas  # of this replica's own mean loss
      *reduced, norm_sum = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                          self._clip(local, own_norm) + [own_norm])
      norm = norm_sum / replicas
    else:
      reduced = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
      norm = tf.linalg.global_norm(reduced)
      if self.clip_norm > 0:
        reduced = self._clip(reduced, norm)
    ok = tf.logical_and(tf.math.is_finite(norm), tf.math.is_finite(total_loss))
    by_index = dict(zip(keys, reduced))
    # merge_call where the strategy needs it; inside a per-replica XLA step on GPUs
    # (mirrored) TensorFlow has no merge_call and `extended.update` runs in replica context.
    tf.__internal__.distribute.interim.maybe_merge_call(
        self._apply_cross_replica, ctx.strategy, by_index, tf.cast(lr, tf.float32), ok)
    return norm, ok

  # -------------------------------------------------------------- cross-replica context
  def _apply_cross_replica(self, strategy, grads, lr, ok):
    t = tf.cast(self.iterations + 1, tf.float32)
    for i, var in enumerate(self._vars.items):
      grad = grads.get(i)
      if grad is None and self.freeze_idle:
        continue
      slots = tuple(self.slot(n, var) for n in self.slots)
      strategy.extended.update(var.value, self._update, args=(slots, grad, lr, ok, t),
                               group=False)
    strategy.extended.update(
        self.iterations, lambda it, ok: it.assign_add(tf.cast(ok, tf.int64)), args=(ok,),
        group=False)

  def _update(self, var, slots, grad, lr, ok, t):
    """Per-device update of one variable (called by extended.update)."""
    new_slots = []
    if self.kind == 'sgd':
      (m,) = slots
      if grad is None:  # idle parameter under 'shared_momentum': momentum only
        new_m = self.momentum * m
      else:
        g = grad + self.weight_decay * var if self.weight_decay else grad
        new_m = self.momentum * m + g
      new_slots.append(new_m)
      new_var = var - lr * new_m
    else:
      m, v = slots
      g = tf.zeros_like(var) if grad is None else grad
      new_m = self.beta1 * m + (1.0 - self.beta1) * g
      new_v = self.beta2 * v + (1.0 - self.beta2) * tf.square(g)
      m_hat = new_m / (1.0 - tf.pow(self.beta1, t))
      v_hat = new_v / (1.0 - tf.pow(self.beta2, t))
      step = m_hat / (tf.sqrt(v_hat) + self.epsilon)
      if self.weight_decay and grad is not None:
        step = step + self.weight_decay * var
      new_slots += [new_m, new_v]
      new_var = var - lr * step
    for slot, new in zip(slots, new_slots):
      slot.assign(tf.where(ok, new, slot))
    return var.assign(tf.where(ok, new_var, var))
