"""Image preprocessing: decode, inception crop or resize, flip, values in [-1, 1].

Train: a random crop covering `inception_crop_area` of the image with aspect ratio in
[3/4, 4/3] (the inception crop of big_vision / the original code), resized to the
configured size, random horizontal flip. Eval: the whole image resized to the configured
size (the original's eval "resize to 384"). Bilinear resizing throughout.
"""

from __future__ import annotations

import tensorflow as tf

from polyvit_tf.data import augment
from polyvit_tf.data import errors
from polyvit_tf.data.options import ImageOptions

RESIZE_METHOD = 'bilinear'  # tf.image.resize: half-pixel centres, no antialiasing
PIXEL_DIVISOR = 127.5  # [0, 255] -> x / PIXEL_DIVISOR + PIXEL_OFFSET in [-1, 1]
PIXEL_OFFSET = -1.0


def decode(encoded: tf.Tensor, channels: int) -> tf.Tensor:
  """JPEG/PNG/GIF/BMP bytes -> uint8 (h, w, channels)."""
  image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
  if channels == 1:
    image = tf.image.rgb_to_grayscale(image)
  return image


def to_unit_range(image: tf.Tensor) -> tf.Tensor:
  """uint8 or float pixels in [0, 255] -> float32 in [-1, 1]."""
  return tf.cast(image, tf.float32) / PIXEL_DIVISOR + PIXEL_OFFSET


def _resize(image: tf.Tensor, size) -> tf.Tensor:
  return tf.image.resize(tf.cast(image, tf.float32), size, method=RESIZE_METHOD)


def eval_image(image: tf.Tensor, opts: ImageOptions) -> tf.Tensor:
  """Decoded uint8 (h, w, C) -> float32 (H, W, C) in [-1, 1]."""
  out = to_unit_range(_resize(image, opts.size))
  return tf.ensure_shape(out, (*opts.size, opts.channels))


def train_image(image: tf.Tensor, opts: ImageOptions, seed: tf.Tensor) -> tf.Tensor:
  """Decoded uint8 (h, w, C) -> augmented float32 (H, W, C) in [-1, 1]."""
  if not opts.augment:
    return eval_image(image, opts)
  crop_seed, flip_seed = augment.split(seed, 2)
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
      seed=crop_seed, min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
      area_range=opts.inception_crop_area, max_attempts=10,
      use_image_if_no_bounding_boxes=True)
  image = tf.slice(image, begin, size)
  image = _resize(image, opts.size)
  if opts.random_flip:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  return tf.ensure_shape(to_unit_range(image), (*opts.size, opts.channels))


def decode_checked(encoded: tf.Tensor, opts: ImageOptions) -> tuple[tf.Tensor, tf.Tensor]:
  """(uint8 image, status): status EMPTY for empty bytes (decoding is then skipped)."""
  empty = tf.equal(tf.strings.length(encoded), 0)
  image = tf.cond(empty, lambda: tf.zeros([1, 1, opts.channels], tf.uint8),
                  lambda: decode(encoded, opts.channels))
  status = tf.where(empty, errors.EMPTY, errors.OK)
  return image, status
