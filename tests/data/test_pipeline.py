"""train_dataset / eval_dataset on the tiny config: shapes, ranges, views, determinism,
exact resume, sharding, mixup, padding, and errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.data import errors
from polyvit_tf.data import pipeline
from polyvit_tf.configs import specs as specs_lib

TASKS = ('audio_a', 'image_a', 'image_b', 'video_a')


def _take(ds, n):
  return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def _equal(a, b):
  return len(a) == len(b) and all(
      np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


@pytest.mark.parametrize('task', TASKS)
def test_train_shapes_dtypes_ranges(tiny_data, task):
  config = tiny_data
  t = specs_lib.resolve(config).task(task)
  shape = specs_lib.resolve(config).input_shape(task)
  (batch,) = _take(pipeline.train_dataset(config, task, seed=0), 1)
  b = config.tasks[task].batch_size
  assert batch['inputs'].shape == (b, *shape) and batch['inputs'].dtype == np.float32
  assert batch['labels'].shape == (b, t.num_classes) and batch['labels'].dtype == np.float32
  assert np.isfinite(batch['inputs']).all()
  if t.modality in ('image', 'video'):
    assert batch['inputs'].min() >= -1.0 and batch['inputs'].max() <= 1.0
    assert batch['inputs'].max() - batch['inputs'].min() > 0.5
  else:  # normalised log-mel: (x - mean) / (2 std), AudioSet statistics
    assert -3.0 < batch['inputs'].min() and batch['inputs'].max() < 5.0
  labels = batch['labels']
  assert labels.min() >= 0.0 and labels.max() <= 1.0
  if config.tasks[task].mixup_alpha:
    # audio_a is multi-label with mixup: a mix of a multi-hot row and its mirror partner.
    np.testing.assert_allclose(labels, np.clip(labels, 0, 1))
  else:
    np.testing.assert_array_equal(labels.sum(-1), np.ones(b))  # one-hot


@pytest.mark.parametrize('task,views', [('image_a', 1), ('audio_a', 3), ('video_a', 6)])
def test_eval_shapes_views_and_padding(tiny_data, task, views):
  config = tiny_data
  t = specs_lib.resolve(config).task(task)
  shape = specs_lib.resolve(config).input_shape(task)
  batches = _take(pipeline.eval_dataset(config, task, batch_size=5), 100)
  n = 3 * t.num_classes  # examples_per_class * classes in the test split
  assert len(batches) == -(-n // 5)
  for batch in batches:
    assert batch['inputs'].shape == (5, views, *shape)
    assert batch['labels'].shape == (5, t.num_classes) and batch['mask'].shape == (5,)
    assert batch['inputs'].dtype == np.float32 and batch['mask'].dtype == np.float32
  mask = np.concatenate([b['mask'] for b in batches])
  assert mask.sum() == n and (mask[:n] == 1).all() and (mask[n:] == 0).all()
  padded = np.concatenate([b['inputs'] for b in batches])[n:]
  assert not padded.any()
  if t.modality != 'audio':
    real = np.concatenate([b['inputs'] for b in batches])[:n]
    assert real.min() >= -1.0 and real.max() <= 1.0
  if views > 1:  # views differ (different clips / crops of one example)
    first = batches[0]['inputs'][0]
    assert not np.array_equal(first[0], first[-1])


def test_eval_is_deterministic_and_splits_map(tiny_data):
  a = _take(pipeline.eval_dataset(tiny_data, 'video_a', batch_size=4), 10)
  b = _take(pipeline.eval_dataset(tiny_data, 'video_a', batch_size=4), 10)
  assert _equal(a, b)
  val = _take(pipeline.eval_dataset(tiny_data, 'image_a', split='validation', batch_size=64),
              10)
  train = _take(pipeline.eval_dataset(tiny_data, 'image_a', split='train', batch_size=64), 10)
  assert val[0]['mask'].sum() == train[0]['mask'].sum() == 30
  assert not np.array_equal(val[0]['inputs'], train[0]['inputs'])


@pytest.mark.parametrize('task', ['image_b', 'audio_a', 'video_a'])
def test_train_is_deterministic_and_resumes_exactly(tiny_data, task):
  config = copy.deepcopy(tiny_data)
  # A block smaller than the split, so block shuffling and epoch rotation matter.
  config.tasks[task].data.shuffle_buffer = 7
  b = config.tasks[task].batch_size
  n = 3 * config.tasks[task].num_classes
  stream = _take(pipeline.train_dataset(config, task, seed=5), 7)
  assert 5 * b > n  # batch 5 lies in the second epoch
  assert _equal(stream, _take(pipeline.train_dataset(config, task, seed=5), 7))
  for k in (2, 5):
    resumed = _take(pipeline.train_dataset(config, task, seed=5, skip_batches=k), 7 - k)
    assert _equal(stream[k:], resumed), k
  if task == 'image_b':
    other = _take(pipeline.train_dataset(config, task, seed=6), 2)
    assert not _equal(stream[:2], other)


def test_epochs_visit_every_example_once(tiny_data):
  config = copy.deepcopy(tiny_data)
  config.tasks.image_a.data.shuffle_buffer = 8
  config.tasks.image_a.data.augment = False
  n, b = 30, 5
  batches = _take(pipeline.train_dataset(config, 'image_a', seed=0, batch_size=b),
                  2 * n // b)
  inputs = np.concatenate([x['inputs'] for x in batches]).reshape(2, n, -1)
  evals = np.concatenate([x['inputs'][:, 0] for x in _take(
      pipeline.eval_dataset(config, 'image_a', split='train', batch_size=b), 100)])
  reference = sorted(map(bytes, evals.reshape(n, -1).astype(np.float32)))
  for epoch in inputs:
    assert sorted(map(bytes, epoch.astype(np.float32))) == reference
  assert not np.array_equal(inputs[0], inputs[1])  # reshuffled per epoch


def test_input_context_shards_and_divides_batch(tiny_data):
  config = tiny_data
  contexts = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i,
                                         num_replicas_in_sync=2) for i in range(2)]
  global_b = config.tasks.image_a.batch_size
  shards = []
  for ctx in contexts:
    ds = pipeline.eval_dataset(config, 'image_a', split='train', batch_size=64,
                               input_context=ctx)
    (batch,) = _take(ds, 1)
    shards.append(batch['inputs'][batch['mask'] == 1].reshape(int(batch['mask'].sum()), -1))
    (train,) = _take(pipeline.train_dataset(config, 'image_a', seed=0, input_context=ctx), 1)
    assert train['inputs'].shape[0] == global_b // 2
  assert len(shards[0]) + len(shards[1]) == 30
  both = {bytes(r.astype(np.float32)) for r in shards[0]} & {
      bytes(r.astype(np.float32)) for r in shards[1]}
  assert not both


def test_label_smoothing_and_mixup(tiny_data):
  config = copy.deepcopy(tiny_data)
  task = config.tasks.image_a
  task.label_smoothing = 0.1
  (batch,) = _take(pipeline.train_dataset(config, 'image_a', seed=0), 1)
  np.testing.assert_allclose(np.sort(batch['labels'], -1)[:, -1], 0.9 + 0.01, rtol=1e-6)
  np.testing.assert_allclose(batch['labels'].sum(-1), 1.0, rtol=1e-6)
  task.label_smoothing = 0.0
  task.mixup_alpha = 0.4
  task.data.augment = False
  (plain,) = _take(pipeline.train_dataset(config, 'image_a', seed=0), 1)
  config.tasks.image_a.mixup_alpha = 0.0
  (unmixed,) = _take(pipeline.train_dataset(config, 'image_a', seed=0), 1)
  # One lambda for the batch, partner = the reversed batch, for inputs and labels alike.
  x, y = unmixed['inputs'], unmixed['labels']
  lam = (plain['labels'] - y[::-1]) / (y - y[::-1] + 1e-12)
  i = int(np.argmax(np.abs(y - y[::-1]).sum(-1)))
  c = int(np.argmax(np.abs(y[i] - y[::-1][i])))
  lam = float(lam[i, c])
  assert 0.0 <= lam <= 1.0
  np.testing.assert_allclose(plain['inputs'], lam * x + (1 - lam) * x[::-1], atol=1e-5)
  np.testing.assert_allclose(plain['labels'], lam * y + (1 - lam) * y[::-1], atol=1e-5)


def test_missing_source_names_task_and_source(tiny_data, tmp_path):
  config = copy.deepcopy(tiny_data)
  config.tasks.image_a.data.source = f'tfrecord:{tmp_path}/nothing'
  with pytest.raises(errors.DataSourceError, match=r'image_a.*tfrecord:.*nothing'):
    pipeline.train_dataset(config, 'image_a', seed=0)
  with pytest.raises(errors.DataSourceError, match=r'image_a.*tfrecord:.*nothing'):
    pipeline.eval_dataset(config, 'image_a')
  config.tasks.image_a.data.source = 'nfs:/x'
  with pytest.raises(errors.DataSourceError, match=r'image_a.*nfs:/x'):
    pipeline.eval_dataset(config, 'image_a')
  config.tasks.image_a.data.source = 'demo:no_such_set'
  with pytest.raises(errors.DataSourceError, match=r'image_a.*demo:no_such_set'):
    pipeline.eval_dataset(config, 'image_a')
  with pytest.raises(errors.DataConfigError, match='image_b'):
    pipeline.eval_dataset(tiny_data, 'image_b', split='test')
