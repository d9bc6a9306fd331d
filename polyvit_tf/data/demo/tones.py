"""The demo audio data set: six sound classes told apart only by time-frequency structure.

Every clip has the same RMS loudness, a random pitch, random timing and background noise,
so the class is not in the loudness or the spectrum's average alone: a rising and a
falling chirp have the same average spectrum; slow and fast amplitude modulation differ
only in how the energy changes over time.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from polyvit_tf.data.demo import splits
from polyvit_tf.modalities import audio as audio_modality

SAMPLE_RATE = 16_000
SECONDS = 1.6
SEED = 1600
CLASS_NAMES = ('rising', 'falling', 'slow_am', 'fast_am', 'trill', 'harmonic')
SPLIT_SIZES = {'train': 720, 'validation': 60, 'test': 240}


def _phase(freq: np.ndarray) -> np.ndarray:
  """Phase of a tone whose instantaneous frequency is `freq` (Hz per sample)."""
  return 2.0 * np.pi * np.cumsum(freq) / SAMPLE_RATE


def synthesise(label: int, rng: np.random.Generator) -> np.ndarray:
  """One clip of class `label`, float64 in [-1, 1]."""
  n = int(SAMPLE_RATE * SECONDS)
  t = np.arange(n) / SAMPLE_RATE
  f0 = np.exp(rng.uniform(np.log(400.0), np.log(2000.0)))
  ratio = rng.uniform(1.5, 2.5)
  offset = rng.uniform(0.0, 1.0)
  name = CLASS_NAMES[label]
  if name in ('rising', 'falling'):
    period = rng.uniform(0.3, 0.6)
    pos = ((t / period) + offset) % 1.0
    if name == 'falling':
      pos = 1.0 - pos
    freq = f0 * ratio ** pos
    x = np.sin(_phase(freq))
  elif name in ('slow_am', 'fast_am'):
    rate = rng.uniform(2.0, 4.0) if name == 'slow_am' else rng.uniform(10.0, 16.0)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * (rate * t + offset))
    x = envelope * np.sin(_phase(np.full(n, f0)))
  elif name == 'trill':
    hold = rng.uniform(0.05, 0.1)
    high = (((t / hold) + offset) % 2.0) >= 1.0
    x = np.sin(_phase(np.where(high, f0 * ratio, f0)))
  else:  # harmonic
    f = f0 / 2.0
    x = sum((0.7 ** k) * np.sin(_phase(np.full(n, f * (k + 1))) + rng.uniform(0, 6.3))
            for k in range(6) if f * (k + 1) < 7500)
  x = x / np.sqrt(np.mean(x ** 2))
  snr_db = rng.uniform(5.0, 20.0)
  noise = rng.standard_normal(n) * 10 ** (-snr_db / 20.0)
  y = x + noise
  return 0.25 * y / np.sqrt(np.mean(y ** 2))


def examples() -> dict[str, list[tf.train.Example]]:
  return splits.labelled_splits(
      'tones', SPLIT_SIZES, len(CLASS_NAMES), SEED,
      lambda example_id, label, rng: audio_modality.example(
          example_id, label, waveform=np.clip(synthesise(label, rng), -1.0, 1.0),
          sample_rate=SAMPLE_RATE))
