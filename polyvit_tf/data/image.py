"""Image preprocessing: decode, inception crop or resize, flip, values in [-1, 1].

Decoding is budgeted: `header_size` reads an encoded image's height and width from its
header (JPEG SOF via tf.io.extract_jpeg_shape, PNG IHDR, GIF logical screen, BMP info
header) without decoding it; `budget_checks` turns that into the checks every decode path
applies (empty, unknown format, bad header, more than `max_pixels` pixels): `decode`
fails with their message (serving), `decode_checked` returns their status (training).
GIF is refused: giflib inflates every frame of an animation before TF keeps the first, so
no header bounds its memory (a 260 KB GIF of 20 frames of 4000 x 4000 costs 360 MB); the
converter and the serving client re-encode GIFs as PNG.

Train: a random crop covering `inception_crop_area` of the image with aspect ratio in
[3/4, 4/3] (the inception crop of big_vision / the original code), resized to the
configured size, random horizontal flip. Eval: the whole image resized to the configured
size (the original's eval "resize to 384"). Bilinear resizing throughout.
"""

from __future__ import annotations

import tensorflow as tf

from polyvit_tf.data import augment
from polyvit_tf.data import errors
from polyvit_tf.data import options as options_lib
from polyvit_tf.data.options import ImageOptions

RESIZE_METHOD = 'bilinear'  # tf.image.resize: half-pixel centres, no antialiasing
PIXEL_DIVISOR = 127.5  # [0, 255] -> x / PIXEL_DIVISOR + PIXEL_OFFSET in [-1, 1]
PIXEL_OFFSET = -1.0


FORMATS = ('JPEG', 'PNG', 'GIF', 'BMP')  # header_size's format ids 0..3; -1: unknown
ACCEPTED = 'JPEG, PNG or BMP'
_GIF = FORMATS.index('GIF')
_HEADER_BYTES = 32


def _header(encoded: tf.Tensor) -> tf.Tensor:
  """The first 32 bytes as int64 (32,), zero-padded when the string is shorter."""
  head = tf.strings.substr(encoded, 0, _HEADER_BYTES)
  padded = tf.strings.substr(tf.strings.join([head, b'\0' * _HEADER_BYTES]), 0, _HEADER_BYTES)
  return tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)


def _uint(b: tf.Tensor, offset: int, size: int, big_endian: bool = False) -> tf.Tensor:
  order = range(size) if big_endian else reversed(range(size))
  value = tf.constant(0, tf.int64)
  for i in order:
    value = value * 256 + b[offset + i]
  return value


def _matches(b: tf.Tensor, offset: int, magic: bytes) -> tf.Tensor:
  return tf.reduce_all(tf.equal(b[offset:offset + len(magic)], list(magic)))


def header_size(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """(format id int32, height int64, width int64) from an encoded image's header only.

  Format ids index FORMATS (-1: none of them); height and width are -1 when the header
  is too short. A corrupt JPEG header fails in tf.io.extract_jpeg_shape (InvalidArgument).
  """
  b = _header(encoded)
  length = tf.cast(tf.strings.length(encoded), tf.int64)
  is_jpeg = _matches(b, 0, b'\xff\xd8\xff')
  is_png = _matches(b, 0, b'\x89PNG\r\n\x1a\n')
  is_gif = _matches(b, 0, b'GIF8')
  is_bmp = _matches(b, 0, b'BM')
  fmt = tf.where(is_jpeg, 0, tf.where(is_png, 1, tf.where(is_gif, 2, tf.where(is_bmp, 3, -1))))

  def signed32(value):  # BMP sizes are signed (a negative height means top-down rows)
    return tf.abs(tf.where(value >= 1 << 31, value - (1 << 32), value))

  jpeg_hw = tf.cond(is_jpeg,
                    lambda: tf.cast(tf.io.extract_jpeg_shape(encoded)[:2], tf.int64),
                    lambda: tf.constant([-1, -1], tf.int64))
  sizes = tf.stack([
      jpeg_hw,
      tf.where((length >= 24) & _matches(b, 12, b'IHDR'),
               tf.stack([_uint(b, 20, 4, True), _uint(b, 16, 4, True)]), -1),
      tf.where(length >= 10, tf.stack([_uint(b, 8, 2), _uint(b, 6, 2)]), -1),
      tf.where(length >= 26, tf.stack([signed32(_uint(b, 22, 4)), signed32(_uint(b, 18, 4))]),
               -1),
      tf.constant([-1, -1], tf.int64)])
  hw = tf.gather(sizes, tf.where(fmt < 0, 4, fmt))
  return tf.cast(fmt, tf.int32), hw[0], hw[1]


def pixels(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
  """height * width as int64, saturating (header sizes are up to 2^32 each)."""
  cap = tf.constant(1 << 31, tf.int64)
  return tf.minimum(tf.cast(height, tf.int64), cap) * tf.minimum(tf.cast(width, tf.int64), cap)


def budget_checks(encoded: tf.Tensor, max_pixels: int, what: str = 'image') -> list:
  """errors.Check list of one encoded image: empty, unknown format, bad header, too big."""
  fmt, height, width = header_size(encoded)
  size = errors.text(height, ' x ', width, ' pixels')
  return [
      (tf.equal(tf.strings.length(encoded), 0), errors.EMPTY, f'{what} is empty (0 bytes)'),
      (fmt < 0, errors.UNDECODABLE, f'{what}: unknown image format (expected {ACCEPTED})'),
      (tf.equal(fmt, _GIF), errors.UNDECODABLE,
       f'{what}: GIF is not accepted (its frames are all inflated before decoding; no header '
       f'bounds that); send {ACCEPTED}'),
      ((height < 1) | (width < 1), errors.UNDECODABLE,
       errors.text(what, ': bad ', tf.gather(FORMATS, tf.maximum(fmt, 0)), ' header (', size,
                   ')')),
      (pixels(height, width) > max_pixels, errors.OVER_BUDGET,
       errors.text(what, ': ', size, ' exceed the decode budget of ', str(max_pixels),
                   ' pixels (max_image_pixels)')),
  ]


def budget_status(encoded: tf.Tensor, opts: ImageOptions) -> tf.Tensor:
  """errors status of an encoded image under `opts.max_pixels` (OK: safe to decode)."""
  return errors.check_status(budget_checks(encoded, opts.max_pixels))


def decode(encoded: tf.Tensor, channels: int,
           max_pixels: int = options_lib.MAX_IMAGE_PIXELS) -> tf.Tensor:
  """JPEG/PNG/BMP bytes -> uint8 (h, w, channels); an InvalidArgumentError naming the
  problem, before decoding, when the header is bad or declares more than `max_pixels`."""
  check = errors.assert_checks(budget_checks(encoded, max_pixels))
  image = tf.io.decode_image(errors.gated(encoded, check), channels=3, expand_animations=False)
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
  """(uint8 image, status): status `budget_status` (decoding is skipped unless OK)."""
  status = budget_status(encoded, opts)
  image = tf.cond(tf.equal(status, errors.OK),
                  lambda: decode(encoded, opts.channels, opts.max_pixels),
                  lambda: tf.zeros([1, 1, opts.channels], tf.uint8))
  return image, status
