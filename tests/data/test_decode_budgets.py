"""Decode budgets: header readers, and bombs inside training records skipped undecoded."""

from __future__ import annotations

import copy
import io
import os
import struct
import wave

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from polyvit_tf.data import audio
from polyvit_tf.data import errors
from polyvit_tf.data import image
from polyvit_tf.data import options
from polyvit_tf.data import pipeline
from polyvit_tf.data import records
from polyvit_tf.data import resample
from polyvit_tf.data import video
from polyvit_tf.modalities import audio as audio_modality
from polyvit_tf.modalities import image as image_modality
from polyvit_tf.modalities import video as video_modality


def _encoded(fmt: str, height: int = 5, width: int = 7) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(buffer, format=fmt)
  return buffer.getvalue()


def _png_declaring(height: int, width: int) -> bytes:
  data = bytearray(_encoded('PNG'))
  data[16:24] = struct.pack('>II', width, height)
  return bytes(data)


def _wav(frames: int, rate: int) -> bytes:
  buffer = io.BytesIO()
  with wave.open(buffer, 'wb') as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(b'\x01\x00' * frames)
  return buffer.getvalue()


def _message(checks) -> str:
  return errors.first_failure(checks)[1].numpy().decode()


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'GIF', 'BMP'])
def test_header_size_reads_every_format(fmt):
  fmt_id, height, width = image.header_size(tf.constant(_encoded(fmt, 5, 7)))
  assert (image.FORMATS[int(fmt_id)], int(height), int(width)) == (fmt, 5, 7)


def test_image_budget_checks_name_the_problem():
  opts = options.ImageOptions(size=(32, 32), channels=3, augment=False,
                              inception_crop_area=(0.05, 1.0), random_flip=False)
  cases = {
      b'': (errors.EMPTY, 'empty'),
      _encoded('WEBP'): (errors.UNDECODABLE, 'unknown image format'),
      _encoded('GIF'): (errors.UNDECODABLE, 'GIF is not accepted'),
      _encoded('PNG')[:20]: (errors.UNDECODABLE, 'bad PNG header'),
      _png_declaring(20_000, 20_000): (
          errors.OVER_BUDGET, '20000 x 20000 pixels exceed the decode budget of 16777216'),
      _png_declaring(1 << 31, 1 << 31): (errors.OVER_BUDGET, '2147483648 x 2147483648'),
      _encoded('JPEG'): (errors.OK, ''),
      _encoded('BMP'): (errors.OK, ''),
  }
  for data, (status, words) in cases.items():
    checks = image.budget_checks(tf.constant(data), opts.max_pixels)
    assert int(image.budget_status(tf.constant(data), opts)) == status, data[:20]
    assert words in _message(checks)
  with pytest.raises(tf.errors.InvalidArgumentError, match='exceed the decode budget'):
    image.decode(tf.constant(_png_declaring(20_000, 20_000)), 3)


def test_audio_checks_before_decoding_and_resampling():
  opts = options.AudioOptions(frames=64, mel_bins=16, channels=1, norm_mean=0.0, norm_std=1.0,
                              augment=False, freq_masks=0, freq_mask_width=0, time_masks=0,
                              time_mask_width=0, num_views=1)
  assert _message(audio.wav_checks(tf.constant(_wav(16_000, 16_000)), opts)) == ''
  for data, words in [
      (_wav(100, 1 << 30), 'sample rate 1073741824 Hz is outside [1000, 384000]'),
      (_wav(100, (1 << 31) - 1), 'sample rate 2147483647 Hz'),
      (_wav(16_000, 1), 'sample rate 1 Hz'),
      (_wav(130_000, 1_000), '130.0 s) exceed the budget of 120 s'),
      (b'RIFF....WAVEjunk', 'not a WAV file'),
      (b'', 'WAV is empty')]:
    assert words in _message(audio.wav_checks(tf.constant(data), opts)), words
  one = tf.constant([0.1])
  assert int(audio.check_waveform(one, 44_100, opts)) == errors.TOO_SHORT
  assert int(audio.check_waveform(tf.zeros([0]), 16_000, opts)) == errors.EMPTY
  assert int(audio.check_waveform(tf.zeros([16_000]), 1, opts)) == errors.OVER_BUDGET
  assert int(audio.check_waveform(tf.zeros([16_000]), 16_000, opts)) == errors.OK
  # The resampler never reaches an FFT of length 0 (TF aborts the process on one).
  assert resample.resample(one, 44_100, 16_000).shape == (0,)


def test_video_checks_frames_times_pixels():
  opts = options.VideoOptions(num_frames=4, size=(32, 32), channels=3, stride=2, short_side=0,
                              augment=False, scale_jitter=(0.9, 1.33), random_flip=False,
                              color_augment=False, color_augment_prob=0.8, color_drop_prob=0.1,
                              temporal_views=2, spatial_views=1)
  good = [_encoded('JPEG', 36, 44)] * 6
  assert int(video.clip_status(tf.constant(good), opts)) == errors.OK
  assert int(video.clip_status(tf.zeros([0], tf.string), opts)) == errors.EMPTY
  # 8 decoded frames of 1 x 20000, resized to a short side of 37: 27 M pixels each.
  message = _message(video.clip_checks(tf.zeros([3, 1, 20_000, 3], tf.uint8), opts))
  assert '8 decoded frames of 1 x 20000 pixels (27380000 after resizing' in message
  assert 'video frame 0: 20000 x 20000 pixels exceed' in _message(
      video.clip_checks(tf.constant([_png_declaring(20_000, 20_000)] * 3), opts))
  mixed = tf.constant(good[:3] + [_encoded('JPEG', 50, 50)] + good[:2])
  with pytest.raises(tf.errors.InvalidArgumentError, match='frames differ in size: 50 x 50'):
    video.decode_frames(mixed, tf.range(6))


@pytest.fixture()
def bomb_data(tiny_data, tmp_path):
  """tiny_data with decode bombs mixed into image_a, audio_a and video_a records."""
  config = copy.deepcopy(tiny_data)
  config.tasks.video_a.eval_views = 2
  png = _encoded('PNG', 16, 16)
  jpeg = _encoded('JPEG', 40, 40)
  image_examples = [image_modality.example(f'good{i}', i % 10, png) for i in range(4)]
  image_examples.insert(1, image_modality.example('png_bomb', 3,
                                                  _png_declaring(20_000, 20_000)))
  image_examples.insert(3, image_modality.example('gif', 3, _encoded('GIF')))
  tone = np.sin(np.arange(16_000) / 5.0) * 0.3
  audio_examples = [audio_modality.example(f'tone{i}', [i % 6], waveform=tone)
                    for i in range(3)]
  audio_examples.insert(1, audio_modality.example('one_hertz', [1], waveform=tone,
                                                  sample_rate=1))
  audio_examples.insert(2, audio_modality.example('rate_2_30', [1],
                                                  encoded=_wav(2_000, 1 << 30)))
  video_examples = [video_modality.example(f'clip{i}', i % 4, [jpeg] * 8, 8.0)
                    for i in range(3)]
  video_examples.insert(1, video_modality.example('frame_bomb', 1,
                                                  [_png_declaring(20_000, 20_000)] * 8, 8.0))
  video_examples.insert(2, video_modality.example('thin_frames', 1,
                                                  [_encoded('JPEG', 1, 10_000)] * 8, 8.0))
  for task, examples in (('image_a', image_examples), ('audio_a', audio_examples),
                         ('video_a', video_examples)):
    directory = os.path.join(tmp_path, task)
    records.write_split(directory, 'train', examples)
    records.write_split(directory, 'test', examples)
    config.tasks[task].data.source = f'tfrecord:{directory}'
  errors.BAD_EXAMPLES.reset()
  return config


BOMBS = {'image_a': ({'png_bomb': errors.OVER_BUDGET, 'gif': errors.UNDECODABLE}, 4),
         'audio_a': ({'one_hertz': errors.OVER_BUDGET, 'rate_2_30': errors.OVER_BUDGET}, 3),
         'video_a': ({'frame_bomb': errors.OVER_BUDGET, 'thin_frames': errors.OVER_BUDGET}, 3)}


@pytest.mark.slow
@pytest.mark.parametrize('task', sorted(BOMBS))
def test_eval_pipeline_skips_bombs_undecoded(bomb_data, task):
  expected, good = BOMBS[task]
  batches = list(pipeline.eval_dataset(bomb_data, task, batch_size=4))
  assert sum(float(b['mask'].numpy().sum()) for b in batches) == good
  by_reason = {}
  for example_id, code in expected.items():
    by_reason.setdefault(errors.reason_message(code), []).append(example_id)
  assert errors.BAD_EXAMPLES.ids(task) == {r: sorted(v) for r, v in by_reason.items()}


@pytest.mark.slow
def test_training_pipeline_skips_bombs(bomb_data):
  """The PNG declaring 20000 x 20000 (6.5 GB peak when it was decoded) is skipped from its
  header; the batch is refilled with good examples."""
  batch = next(iter(pipeline.train_dataset(bomb_data, 'image_a', seed=0, batch_size=6)))
  np.testing.assert_array_equal(batch['labels'].numpy().sum(-1), np.ones(6))
  assert errors.BAD_EXAMPLES.ids('image_a') == {
      errors.reason_message(errors.OVER_BUDGET): ['png_bomb'],
      errors.reason_message(errors.UNDECODABLE): ['gif']}
