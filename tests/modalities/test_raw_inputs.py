"""The raw-input preprocessing of the modality modules (`raw_inputs`, what the serving
signatures run): shapes, agreement with eval_dataset (no train/serve skew), and that it runs
inside a saved and reloaded SavedModel signature."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from polyvit_tf.configs import specs
from polyvit_tf.data import pipeline
from polyvit_tf.data import records
from polyvit_tf.modalities import audio as audio_modality
from polyvit_tf.modalities import image as image_modality
from polyvit_tf.modalities import video as video_modality
from tests.export import fixtures


def _png(pixels: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG')
  return buffer.getvalue()


@pytest.fixture(scope='module')
def media():
  rng = np.random.default_rng(0)
  t = np.arange(int(44_100 * 1.3)) / 44_100
  wave = (0.3 * np.sin(2 * np.pi * 700 * t * (1 + t))).astype(np.float32)
  frames = rng.integers(0, 255, (11, 30, 44, 3), dtype=np.uint8)
  return {
      'image': _png(rng.integers(0, 255, (21, 35, 3), dtype=np.uint8)),
      'wave': wave,
      'wav': tf.audio.encode_wav(tf.constant(wave[:, None]), 44_100).numpy(),
      'frames': frames,
      'encoded_frames': [_png(f) for f in frames],
  }


def test_shapes(tiny_data, media):
  config = tiny_data
  image = fixtures.raw_views(config, 'image_a')(tf.constant(media['image']))
  assert image.shape == (1, 32, 32, 3) and image.dtype == tf.float32
  assert -1.0 <= float(tf.reduce_min(image)) and float(tf.reduce_max(image)) <= 1.0
  audio = fixtures.raw_views(config, 'audio_a')(tf.constant(media['wav']))
  assert audio.shape == (3, 64, 16, 1)
  video = fixtures.raw_views(config, 'video_a', 'frames')(tf.constant(media['frames']))
  assert video.shape == (6, 4, 32, 32, 3)


def test_wav_equals_waveform_and_encoded_frames_equal_pixels(tiny_data, media):
  config = tiny_data
  opts = specs.resolve(config).data['audio_a'].options
  from_wav = fixtures.raw_views(config, 'audio_a')(tf.constant(media['wav']))
  samples = np.frombuffer(media['wav'][44:], '<i2') / 32768.0  # the WAV's 16-bit samples
  from_wave = audio_modality.views_of_waveform(samples.astype(np.float32), 44_100, opts)
  np.testing.assert_allclose(from_wav, from_wave, atol=1e-5)
  a = fixtures.raw_views(config, 'video_a', 'frames')(tf.constant(media['frames']))
  b = fixtures.raw_views(config, 'video_a')(tf.constant(media['encoded_frames'] + [b'', b'']))  # padding
  np.testing.assert_array_equal(a, b)


def test_eval_dataset_uses_the_same_preprocessing(tiny_data, media, tmp_path):
  """The same media through eval_dataset and through the raw inputs give the same tensors."""
  config = tiny_data.copy_and_resolve_references()
  examples = {
      'image_a': image_modality.example('x', 1, media['image']),
      'audio_a': audio_modality.example('x', 1, encoded=media['wav']),
      'video_a': video_modality.example('x', 1, media['encoded_frames'], 25.0),
  }
  for task, example in examples.items():
    records.write_split(str(tmp_path / task), 'test', [example])
    config.tasks[task].data.source = f'tfrecord:{tmp_path / task}'
  expected = {
      'image_a': fixtures.raw_views(config, 'image_a')(tf.constant(media['image'])),
      'audio_a': fixtures.raw_views(config, 'audio_a')(tf.constant(media['wav'])),
      'video_a': fixtures.raw_views(config, 'video_a', 'frames')(tf.constant(media['frames'])),
  }
  for task in examples:
    (batch,) = list(pipeline.eval_dataset(config, task, batch_size=1))
    np.testing.assert_allclose(batch['inputs'][0], expected[task], atol=1e-6, err_msg=task)


def test_runs_in_a_saved_model_signature(tiny_data, media, tmp_path):
  config = tiny_data
  image, audio, video = (fixtures.raw_views(config, t) for t in ('image_a', 'audio_a', 'video_a'))

  class Pre(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def image(self, encoded):
      return image(encoded)

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def audio(self, wav):
      return audio(wav)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def video(self, frames):
      return video(frames)

  module = Pre()
  path = str(tmp_path / 'pre')
  tf.saved_model.save(module, path, signatures={
      'image': module.image, 'audio': module.audio, 'video': module.video})
  loaded = tf.saved_model.load(path)
  ops = set()
  for sig in loaded.signatures.values():
    graph = sig.graph.as_graph_def()
    ops |= {n.op for n in graph.node}
    ops |= {n.op for f in graph.library.function for n in f.node_def}
  assert not {'PyFunc', 'EagerPyFunc', 'PyFuncStateless'} & ops
  assert not [op for op in ops if op.startswith('IO>')]  # no tensorflow-io kernels
  inputs = {'image': tf.constant(media['image']), 'audio': tf.constant(media['wav']),
            'video': tf.constant(media['encoded_frames'])}
  for name, x in inputs.items():
    served = list(loaded.signatures[name](x).values())[0]
    np.testing.assert_allclose(served, getattr(module, name)(x), atol=1e-6)
