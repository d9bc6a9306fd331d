"""Position-embedding resize against scipy / tf.image, and the kernel conversions against their
definitions, down to the tokenizers they produce."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from polyvit_tf.checkpoints import TokenizerWeights
from polyvit_tf.checkpoints import adapt_tokenizer
from polyvit_tf.checkpoints import inflate
from polyvit_tf.checkpoints import resize
from polyvit_tf.model.tokenizer import Tokenizer

D = 16
SHAPES = [((14, 14), (24, 24)),  # ViT-B/16 224 -> image 384 (the paper)
          ((14, 14), (50, 8)),  # 224 -> audio 800x128
          ((24, 24), (14, 14)),  # downsampling
          ((7, 5), (3, 9)),
          ((1, 4), (3, 4)),
          ((4, 4), (1, 1))]


def _rng(seed: int = 0) -> np.random.Generator:
  return np.random.default_rng(seed)


@pytest.mark.parametrize('old,new', SHAPES)
def test_bilinear_resize_equals_scipy_zoom_order_1(old, new):
  grid = _rng().normal(size=old + (D,)).astype('float32')
  expected = scipy.ndimage.zoom(grid, (new[0] / old[0], new[1] / old[1], 1), order=1)
  ours = resize.resize_grid(grid, new, 'bilinear')
  assert ours.shape == expected.shape == new + (D,)
  np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
  # Corners map onto corners (scipy's grid_mode=False): no extrapolation, no half pixels.
  if min(new) > 1 and min(old) > 1:
    for i, j in ((0, 0), (-1, -1), (0, -1), (-1, 0)):
      np.testing.assert_allclose(ours[i, j], grid[i, j], atol=1e-6)


def test_bilinear_resize_3d_equals_scipy_zoom_order_1():
  grid = _rng().normal(size=(4, 6, 6, D)).astype('float32')
  expected = scipy.ndimage.zoom(grid, (2 / 4, 9 / 6, 3 / 6, 1), order=1)
  np.testing.assert_allclose(resize.resize_grid(grid, (2, 9, 3)), expected, atol=1e-6)


@pytest.mark.parametrize('old,new', SHAPES[:4])
def test_half_pixel_resize_equals_tf_image_resize(old, new):
  grid = _rng(1).normal(size=old + (D,)).astype('float32')
  expected = tf.image.resize(grid[None], new, method='bilinear', antialias=False).numpy()[0]
  np.testing.assert_allclose(resize.resize_grid(grid, new, 'bilinear_half_pixel'), expected,
                             atol=1e-5)


def test_resize_posemb_keeps_cls_entry():
  posemb = _rng(2).normal(size=(1 + 14 * 14, D)).astype('float32')
  out = resize.resize_posemb(posemb, (14, 14), (24, 24))
  assert out.shape == (1 + 24 * 24, D)
  np.testing.assert_array_equal(out[0], posemb[0])
  expected = scipy.ndimage.zoom(posemb[1:].reshape(14, 14, D), (24 / 14, 24 / 14, 1), order=1)
  np.testing.assert_allclose(out[1:].reshape(24, 24, D), expected, atol=1e-6)


@pytest.mark.parametrize('frames', [1, 2, 3, 4])
def test_kernel_inflation_definitions(frames):
  k = _rng(3).normal(size=(8, 8, 3, D)).astype('float32')
  central = inflate.inflate_kernel(k, frames, 'central_frame')
  assert central.shape == (frames, 8, 8, 3, D)
  np.testing.assert_array_equal(central[frames // 2], k)
  np.testing.assert_array_equal(np.delete(central, frames // 2, axis=0), 0.0)
  average = inflate.inflate_kernel(k, frames, 'average')
  for t in range(frames):
    np.testing.assert_allclose(average[t], k / frames, rtol=1e-7)
  np.testing.assert_allclose(average.sum(0), k, rtol=1e-5, atol=1e-6)
  repeat = inflate.inflate_kernel(k, frames, 'repeat')
  for t in range(frames):
    np.testing.assert_array_equal(repeat[t], k)
  np.testing.assert_allclose(inflate.sum_frames(repeat), frames * k, rtol=1e-6)


def test_rgb_sum_and_posemb_tiling_definitions():
  k = _rng(4).normal(size=(8, 8, 3, D)).astype('float32')
  mono, note = inflate.convert_channels(k, 1)
  np.testing.assert_allclose(mono[:, :, 0], k[:, :, 0] + k[:, :, 1] + k[:, :, 2], rtol=1e-6)
  assert 'summed' in note
  back, _ = inflate.convert_channels(mono, 3)
  np.testing.assert_allclose(back.sum(axis=-2), mono[:, :, 0], rtol=1e-6)
  grid = _rng(5).normal(size=(3, 4, D)).astype('float32')
  tiled = inflate.tile_frames(grid, 5)
  assert tiled.shape == (5, 3, 4, D)
  # Token order (t, h, w): the flattened tiled grid is the frame grid concatenated 5 times,
  # which is the original's np.tile / concatenate of the flattened table.
  np.testing.assert_array_equal(tiled.reshape(-1, D), np.concatenate([grid.reshape(-1, D)] * 5))
  np.testing.assert_allclose(inflate.mean_frames(tiled), grid, rtol=1e-6)


def _tokenizer(input_size, patch, channels, weights: TokenizerWeights,
               dtype: str = 'float32') -> Tokenizer:
  layer = Tokenizer(input_size, patch, channels, D, dtype=dtype)
  layer.build((None,) + tuple(input_size) + (channels,))
  for name, value in weights.as_variables('t').items():
    getattr(layer, name.split('/')[1]).assign(value)
  return layer


def _image_tokenizer_weights() -> TokenizerWeights:
  rng = _rng(6)
  return TokenizerWeights(
      kernel=rng.normal(size=(8, 8, 3, D)).astype('float32'),
      bias=rng.normal(size=(D,)).astype('float32'), cls=rng.normal(size=(D,)).astype('float32'),
      posemb=rng.normal(size=(1 + 16, D)).astype('float32'), grid=(4, 4))


@pytest.mark.parametrize('method,frames', [('central_frame', 2), ('central_frame', 3),
                                           ('average', 2), ('average', 4)])
def test_inflated_video_tokenizer_on_identical_frames_equals_2d_tokenizer(method, frames):
  image_w = _image_tokenizer_weights()
  video_w, actions = adapt_tokenizer(image_w, patch_size=(frames, 8, 8), channels=3,
                                     grid=(3, 4, 4), video_kernel=method)
  assert actions['kernel'][0] == 'inflated' and actions['posemb'][0] == 'tiled'
  # float64, so that "equal" means equal up to float64 rounding (the video convolution sums
  # t * C input channels, the image one C: the summation order differs).
  image_tok = _tokenizer((32, 32), (8, 8), 3, image_w, 'float64')
  video_tok = _tokenizer((3 * frames, 32, 32), (frames, 8, 8), 3, video_w, 'float64')
  frame = _rng(7).normal(size=(2, 32, 32, 3))
  clip = np.repeat(frame[:, None], 3 * frames, axis=1)  # a video of identical frames
  image_tokens = np.asarray(image_tok(frame))  # (2, 1 + 16, D)
  video_tokens = np.asarray(video_tok(clip))  # (2, 1 + 3 * 16, D)
  np.testing.assert_array_equal(video_tokens[:, 0], image_tokens[:, 0])  # CLS + its posemb
  per_slot = video_tokens[:, 1:].reshape(2, 3, 16, D)
  err = max(float(np.abs(per_slot[:, t] - image_tokens[:, 1:]).max()) for t in range(3))
  print(f'{method} t={frames}: max |video token - image token| = {err:.1e}')
  assert err <= 1e-12 * np.abs(image_tokens).max()


def test_summed_rgb_kernel_on_a_spectrogram_equals_rgb_kernel_on_it_tiled():
  image_w = _image_tokenizer_weights()
  audio_w, actions = adapt_tokenizer(image_w, patch_size=(8, 8), channels=1, grid=(6, 2))
  assert actions['kernel'] == ('converted', 'summed over 3 channels')
  assert actions['posemb'][0] == 'resized'
  mono = _tokenizer((48, 16), (8, 8), 1, audio_w)
  rgb_w = TokenizerWeights(image_w.kernel, image_w.bias, image_w.cls, audio_w.posemb, (6, 2))
  rgb = _tokenizer((48, 16), (8, 8), 3, rgb_w)
  spec = _rng(8).normal(size=(2, 48, 16, 1)).astype('float32')
  np.testing.assert_allclose(np.asarray(mono(spec)), np.asarray(rgb(np.repeat(spec, 3, -1))),
                             rtol=1e-5, atol=1e-5)
  keras.backend.clear_session()
