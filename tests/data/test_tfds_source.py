"""TFDS data sets as sources, with tfds.testing.mock_data (never a download)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from polyvit_tf.configs import tiny
from polyvit_tf.data import errors
from polyvit_tf.data import pipeline

SETS = {  # task of configs/tiny.py -> (TFDS name, number of classes)
    'image_a': ('cifar10', 10),
    'audio_a': ('speech_commands', 12),
    'video_a': ('ucf101', 101),
}


def _config(tmp_path):
  config = tiny.get_config()
  for task, (name, classes) in SETS.items():
    t = config.tasks[task]
    t.num_classes = classes
    t.multilabel = False
    t.loss = 'softmax_xent'
    t.mixup_alpha = 0.0
    t.data.source = f'tfds:{name}'
    t.data.data_dir = str(tmp_path)  # empty: only the mock can serve these
    t.data.train_split = 'train[:50%]'
    t.data.eval_split = 'test'
    t.data.shuffle_buffer = 4
  del config.tasks['image_b']
  config.tasks.video_a.eval_views = 2
  return config


def _speech(self, *args, **kwargs):
  """Mock speech_commands clips long enough for a filterbank (random mocks are a few
  samples long, which the pipeline rightly rejects as shorter than one window)."""
  del self, args, kwargs
  t = np.arange(16_000) / 16_000

  def examples():
    for i in range(4):
      wave = 8000 * np.sin(2 * np.pi * (300 + 100 * i) * t)
      yield {'audio': wave.astype(np.int16), 'label': i % 12}

  return tf.data.Dataset.from_generator(examples, output_signature={
      'audio': tf.TensorSpec([None], tf.int16), 'label': tf.TensorSpec([], tf.int64)})


def _ucf101(self, *args, **kwargs):
  """Mock ucf101 clips of 9 small JPEG frames, encoded as TFDS stores them (the random
  mock would encode 256x256 frames, slowly)."""
  del self, args, kwargs

  def examples():
    for i in range(4):
      frames = [tf.io.encode_jpeg(tf.fill([24, 28, 3], tf.constant(20 * f + i, tf.uint8)))
                for f in range(9)]
      yield {'video': tf.stack(frames), 'label': i % 101}

  return tf.data.Dataset.from_generator(examples, output_signature={
      'video': tf.TensorSpec([None], tf.string), 'label': tf.TensorSpec([], tf.int64)})


@pytest.mark.parametrize('task', sorted(SETS))
def test_train_and_eval_from_mock_tfds(task, tmp_path):
  config = _config(tmp_path)
  t = config.tasks[task]
  as_dataset_fn = {'audio_a': _speech, 'video_a': _ucf101}.get(task)
  with tfds.testing.mock_data(num_examples=4, data_dir=str(tmp_path),
                              as_dataset_fn=as_dataset_fn):
    train = next(iter(pipeline.train_dataset(config, task, seed=0, batch_size=2)))
    again = next(iter(pipeline.train_dataset(config, task, seed=0, batch_size=2)))
    batches = list(pipeline.eval_dataset(config, task, batch_size=4))
  shape = {'image_a': (32, 32, 3), 'audio_a': (64, 16, 1), 'video_a': (4, 32, 32, 3)}[task]
  assert train['inputs'].shape == (2, *shape)
  assert train['labels'].shape == (2, t.num_classes)
  np.testing.assert_array_equal(train['labels'].numpy().sum(-1), [1.0, 1.0])
  np.testing.assert_array_equal(train['inputs'], again['inputs'])
  views = {'image_a': 1, 'audio_a': 1, 'video_a': 2}[task]
  assert batches[0]['inputs'].shape == (4, views, *shape)
  assert sum(float(b['mask'].numpy().sum()) for b in batches) == 4
  assert np.isfinite(np.concatenate([b['inputs'] for b in batches])).all()


def test_missing_tfds_sources_name_task_and_source(tmp_path):
  config = _config(tmp_path)
  with pytest.raises(errors.DataSourceError, match=r'image_a.*tfds:cifar10'):
    pipeline.eval_dataset(config, 'image_a')  # not prepared in data_dir, not mocked
  config = copy.deepcopy(config)
  config.tasks.image_a.data.source = 'tfds:no_such_dataset_xyz'
  with pytest.raises(errors.DataSourceError, match=r'image_a.*tfds:no_such_dataset_xyz'):
    pipeline.train_dataset(config, 'image_a', seed=0)
