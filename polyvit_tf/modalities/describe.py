"""Pieces of the JSON descriptions of the serving preprocessing (`Modality.preprocessing_spec`).

What an app needs to reproduce a task's raw-input preprocessing outside TensorFlow: the
modality modules describe theirs with these shared pieces (the constants of the preprocessing
libraries, data/image.py, audio.py, video.py, never typed a second time); the TFLite manifest
carries the descriptions (polyvit_tf/export/preprocessing_spec.py, export/tflite.py) and
polyvit_tf/edge/reference_preprocess.py executes them.
"""

from __future__ import annotations

from polyvit_tf.data import image as image_lib

# tf.image.rgb_to_grayscale (data/image.py and data/video.py use it for one-channel inputs).
GRAYSCALE = {'weights': [0.2989, 0.5870, 0.1140], 'max_value': 255,
             'doc': 'tf.image.rgb_to_grayscale: g = (r w0 + g w1 + b w2) / 255 in float32, '
                    'uint8 = trunc(g * 255.5)'}
EVENLY_SPACED = ('starts of `count` windows of `length` steps over a clip of `total`: one '
                 'window centred at (total - length) // 2 (0 when shorter); more: '
                 'round_half_even(linspace(0, max(total - length, 0), count)) in float32')


def value_scaling() -> dict:
  return {'divisor': image_lib.PIXEL_DIVISOR, 'offset': image_lib.PIXEL_OFFSET,
          'doc': 'float32 pixels in [0, 255] (after resizing) -> x / divisor + offset'}


def bilinear(method: str) -> dict:
  return {'method': method, 'half_pixel_centers': True, 'antialias': False,
          'doc': 'tf.image.resize: source position (i + 0.5) * in / out - 0.5, clamped '
                 'neighbours, float32 lerp along width then height'}
