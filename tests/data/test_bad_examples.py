"""Bad examples are counted per task with their ids and skipped, or fatal on request."""

from __future__ import annotations

import copy
import io
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from polyvit_tf.data import errors
from polyvit_tf.data import pipeline
from polyvit_tf.data import records
from polyvit_tf.modalities import audio as audio_modality
from polyvit_tf.modalities import image as image_modality
from polyvit_tf.modalities import video as video_modality


def _png(value: int) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


def _jpeg(value: int) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.full((40, 40, 3), value, np.uint8)).save(buffer, format='JPEG')
  return buffer.getvalue()


@pytest.fixture()
def bad_data(tiny_data, tmp_path):
  """tiny_data with a few bad examples mixed into image_a, audio_a and video_a."""
  config = copy.deepcopy(tiny_data)
  image = [image_modality.example(f'good{i}', i % 10, _png(10 * i)) for i in range(8)]
  image.insert(1, image_modality.example('corrupt_png', 3, _png(5)[:30]))
  image.insert(4, image_modality.example('empty_image', 3, b''))
  image.insert(6, image_modality.example('label_11', 11, _png(7)))
  image.insert(7, image_modality.example('no_label', [], _png(8)))
  image.insert(8, image_modality.example('two_labels', [1, 2], _png(9)))
  wave = np.sin(np.arange(16_000) / 5.0) * 0.3
  audio = [audio_modality.example(f'tone{i}', [i % 6], waveform=wave) for i in range(4)]
  audio.insert(2, audio_modality.example('short_clip', [1], waveform=wave[:300]))
  audio.insert(3, audio_modality.example('empty_clip', [1], waveform=wave[:0]))
  audio.insert(4, audio_modality.example('bad_wav', [1], encoded=b'RIFF0000WAVEjunk'))
  video = [video_modality.example(f'clip{i}', i % 4, [_jpeg(20 * f) for f in range(8)], 8.0)
           for i in range(4)]
  video.insert(1, video_modality.example('no_frames', 1, [], 8.0))
  video.insert(2, video_modality.example('bad_frame', 1, [b'not a jpeg', _jpeg(1)], 8.0))
  for task, examples in (('image_a', image), ('audio_a', audio), ('video_a', video)):
    directory = os.path.join(tmp_path, task)
    records.write_split(directory, 'train', examples)
    records.write_split(directory, 'test', examples)
    with tf.io.TFRecordWriter(os.path.join(directory, 'test-00001-of-00002.tfrecord')) as w:
      w.write(b'this is not a tf.Example')
    config.tasks[task].data.source = f'tfrecord:{directory}'
  errors.BAD_EXAMPLES.reset()
  return config


EXPECTED = {
    'image_a': {'corrupt_png': errors.UNDECODABLE, 'empty_image': errors.EMPTY,
                'label_11': errors.LABEL_OUT_OF_RANGE, 'no_label': errors.BAD_LABEL_COUNT,
                'two_labels': errors.BAD_LABEL_COUNT},
    'audio_a': {'short_clip': errors.TOO_SHORT, 'empty_clip': errors.EMPTY,
                'bad_wav': errors.UNDECODABLE},
    'video_a': {'no_frames': errors.EMPTY, 'bad_frame': errors.UNDECODABLE},
}
GOOD = {'image_a': 8, 'audio_a': 4, 'video_a': 4}


@pytest.mark.parametrize('task', sorted(EXPECTED))
def test_eval_skips_and_reports_bad_examples(bad_data, task):
  expected = EXPECTED[task]
  batches = list(pipeline.eval_dataset(bad_data, task, batch_size=4))
  assert sum(float(b['mask'].numpy().sum()) for b in batches) == GOOD[task]
  ids = errors.BAD_EXAMPLES.ids(task)
  by_reason = {}
  for example_id, code in expected.items():
    by_reason.setdefault(errors.reason_message(code), []).append(example_id)
  # The unparsable record has no id of its own: it is named by file and offset.
  by_reason[errors.reason_message(errors.UNDECODABLE)].append('test-00001-of-00002.tfrecord:0')
  assert ids == {r: sorted(v) for r, v in by_reason.items()}
  summary = errors.bad_example_summary()[task]
  assert sum(summary.values()) == len(expected) + 1
  assert task in errors.BAD_EXAMPLES.report()


def test_training_refills_bad_slots_and_counts(bad_data):
  config = bad_data
  config.tasks.image_a.data.augment = False
  batches = [b for b in pipeline.train_dataset(config, 'image_a', seed=0, batch_size=13)
             .take(3)]
  for b in batches:
    labels = b['labels'].numpy()
    np.testing.assert_array_equal(labels.sum(-1), np.ones(13))  # only good examples
  summary = errors.bad_example_summary()['image_a']
  assert sum(summary.values()) == 5
  # Counted once per example in summary(), once per visit in events(): 3 batches of 13 are
  # 3 epochs of the 13 records (prefetching may have started a fourth).
  assert errors.BAD_EXAMPLES.events()['image_a'][
      errors.reason_message(errors.BAD_LABEL_COUNT)] >= 2 * 3


def test_bad_examples_fatal_when_asked(bad_data):
  config = bad_data
  config.tasks.video_a.data.skip_bad_examples = False
  # The first bad record met is the unparsable one of the second file (files interleave).
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'video_a \(test split\): bad example test-00001-of-00002.tfrecord:0: '
                     r'undecodable or corrupt media'):
    list(pipeline.eval_dataset(config, 'video_a', batch_size=2))
  config.tasks.image_a.data.skip_bad_examples = False
  bad_ids = '|'.join(EXPECTED['image_a'])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=rf'image_a \(train split\): bad example ({bad_ids}): '):
    next(iter(pipeline.train_dataset(config, 'image_a', seed=0, batch_size=4)))


def test_all_bad_training_batch_fails_clearly(bad_data, tmp_path):
  config = bad_data
  directory = os.path.join(tmp_path, 'all_bad')
  records.write_split(directory, 'train', [image_modality.example('x', 99, _png(1))] * 3)
  config.tasks.image_b.data.source = f'tfrecord:{directory}'
  with pytest.raises(tf.errors.InvalidArgumentError, match='image_b.*every example'):
    next(iter(pipeline.train_dataset(config, 'image_b', seed=0, batch_size=2)))
