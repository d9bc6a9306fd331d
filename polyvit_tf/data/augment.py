"""Augmentations drawn with stateless random ops from explicit seeds.

Every random choice is a pure function of a seed tensor (shape [2], int64), derived from
(run seed, task, input pipeline, element or batch index) by the pipeline; nothing reads
global or stateful random state, so a pipeline's output is reproducible and resumable.
"""

from __future__ import annotations

import tensorflow as tf


def split(seed: tf.Tensor, num: int) -> list[tf.Tensor]:
  """`num` independent seeds from one."""
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num)
  return [seeds[i] for i in range(num)]


def uniform_int(seed: tf.Tensor, low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
  """An integer uniform on [low, high] (inclusive), int32; low when high < low."""
  low = tf.cast(low, tf.float32)
  high = tf.maximum(tf.cast(high, tf.float32), low)
  u = tf.random.stateless_uniform([], seed)
  return tf.cast(tf.math.floor(low + u * (high - low + 1.0)), tf.int32)


def bernoulli(seed: tf.Tensor, p: float) -> tf.Tensor:
  return tf.random.stateless_uniform([], seed) < p


def spec_augment(spectrogram: tf.Tensor, seed: tf.Tensor, *, freq_masks: int,
                 freq_mask_width: int, time_masks: int, time_mask_width: int,
                 value: float = 0.0) -> tf.Tensor:
  """SpecAugment masks on a (frames, bins) spectrogram: each mask has a width uniform in
  [0, max width] and a uniform position; masked cells are set to `value`."""
  frames, bins = tf.shape(spectrogram)[0], tf.shape(spectrogram)[1]
  keep = tf.ones_like(spectrogram, tf.bool)
  seeds = split(seed, 2 * (freq_masks + time_masks) + 1)
  for axis, count, max_width, size in ((1, freq_masks, freq_mask_width, bins),
                                       (0, time_masks, time_mask_width, frames)):
    positions = tf.range(size)
    for _ in range(count):
      width = uniform_int(seeds.pop(), 0, tf.minimum(max_width, size))
      start = uniform_int(seeds.pop(), 0, size - width)
      inside = (positions >= start) & (positions < start + width)
      inside = inside[None, :] if axis == 1 else inside[:, None]
      keep = keep & ~inside
  return tf.where(keep, spectrogram, tf.cast(value, spectrogram.dtype))


def color_augment(frames: tf.Tensor, seed: tf.Tensor, *, prob_color: float = 0.8,
                  prob_drop: float = 0.1) -> tf.Tensor:
  """DMVR's `color_default_augm` (ViViT, the original PolyViT) of a clip (T, H, W, 3) in
  [0, 1], with the same random factors for every frame: with probability `prob_color`
  brightness + delta (|delta| <= 32/255), saturation x [0.6, 1.4], contrast x [0.6, 1.4]
  (about each frame's channel means), hue + [-0.2, 0.2], in that order, clipped to [0, 1];
  then, independently, with probability `prob_drop` grey scale (luma tiled to 3 channels).
  A pure function of `seed`."""
  s = split(seed, 6)

  def jitter(x):
    x = tf.image.stateless_random_brightness(x, 32.0 / 255.0, s[0])
    x = tf.image.stateless_random_saturation(x, 0.6, 1.4, s[1])
    x = tf.image.stateless_random_contrast(x, 0.6, 1.4, s[2])
    x = tf.image.stateless_random_hue(x, 0.2, s[3])
    return tf.clip_by_value(x, 0.0, 1.0)

  frames = tf.cond(bernoulli(s[4], prob_color), lambda: jitter(frames), lambda: frames)
  grey = lambda: tf.tile(tf.image.rgb_to_grayscale(frames), [1, 1, 1, 3])
  return tf.cond(bernoulli(s[5], prob_drop), grey, lambda: frames)


def smooth_labels(labels: tf.Tensor, smoothing: float) -> tf.Tensor:
  """labels * (1 - smoothing) + smoothing / num_classes."""
  if not smoothing:
    return labels
  num_classes = tf.cast(tf.shape(labels)[-1], labels.dtype)
  return labels * (1.0 - smoothing) + smoothing / num_classes


def beta(seed: tf.Tensor, alpha: float) -> tf.Tensor:
  """One draw of Beta(alpha, alpha) from two stateless Gamma draws."""
  s = split(seed, 2)
  a = tf.random.stateless_gamma([], s[0], alpha)
  b = tf.random.stateless_gamma([], s[1], alpha)
  return a / (a + b)


def mixup(inputs: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor,
          alpha: float) -> tuple[tf.Tensor, tf.Tensor]:
  """Mixup as the original code does it: one lambda ~ Beta(alpha, alpha) per batch, each
  example mixed with its partner in the reversed batch."""
  lam = beta(seed, alpha)
  mixed_inputs = lam * inputs + (1.0 - lam) * tf.reverse(inputs, axis=[0])
  mixed_labels = lam * labels + (1.0 - lam) * tf.reverse(labels, axis=[0])
  return mixed_inputs, mixed_labels
