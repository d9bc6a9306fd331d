"""The order in which a training pipeline visits records: seeded, per epoch, resumable.

Epoch e of input pipeline i (of n) is:
  1. the split's records in the source's order for epoch e (TFRecord files permuted with a
     seed of (run seed, task, e); TFDS in its fixed order),
  2. rotated by a seeded offset in [0, block) so block boundaries move between epochs,
  3. every n-th record from i (input_context sharding; all pipelines agree on 1-2),
  4. shuffled within consecutive blocks of `data.shuffle_buffer` records, each block with
     its own stateless seed of (run seed, task, i, e, block).
Epochs are concatenated; the k-th record of the stream has element index k. Nothing uses
TF's global seed or stateful random ops, so the stream depends only on (config, task,
seed, input pipeline), and `stream(start=k)` equals the stream from record k on, reading
at most one epoch of raw records to get there (nothing is decoded).
"""

from __future__ import annotations

import hashlib

import tensorflow as tf

from polyvit_tf.data import augment
from polyvit_tf.data import sources

# Pipeline functions use TF control flow explicitly; skipping AutoGraph saves seconds of
# tracing per pipeline.
_plain = tf.autograph.experimental.do_not_convert


def seed_base(seed: int, task: str, purpose: str, pipeline_id: int | None = None) -> int:
  """A 63-bit integer standing for (seed, task, purpose[, input pipeline])."""
  text = f'{seed}/{task}/{purpose}/{"" if pipeline_id is None else pipeline_id}'
  return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), 'big') >> 1


def stateless_seed(base: int, *counters: tf.Tensor) -> tf.Tensor:
  """A stateless-op seed (shape [2], int64) from a base and counters."""
  seed = tf.stack([tf.constant(base, tf.int64), tf.cast(counters[0], tf.int64)])
  for c in counters[1:]:
    seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(c, tf.int64))
  return seed


def block_shuffle(ds: tf.data.Dataset, block: int, base: int,
                  epoch: tf.Tensor) -> tf.data.Dataset:
  """Shuffles consecutive blocks of `block` elements, each with its own seed."""
  if block <= 1:
    return ds

  def permute(j, elements):
    n = tf.shape(tf.nest.flatten(elements)[0])[0]
    order = tf.argsort(tf.random.stateless_uniform([n], stateless_seed(base, epoch, j)))
    return tf.nest.map_structure(lambda t: tf.gather(t, order), elements)

  return ds.ragged_batch(block).enumerate().map(_plain(permute)).unbatch()


def epoch_size(num_records: int, num_pipelines: int, pipeline_id: int) -> int:
  """Records input pipeline `pipeline_id` of `num_pipelines` gets per epoch."""
  return len(range(pipeline_id, num_records, num_pipelines))


def stream(source: sources.Source, split: str, *, seed: int, task: str, block: int,
           num_pipelines: int = 1, pipeline_id: int = 0, start: int = 0,
           epoch_records: int | None = None) -> tf.data.Dataset:
  """Infinite stream of `(element_index, fallback_id, raw)` from element `start` on.

  `epoch_records` (this pipeline's records per epoch) is needed only when start > 0.
  """
  file_base = seed_base(seed, task, 'files')
  rotate_base = seed_base(seed, task, 'rotate')
  block_base = seed_base(seed, task, 'block', pipeline_id)
  if start and not epoch_records:
    raise ValueError('epoch_records is needed to start a stream after element 0')
  first_epoch, offset = divmod(start, epoch_records) if start else (0, 0)

  def one_epoch(epoch):
    records = source.epoch_records(split, stateless_seed(file_base, epoch))
    if block > 1:
      shift = tf.cast(augment.uniform_int(stateless_seed(rotate_base, epoch), 0, block - 1),
                      tf.int64)
      records = records.skip(shift).concatenate(records.take(shift))
    if num_pipelines > 1:
      records = records.shard(num_pipelines, pipeline_id)
    return block_shuffle(records, block, block_base, epoch)

  epochs = tf.data.Dataset.range(first_epoch, 2**62).flat_map(_plain(one_epoch))
  indexed = epochs.enumerate(start=first_epoch * (epoch_records or 0))
  indexed = indexed.skip(offset)
  return indexed.map(_plain(lambda i, rec: (i, rec[0], rec[1])))
