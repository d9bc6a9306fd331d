"""The two demo image data sets from scikit-learn's bundled handwritten digits (1797 scans)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
import tensorflow as tf

from polyvit_tf.modalities import image as image_modality

SIZE = 32
SEED = 1797
# Disjoint pools of the shuffled scans: digits uses the first 1400, digit_groups the rest.
SPLITS = {
    'digits': {'train': (0, 1000), 'validation': (1000, 1100), 'test': (1100, 1400)},
    'digit_groups': {'train': (1400, 1550), 'validation': (1550, 1597),
                     'test': (1597, 1797)},
}
CLASS_NAMES = {
    'digits': tuple(str(d) for d in range(10)),
    'digit_groups': ('0_3_6_9', '1_4_7', '2_5_8'),
}


def _scans() -> tuple[np.ndarray, np.ndarray]:
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  data = load_digits()
  order = np.random.default_rng(SEED).permutation(len(data.target))
  return data.images[order], data.target[order]


def _pngs(scans: np.ndarray) -> list[bytes]:
  """8x8 scans (0..16) -> 32x32 RGB PNGs (bilinear upsampling, dark digit on white)."""
  gray = tf.constant(scans[..., None] / 16.0, tf.float32)
  big = tf.image.resize(gray, (SIZE, SIZE), method='bilinear').numpy()[..., 0]
  pixels = np.round(255.0 * (1.0 - np.clip(big, 0.0, 1.0))).astype(np.uint8)
  out = []
  for p in pixels:
    buffer = io.BytesIO()
    Image.fromarray(p).convert('RGB').save(buffer, format='PNG')
    out.append(buffer.getvalue())
  return out


def examples(name: str) -> dict[str, list[tf.train.Example]]:
  """{split: examples} of `name` ('digits' or 'digit_groups')."""
  images, targets = _scans()
  pngs = _pngs(images)
  out = {}
  for split, (lo, hi) in SPLITS[name].items():
    out[split] = []
    for i in range(lo, hi):
      label = int(targets[i]) if name == 'digits' else int(targets[i]) % 3
      out[split].append(image_modality.example(f'{name}/{split}/{i:04d}', label, pngs[i]))
  return out
