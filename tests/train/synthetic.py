"""A small deterministic in-memory data provider for the trainer's tests (a test fixture).

It has the element structure of polyvit_tf.data.pipeline:
  train_dataset: infinite, {'inputs': (b, *input_shape), 'labels': (b, C)} float32;
  eval_dataset:  finite, {'inputs': (b, V, *input_shape), 'labels': (b, C), 'mask': (b,)},
                 padded to full batches with mask 0.
Examples are class prototypes plus noise (learnable). Global training batch k holds pool
examples (k * B + i) * 7 mod N; with an input context, pipeline p of n (L = replicas / n local
replicas) yields, for each global batch, its L per-replica slices in replica order, so any
number of replicas and workers sees exactly the global batch one device sees.
`skip_batches=k` starts at the k-th element of the pipeline's stream (as the real pipeline
does). `nan_batches={task: k}` poisons global batch k; `delay` sleeps that many seconds
per training batch (`slow`: to kill a run mid-way).
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import tensorflow as tf

from polyvit_tf.configs import specs as specs_lib

TRAIN_POOL = 96
EVAL_EXAMPLES = 37  # not a multiple of the eval batch: the last batch is padded


def _layout(global_batch: int, input_context):
  if input_context is None:
    return 0, 1, global_batch
  n, p = input_context.num_input_pipelines, input_context.input_pipeline_id
  local = max(1, input_context.num_replicas_in_sync // n)
  per_replica = input_context.get_per_replica_batch_size(global_batch)
  return p * local, local, per_replica


class Provider:
  """train_dataset / eval_dataset over per-task pools of synthetic examples."""

  def __init__(self, nan_batches: dict[str, int] | None = None, noise: float = 0.5,
               delay: float = 0.0):
    self.nan_batches = dict(nan_batches or {})
    self.noise = noise
    self.delay = delay
    self._cache = {}

  def _pool(self, config, task: str, split: str, size: int):
    spec = specs_lib.resolve(config).task(task)
    shape = specs_lib.resolve(config).input_shape(task)
    c = spec.num_classes
    key = (task, split, size, int(config.seed), c, shape, spec.multilabel)
    if key not in self._cache:
      proto_rng = np.random.default_rng([zlib.crc32(task.encode()), 7])
      protos = proto_rng.normal(size=(c,) + shape).astype(np.float32)
      rng = np.random.default_rng([zlib.crc32(f'{task}/{split}'.encode()), int(config.seed)])
      cls = rng.integers(0, c, size=size)
      x = protos[cls] + self.noise * rng.normal(size=(size,) + shape).astype(np.float32)
      y = np.zeros((size, c), np.float32)
      y[np.arange(size), cls] = 1.0
      if spec.multilabel:
        y[np.arange(size), (cls + 1) % c] = 1.0
      self._cache[key] = (x.astype(np.float32), y)
    return self._cache[key]

  def train_dataset(self, config, task, *, seed, batch_size=None, input_context=None,
                    skip_batches=0):
    del seed  # the pool is already seeded by config.seed
    global_batch = int(config.tasks[task].batch_size)
    first, local, per_replica = _layout(global_batch, input_context)
    if batch_size is not None:
      per_replica = batch_size
    x, y = self._pool(config, task, 'train', TRAIN_POOL)
    x, y = tf.constant(x), tf.constant(y)
    nan_at = self.nan_batches.get(task, -1)

    def chunks(k):
      rows = []
      for r in range(local):
        i = tf.range((first + r) * per_replica, (first + r + 1) * per_replica, dtype=tf.int64)
        rows.append((k * global_batch + i) * 7 % TRAIN_POOL)
      idx = tf.stack(rows)  # (local, b)
      inputs = tf.gather(x, idx)
      inputs = tf.where(tf.equal(k, nan_at), inputs * np.nan, inputs)
      return {'inputs': inputs, 'labels': tf.gather(y, idx)}

    # skip_batches counts elements of this pipeline's stream (`local` per global batch).
    ds = tf.data.Dataset.range(skip_batches // local, 2**62)
    if self.delay:
      def sleep(k):
        time.sleep(self.delay)
        return k
      ds = ds.map(lambda k: tf.reshape(tf.numpy_function(sleep, [k], tf.int64), ()))
    return ds.map(chunks).unbatch().skip(skip_batches % local)

  def eval_dataset(self, config, task, *, split='eval', batch_size=None, input_context=None):
    global_batch = int(config.eval.batch_size)
    first, local, per_replica = _layout(global_batch, input_context)
    if batch_size is not None:
      per_replica = batch_size
    views = int(config.tasks[task].get('eval_views', 1))
    x, y = self._pool(config, task, split, EVAL_EXAMPLES)
    rng = np.random.default_rng([zlib.crc32(f'{task}/{split}/views'.encode())])
    xv = x[:, None] + 0.1 * rng.normal(size=(x.shape[0], views) + x.shape[1:]).astype(np.float32)
    batches = -(-EVAL_EXAMPLES // global_batch)
    padded = batches * global_batch
    pad = padded - EVAL_EXAMPLES
    xv = np.concatenate([xv, np.zeros((pad,) + xv.shape[1:], np.float32)])
    y = np.concatenate([y, np.zeros((pad, y.shape[1]), np.float32)])
    mask = np.r_[np.ones(EVAL_EXAMPLES, np.float32), np.zeros(pad, np.float32)]
    order = [np.arange((k * global_batch + (first + r) * per_replica),
                       (k * global_batch + (first + r + 1) * per_replica))
             for k in range(batches) for r in range(local)]
    idx = np.concatenate(order)
    ds = tf.data.Dataset.from_tensor_slices({'inputs': xv[idx], 'labels': y[idx],
                                             'mask': mask[idx]})
    return ds.batch(per_replica, drop_remainder=True)


class Refusing:
  """Fails if anything reads data (config errors must come first)."""

  def train_dataset(self, *args, **kwargs):
    raise AssertionError('data was read')

  eval_dataset = train_dataset


_DEFAULT = Provider()
refusing = Refusing()
slow = Provider(delay=0.2)
train_dataset = _DEFAULT.train_dataset
eval_dataset = _DEFAULT.eval_dataset
