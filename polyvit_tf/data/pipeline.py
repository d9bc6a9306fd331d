"""tf.data input pipelines per task: `train_dataset` and `eval_dataset`.

train_dataset(config, task, *, seed, batch_size=None, input_context=None, skip_batches=0)
  Infinite, batched with drop_remainder: {'inputs': float32 (b, *input_shape),
  'labels': float32 (b, num_classes)} (one-hot or multi-hot, then label smoothing and
  mixup when the task sets them). Deterministic in (config, task, seed, input_context);
  `skip_batches=k` starts at batch k of the same stream, skipping raw records only.
eval_dataset(config, task, *, split='eval', batch_size=None, input_context=None)
  One pass: {'inputs': float32 (b, V, *input_shape), 'labels': float32 (b, num_classes),
  'mask': float32 (b,)}; V views per example (video temporal x spatial crops, audio clips,
  1 for images); the last batch is padded with mask 0.

What differs per modality (decoding, augmentation, views) is the task's modality module's
`train_inputs` / `eval_inputs` (polyvit_tf/modalities/<m>.py), with the task's resolved
options (polyvit_tf.configs.specs).

Batch sizes: the task's `batch_size` (train) or `config.eval.batch_size` (eval) are global;
with an input_context they are divided per replica (get_per_replica_batch_size) and the
records are sharded across input pipelines.

Bad examples (errors.py) are logged with their id, counted per task in
`errors.BAD_EXAMPLES` and skipped; with `data.skip_bad_examples=False` the iterator fails
naming the task, the id and the reason. In training a bad example's slot in its batch is
refilled with another example of the same batch, so batch k always holds records
[k b, (k+1) b) of the stream and resuming stays exact.
"""

from __future__ import annotations

import math

import ml_collections
import tensorflow as tf

from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import augment
from polyvit_tf.data import errors
from polyvit_tf.data import ordering
from polyvit_tf.data import sources

AUTOTUNE = tf.data.AUTOTUNE

# Pipeline functions use TF control flow explicitly; skipping AutoGraph saves seconds of
# tracing per pipeline.
_plain = tf.autograph.experimental.do_not_convert


# ------------------------------------------------------------------------------ labels
def encode_labels(labels: tf.Tensor, num_classes: int,
                  multilabel: bool) -> tuple[tf.Tensor, tf.Tensor]:
  """Class ids (k,) -> (one-hot / multi-hot float32 (num_classes,), status)."""
  count = tf.size(labels)
  bad_count = tf.equal(count, 0) if multilabel else tf.not_equal(count, 1)
  out_of_range = tf.reduce_any((labels < 0) | (labels >= num_classes))
  status = tf.where(bad_count, errors.BAD_LABEL_COUNT,
                    tf.where(out_of_range, errors.LABEL_OUT_OF_RANGE, errors.OK))
  safe = tf.clip_by_value(labels, 0, num_classes - 1)
  hot = tf.minimum(tf.reduce_sum(tf.one_hot(safe, num_classes, dtype=tf.float32), axis=0), 1.0)
  hot = tf.ensure_shape(tf.reshape(hot, [num_classes]), [num_classes])
  return hot, status


def _first_error(*statuses: tf.Tensor) -> tf.Tensor:
  out = tf.constant(errors.OK, tf.int32)
  for s in reversed(statuses):
    out = tf.where(tf.not_equal(s, errors.OK), tf.cast(s, tf.int32), out)
  return out


# ------------------------------------------------------------------- bad-example guard
# Decoding runs on groups of consecutive records: inside a group each record is decoded in
# a nested dataset with ignore_errors, so an op error (corrupt proto, undecodable media)
# drops only that record; the group is then re-assembled in order, a dropped record
# becoming `blank` with status UNDECODABLE and its id. Groups amortise the nested
# dataset's cost and are decoded in parallel by an ordered map.
MAX_GROUP = 32
GROUP_FLOATS = 1 << 24  # at most ~64 MB of decoded float32 per group


def group_size(example_floats: int) -> int:
  """Records per decoding group for examples of `example_floats` floats."""
  return int(max(1, min(MAX_GROUP, GROUP_FLOATS // max(1, example_floats))))


def _failed_status(raws, n: tf.Tensor) -> tf.Tensor:
  """Status of records that did not decode: CORRUPT_SHARD for the marker a TFRecord source
  puts where a file became unreadable (sources.SHARD_ERROR), else UNDECODABLE."""
  if isinstance(raws, tf.Tensor) and raws.dtype == tf.string:
    return tf.where(tf.equal(raws, sources.SHARD_ERROR), errors.CORRUPT_SHARD,
                    errors.UNDECODABLE)
  return tf.fill([n], tf.constant(errors.UNDECODABLE, tf.int32))  # e.g. TFDS feature dicts


def _decode_groups(ds: tf.data.Dataset, decode_fn, source: sources.Source, blank: dict,
                   parallel: int, group: int) -> tf.data.Dataset:
  """`(index, fallback_id, raw)` records with consecutive indices -> decoded elements
  (`decode_fn`'s dict with 'index', 'id', 'status'), in order, one per record."""

  def read_id(index, fallback_id, raw):
    own = source.example_id(raw)
    return index, tf.where(tf.strings.length(own) > 0, own, fallback_id)

  def decode_group(indices, fallback_ids, raws):
    n = tf.shape(indices)[0]
    items = tf.data.Dataset.from_tensor_slices((indices, fallback_ids, raws))
    decoded = items.map(_plain(decode_fn)).ignore_errors()
    ids = items.map(_plain(read_id)).ignore_errors()
    empty = tf.nest.map_structure(
        lambda spec: tf.zeros([0, *spec.shape[1:]], spec.dtype), decoded.batch(1).element_spec)
    rows = decoded.batch(group).concatenate(
        tf.data.Dataset.from_tensors(empty)).take(1).get_single_element()
    id_rows = ids.batch(group).concatenate(tf.data.Dataset.from_tensors(
        (tf.zeros([0], tf.int64), tf.zeros([0], tf.string)))).take(1).get_single_element()
    first = indices[0]
    positions = tf.cast(rows['index'] - first, tf.int32)[:, None]
    out = {'index': indices, 'status': _failed_status(raws, n),
           'id': tf.tensor_scatter_nd_update(
               fallback_ids, tf.cast(id_rows[0] - first, tf.int32)[:, None], id_rows[1])}
    for key, value in blank.items():
      out[key] = tf.tile(value[None], [n] + [1] * value.shape.rank)
    return {key: tf.tensor_scatter_nd_update(value, positions, rows[key])
            if key != 'index' else value for key, value in out.items()}

  # The record stream (reading, shuffling) runs ahead in its own thread.
  grouped = ds.ragged_batch(group).prefetch(2).map(
      _plain(decode_group), num_parallel_calls=parallel, deterministic=True)
  return grouped.unbatch()


def _account(task: str, split: str, skip_bad: bool):
  """Logs and counts bad examples (or fails when they are fatal); passes elements on."""

  def record(example_id, status):
    errors.BAD_EXAMPLES.record(task, split, example_id.numpy().decode('utf-8', 'replace'),
                               int(status.numpy()))
    return tf.constant(True)

  def fn(element):
    bad = tf.not_equal(element['status'], errors.OK)
    if not skip_bad:
      reasons = tf.constant([errors.reason_message(c) for c in range(max(errors.REASONS) + 1)])
      message = tf.strings.join([
          f'task {task} ({split} split): bad example ', element['id'], ': ',
          tf.gather(reasons, element['status']),
          ' (set data.skip_bad_examples=True to skip bad examples)'])
      with tf.control_dependencies([tf.debugging.Assert(tf.logical_not(bad), [message])]):
        return tf.nest.map_structure(tf.identity, element)
    logged = tf.cond(bad, lambda: tf.py_function(record, [element['id'], element['status']],
                                                 tf.bool),
                     lambda: tf.constant(True))
    with tf.control_dependencies([logged]):
      return tf.nest.map_structure(tf.identity, element)

  return _plain(fn)


def _parallelism(data: specs_lib.DataSpec) -> int:
  return AUTOTUNE if data.num_parallel_calls <= 0 else data.num_parallel_calls


def _batch_size(global_size: int, input_context: tf.distribute.InputContext | None) -> int:
  if input_context is None:
    return int(global_size)
  return int(input_context.get_per_replica_batch_size(int(global_size)))


def _pipeline_position(input_context) -> tuple[int, int]:
  if input_context is None:
    return 1, 0
  return int(input_context.num_input_pipelines), int(input_context.input_pipeline_id)


def _check_nonempty(source: sources.Source, split: str, task: str) -> None:
  source.check(split)
  for _ in source.epoch_records(split).take(1):
    return
  raise errors.DataSourceError(
      f'task {task}: data.source {source.description!r} split {split!r} has no examples.')


# ----------------------------------------------------------------------------- train
def train_dataset(config: ml_collections.ConfigDict, task: str, *, seed: int,
                  batch_size: int | None = None,
                  input_context: tf.distribute.InputContext | None = None,
                  skip_batches: int = 0) -> tf.data.Dataset:
  """The infinite, deterministic training stream of `task` (see the module docstring)."""
  spec = specs_lib.resolve(config)
  t, data, training = spec.task(task), spec.data[task], spec.training[task]
  modality, opts = spec.modality_of(task).impl, data.options
  source = sources.open_source(data, t.modality)
  split = data.split('train')
  _check_nonempty(source, split, task)
  if batch_size is None:
    b = _batch_size(training.batch_size, input_context)
  else:
    b = int(batch_size)
  if b < 1:
    raise ValueError(f'task {task}: batch size must be >= 1, got {b}.')
  num_pipelines, pipeline_id = _pipeline_position(input_context)
  block = data.shuffle_buffer
  start = int(skip_batches) * b
  epoch_records = None
  if start:
    epoch_records = ordering.epoch_size(source.num_records(split), num_pipelines,
                                        pipeline_id)
    if epoch_records == 0:
      raise errors.DataSourceError(f'task {task}: input pipeline {pipeline_id} of '
                                   f'{num_pipelines} gets no records of split {split!r}.')
  ds = ordering.stream(source, split, seed=seed, task=task, block=block,
                       num_pipelines=num_pipelines, pipeline_id=pipeline_id, start=start,
                       epoch_records=epoch_records)

  element_base = ordering.seed_base(seed, task, 'element', pipeline_id)
  input_shape = spec.input_shape(task)

  def decode(index, fallback_id, raw):
    ex = source.parse(raw)
    inputs, input_status = modality.train_inputs(
        ex, opts, ordering.stateless_seed(element_base, index))
    labels, label_status = encode_labels(ex['labels'], t.num_classes, t.multilabel)
    example_id = tf.where(tf.strings.length(ex['id']) > 0, ex['id'], fallback_id)
    return {'inputs': tf.ensure_shape(inputs, input_shape), 'labels': labels,
            'index': index, 'id': example_id,
            'status': _first_error(input_status, label_status)}

  blank = {'inputs': tf.zeros(input_shape), 'labels': tf.zeros([t.num_classes])}
  ds = _decode_groups(ds, decode, source, blank, _parallelism(data),
                      group_size(math.prod(input_shape)))
  ds = ds.map(_account(task, split, data.skip_bad_examples))
  ds = ds.batch(b, drop_remainder=True)

  batch_base = ordering.seed_base(seed, task, 'mixup', pipeline_id)
  smoothing = training.label_smoothing
  alpha = training.mixup_alpha

  def finish(batch):
    valid = tf.equal(batch['status'], errors.OK)
    num_valid = tf.reduce_sum(tf.cast(valid, tf.int32))
    batch_index = batch['index'][0] // b
    check = tf.debugging.assert_positive(
        num_valid, message=f'task {task}: every example of a training batch is bad')
    with tf.control_dependencies([check]):
      valid_slots = tf.reshape(tf.where(valid), [-1])
    slots = tf.range(b)
    refill = tf.gather(valid_slots, slots % tf.maximum(num_valid, 1))
    take = tf.where(valid, tf.cast(slots, tf.int64), refill)
    inputs = tf.gather(batch['inputs'], take)
    labels = augment.smooth_labels(tf.gather(batch['labels'], take), smoothing)
    if alpha > 0:
      inputs, labels = augment.mixup(inputs, labels,
                                     ordering.stateless_seed(batch_base, batch_index), alpha)
    return {'inputs': inputs, 'labels': labels}

  ds = ds.map(_plain(finish), num_parallel_calls=AUTOTUNE, deterministic=True)
  return ds.prefetch(AUTOTUNE)


# ------------------------------------------------------------------------------ eval
def eval_dataset(config: ml_collections.ConfigDict, task: str, *, split: str = 'eval',
                 batch_size: int | None = None,
                 input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
  """One pass over `split` ('eval' | 'validation' | 'train') of `task`, padded batches of
  views (see the module docstring)."""
  spec = specs_lib.resolve(config)
  t, data = spec.task(task), spec.data[task]
  modality, opts = spec.modality_of(task).impl, data.options
  source = sources.open_source(data, t.modality)
  split_name = data.split(split)
  source.check(split_name)
  b = int(batch_size) if batch_size is not None else _batch_size(spec.eval.batch_size,
                                                                 input_context)
  if b < 1:
    raise ValueError(f'task {task}: eval batch size must be >= 1, got {b}.')
  num_pipelines, pipeline_id = _pipeline_position(input_context)
  records = source.epoch_records(split_name)
  if num_pipelines > 1:
    records = records.shard(num_pipelines, pipeline_id)
  ds = records.enumerate().map(_plain(lambda i, rec: (i, rec[0], rec[1])))

  view_shape = (data.num_views, *spec.input_shape(task))

  def decode(index, fallback_id, raw):
    ex = source.parse(raw)
    inputs, input_status = modality.eval_inputs(ex, opts)
    labels, label_status = encode_labels(ex['labels'], t.num_classes, t.multilabel)
    example_id = tf.where(tf.strings.length(ex['id']) > 0, ex['id'], fallback_id)
    return {'inputs': tf.ensure_shape(inputs, view_shape), 'labels': labels, 'index': index,
            'id': example_id, 'status': _first_error(input_status, label_status)}

  blank = {'inputs': tf.zeros(view_shape), 'labels': tf.zeros([t.num_classes])}
  ds = _decode_groups(ds, decode, source, blank, _parallelism(data),
                      group_size(math.prod(view_shape)))
  ds = ds.map(_account(task, split_name, data.skip_bad_examples))
  ds = ds.filter(_plain(lambda e: tf.equal(e['status'], errors.OK)))
  ds = ds.map(_plain(lambda e: {'inputs': e['inputs'], 'labels': e['labels'],
                                'mask': tf.constant(1.0)}))
  if spec.eval.max_examples > 0:
    ds = ds.take(spec.eval.max_examples)
  padding = tf.data.Dataset.from_tensors(
      {'inputs': tf.zeros(view_shape), 'labels': tf.zeros([t.num_classes]),
       'mask': tf.constant(0.0)}).repeat(b - 1)
  ds = ds.concatenate(padding).batch(b, drop_remainder=True)
  return ds.prefetch(AUTOTUNE)
