"""The image modality: (H, W, C) pixels in [-1, 1], 2D patches.

tf.Example payload: `image/encoded` bytes, a JPEG or PNG file as stored. Canonical payload:
{'image': encoded bytes}. Training: inception crop (`data.inception_crop_area`) and flip
(`data.random_flip`); evaluation and serving: the whole image resized (one view). Raw-input
signature `<task>_raw`: `encoded` string (batch,); the serving client sends any image PIL
reads (JPEG / PNG as stored, others re-encoded as PNG, as the converter stores them). Heads
start LeCun normal and the loss is sigmoid cross-entropy (the original code trains images BiT
style), multi-label or not.
The preprocessing itself is polyvit_tf/data/image.py.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from polyvit_tf.data import errors
from polyvit_tf.data import features
from polyvit_tf.data import image as image_lib
from polyvit_tf.data import media
from polyvit_tf.data import options as options_lib
from polyvit_tf.data.options import ImageOptions
from polyvit_tf.modalities import base
from polyvit_tf.modalities import describe

ENCODED = 'image/encoded'


def example(example_id: str, labels: int | Sequence[int], encoded: bytes) -> tf.train.Example:
  """An image example; `encoded` is a JPEG or PNG file's bytes."""
  return features.example(example_id, labels, {ENCODED: features.bytes_feature([encoded])})


def check_image_file(path: str) -> None:
  """The picture size in the file's header (PIL reads only the header) is within the decode
  budget (polyvit_tf.data.options.MAX_IMAGE_PIXELS); MediaError otherwise."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(path) as img:
      width, height = img.size
  except Exception as e:  # pylint: disable=broad-except  (PIL raises many kinds)
    raise media.MediaError(f'undecodable image ({type(e).__name__}: {str(e)[:160]})') from None
  if width * height > options_lib.MAX_IMAGE_PIXELS:
    raise media.MediaError(f'{width} x {height} pixels exceed the decode budget of '
                           f'{options_lib.MAX_IMAGE_PIXELS} pixels (max_image_pixels)')


def _synthetic_png(labels: Sequence[int], num_classes: int, size, rng) -> bytes:
  """A dark noisy image with a bright square in the cell of each label."""
  import io  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  h, w = size
  pixels = rng.uniform(0, 60, (h, w, 3))
  cells = int(np.ceil(np.sqrt(num_classes)))
  for c in labels:
    r, q = divmod(c, cells)
    y0, x0 = r * h // cells, q * w // cells
    pixels[y0:y0 + max(1, h // cells), x0:x0 + max(1, w // cells)] = 230
  buffer = io.BytesIO()
  Image.fromarray(pixels.astype(np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


class ImageModality(base.Modality):
  """Images (see the module docstring)."""

  name = 'image'
  input_rank = 2
  input_axes = '(H, W)'
  data_defaults = {'inception_crop_area': (0.05, 1.0)}  # training crop: fraction of the area
  default_head_init = 'lecun_normal'
  media_extensions = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp', '.tif', '.tiff')
  tfds_feature = 'Image'
  tfds_encoded = True
  crossmodal_rank = 0  # the preferred source of a missing modality (the original's choice)

  def default_loss(self, multilabel: bool) -> str:
    del multilabel
    return 'sigmoid_xent'

  def options(self, geometry, data: base.DataFields, eval_views: int) -> ImageOptions:
    del eval_views  # one view: the whole image
    return ImageOptions(size=geometry.input_size, channels=geometry.channels,
                        augment=bool(data['augment']),
                        inception_crop_area=data.interval('inception_crop_area', 0.0, 1.0),
                        random_flip=bool(data['random_flip']))

  def num_views(self, opts: ImageOptions) -> int:
    return 1

  # ------------------------------------------------------------------------ tf.Example
  def feature_spec(self) -> dict:
    return {ENCODED: tf.io.FixedLenFeature([], tf.string, default_value='')}

  def payload_spec(self) -> dict:
    return {'image': tf.TensorSpec([], tf.string)}

  def parse(self, parsed: dict) -> dict:
    return {'image': parsed[ENCODED]}

  def payload_features(self, payload: Mapping[str, np.ndarray]) -> dict:
    return {ENCODED: features.bytes_feature([payload['image']])}

  def schema_features(self) -> list:
    return [(ENCODED, 'bytes', True)]

  # ------------------------------------------------------------------------- pipelines
  def train_inputs(self, payload, opts, seed):
    image, status = image_lib.decode_checked(payload['image'], opts)
    return image_lib.train_image(image, opts, seed), status

  def _view(self, encoded: tf.Tensor, opts: ImageOptions) -> tf.Tensor:
    """Encoded JPEG/PNG -> float32 (H, W, C) in [-1, 1], the whole image resized; an
    InvalidArgumentError naming the limit, before decoding, when the header declares more
    than `opts.max_pixels` (the decode budget)."""
    return image_lib.eval_image(image_lib.decode(encoded, opts.channels, opts.max_pixels), opts)

  def eval_checks(self, payload, opts):
    return image_lib.budget_checks(payload['image'], opts.max_pixels)

  def eval_inputs(self, payload, opts):
    status = errors.check_status(self.eval_checks(payload, opts))
    view = tf.cond(tf.equal(status, errors.OK), lambda: self._view(payload['image'], opts),
                   lambda: tf.zeros([*opts.size, opts.channels]))
    return view[None], status

  # --------------------------------------------------------------------------- serving
  def raw_inputs(self, opts):
    return [base.RawInput('raw', tf.TensorSpec((None,), tf.string, name='encoded'),
                          lambda encoded: self._view(encoded, opts)[tf.newaxis])]

  def preprocessing_spec(self, opts: options_lib.ImageOptions) -> dict:
    """Eval / serving preprocessing of an image task (data/image.py eval_image)."""
    return {
        'modality': 'image',
        'input': 'decoded RGB pixels, uint8 (height, width, 3), any size (the raw signature '
                 'decodes JPEG / PNG / GIF / BMP with tf.io.decode_image)',
        'channels': opts.channels,
        'grayscale': describe.GRAYSCALE if opts.channels == 1 else None,
        'resize': {'size': list(opts.size), 'keep_aspect_ratio': False,
                   **describe.bilinear(image_lib.RESIZE_METHOD)},
        'value_scaling': describe.value_scaling(),
        'views': {'count': 1},
        'limits': {'max_pixels': opts.max_pixels,
                   'doc': 'height x width of the decoded image (the raw signature refuses more)'},
    }

  def warmup_input(self, suffix, geometry):
    del suffix, geometry
    return np.array([tf.io.encode_jpeg(base.warmup_pixels()).numpy()], dtype=object)

  def client_file(self, path, settings):
    """Any image PIL reads: JPEG / PNG bytes as stored, anything else re-encoded as PNG."""
    del settings
    if os.path.isdir(path):
      raise media.MediaError('a directory of frames is a video, but the task is image')
    check_image_file(path)
    return media.image_bytes(path)

  # ----------------------------------------------------------------------- media files
  def convert_file(self, path, opts):
    return {ENCODED: features.bytes_feature([media.image_bytes(path, opts.limits)])}

  def write_media_file(self, payload, stem):
    data = bytes(payload['image'])
    path = stem + ('.png' if data.startswith(b'\x89PNG') else '.jpg')
    with open(path, 'wb') as f:
      f.write(data)
    return path

  def synthetic_payload(self, labels, num_classes, geometry, opts, rng):
    del opts
    png = _synthetic_png(labels, num_classes, geometry.input_size, rng)
    return {ENCODED: features.bytes_feature([png])}

  def tfds_payload(self, value, feature):
    del feature
    return {'image': value}  # read encoded (tfds.decode.SkipDecoding)


MODALITY = ImageModality()
