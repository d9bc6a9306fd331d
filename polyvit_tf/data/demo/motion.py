"""The demo video data set: the direction a blob moves in (needs temporal order).

Each clip: 16 frames of 40x40 at 8 fps, a random background colour with noise, a static
distractor blob, and a moving blob of random size, colour, speed and path whose direction
(right, left, down, up) is the class. Reversing time swaps the classes, so a single frame
or an unordered set of frames cannot tell them apart.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
import tensorflow as tf

from polyvit_tf.data.demo import splits
from polyvit_tf.modalities import video as video_modality

FRAMES = 16
SIZE = 40
FPS = 8.0
SEED = 4016
CLASS_NAMES = ('right', 'left', 'down', 'up')
SPLIT_SIZES = {'train': 480, 'validation': 40, 'test': 160}


_GRID = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)


def _blobs(cy: np.ndarray, cx: np.ndarray, radius: float) -> np.ndarray:
  """Gaussian blobs centred at (cy[i], cx[i]) -> (len(cy), SIZE, SIZE)."""
  yy, xx = _GRID
  d2 = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2
  return np.exp(-d2 / (2.0 * radius ** 2))


def synthesise(label: int, rng: np.random.Generator) -> np.ndarray:
  """One clip of class `label`, uint8 (FRAMES, SIZE, SIZE, 3)."""
  background = rng.uniform(0.0, 1.0, 3)
  colour = rng.uniform(0.0, 1.0, 3)
  while np.abs(colour - background).max() < 0.4:
    colour = rng.uniform(0.0, 1.0, 3)
  radius = rng.uniform(3.0, 5.0)
  speed = rng.uniform(1.0, 1.6)  # pixels per frame
  travel = speed * (FRAMES - 1)
  along = rng.uniform(radius, SIZE - radius - travel)  # start position along the motion
  across = rng.uniform(radius + 2, SIZE - radius - 2)
  d_centre = rng.uniform(6, SIZE - 6, 2)
  distractor = _blobs(d_centre[:1], d_centre[1:], rng.uniform(2.0, 4.0))[0]
  d_colour = rng.uniform(0.0, 1.0, 3)
  pos = along + speed * np.arange(FRAMES)
  if CLASS_NAMES[label] in ('left', 'up'):
    pos = SIZE - pos
  across = np.full(FRAMES, across)
  horizontal = CLASS_NAMES[label] in ('right', 'left')
  moving = _blobs(across, pos, radius) if horizontal else _blobs(pos, across, radius)
  still = background + (d_colour - background) * distractor[..., None]  # (SIZE, SIZE, 3)
  clip = still[None] + (colour - still[None]) * moving[..., None]
  clip = clip + rng.normal(0.0, 0.04, clip.shape)
  return np.clip(np.round(clip * 255.0), 0, 255).astype(np.uint8)


def _jpeg(frame: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(frame).save(buffer, format='JPEG', quality=90)
  return buffer.getvalue()


def examples() -> dict[str, list[tf.train.Example]]:
  return splits.labelled_splits(
      'motion', SPLIT_SIZES, len(CLASS_NAMES), SEED,
      lambda example_id, label, rng: video_modality.example(
          example_id, label, [_jpeg(f) for f in synthesise(label, rng)], FPS))
