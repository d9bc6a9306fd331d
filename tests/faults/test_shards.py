"""Training data with a truncated or corrupt TFRecord file: the rest of that file is one bad
example named by task, file and byte offset, counted like the others (or fatal on request),
and the stream stays deterministic and resumes exactly."""

from __future__ import annotations

import gzip
import io
import json
import os
import re

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from polyvit_tf.configs import tiny
from polyvit_tf.data import errors
from polyvit_tf.data import pipeline
from polyvit_tf.data import records
from polyvit_tf.modalities import image as image_modality
from polyvit_tf.train import loop
from tests.faults import corrupt

SHARD = errors.reason_message(errors.CORRUPT_SHARD)


def _png(value: int) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


def _config(tmp_path, *, gz=False, damage=None):
  """image_a of the tiny config over 24 examples in 2 shards; `damage(path)` hurts shard 1."""
  config = tiny.get_config()
  directory = str(tmp_path / ('gz' if gz else 'plain'))
  examples = [image_modality.example(f'ex{i}', i % 10, _png(10 * i)) for i in range(24)]
  paths = records.write_split(directory, 'train', examples, num_shards=2)
  if gz:
    for p in paths:
      with open(p, 'rb') as f, gzip.open(p + '.gz', 'wb') as g:
        g.write(f.read())
      os.remove(p)
    paths = [p + '.gz' for p in paths]
  records.write_info(directory, modality='image', class_names=[str(i) for i in range(10)],
                     split_counts={'train': 24})
  if damage:
    damage(paths[1])
  data = config.tasks.image_a.data
  data.source, data.train_split, data.eval_split = f'tfrecord:{directory}', 'train', 'train'
  data.shuffle_buffer = 8
  data.augment = False
  errors.BAD_EXAMPLES.reset()
  return config, paths


def _take(ds, n):
  return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def _cut(path):
  corrupt.truncate(path, os.path.getsize(path) // 2)  # inside a record half way


def test_truncated_shard_is_named_counted_and_resume_stays_exact(tmp_path):
  config, paths = _config(tmp_path, damage=_cut)
  batches = _take(pipeline.train_dataset(config, 'image_a', seed=3, batch_size=4), 9)
  for b in batches:  # a bad slot is refilled with a good example of its batch
    np.testing.assert_array_equal(b['labels'].sum(-1), np.ones(4))
  ids = errors.BAD_EXAMPLES.ids('image_a')
  assert list(ids) == [SHARD]
  readable = [len(r.numpy()) for r in tf.data.TFRecordDataset(paths[1]).ignore_errors()]
  assert 0 < len(readable) < 12
  (bad,) = ids[SHARD]  # the file, the byte offset of its first unreadable record, its index
  offset = sum(readable) + 16 * len(readable)
  assert bad == f'{paths[1]} at byte {offset} (record {len(readable)})'
  resumed = _take(pipeline.train_dataset(config, 'image_a', seed=3, batch_size=4,
                                         skip_batches=7), 2)  # inside the second epoch
  for got, want in zip(resumed, batches[7:9]):
    np.testing.assert_array_equal(got['inputs'], want['inputs'])
    np.testing.assert_array_equal(got['labels'], want['labels'])
  # An epoch is 12 + the readable records + one marker: dataset_info.json's count (24) no
  # longer matches the files' bytes, so the resumed stream's epoch size is recounted.
  assert pipeline.sources.for_task(config, 'image_a').num_records('train') == 13 + len(readable)


@pytest.mark.parametrize('gz', [False, True])
def test_corrupt_record_is_fatal_on_request_naming_task_file_offset(tmp_path, gz):
  damage = lambda p: corrupt.flip_bit(p, os.path.getsize(p) // 2)
  config, paths = _config(tmp_path, gz=gz, damage=damage)
  config.tasks.image_a.data.skip_bad_examples = False
  where = 'uncompressed byte' if gz else 'byte'
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=rf'task image_a \(train split\): bad example '
                           rf'{re.escape(paths[1])} at {where} \d+ \(record \d+\): '
                           rf'{re.escape(SHARD)}'):
    _take(pipeline.train_dataset(config, 'image_a', seed=0, batch_size=4), 6)


def test_eval_skips_the_rest_of_a_bad_gzip_file_and_reports_it(tmp_path):
  config, paths = _config(tmp_path, gz=True, damage=lambda p: corrupt.truncate(p, 200))
  batches = list(pipeline.eval_dataset(config, 'image_a', batch_size=4))
  good = sum(float(b['mask'].numpy().sum()) for b in batches)
  assert 12 <= good < 24  # shard 0 whole, shard 1 up to where it broke
  summary = loop.report_bad_examples(str(tmp_path / 'run'))
  assert summary == {'image_a': {SHARD: 1}}
  with open(tmp_path / 'run' / 'eval' / 'bad_examples.json') as f:
    saved = json.load(f)
  (bad,) = saved['ids']['image_a'][SHARD]
  assert bad.startswith(f'{paths[1]} at uncompressed byte ')
