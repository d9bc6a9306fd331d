"""Small synthetic TFRecords for any config (tests, quick runs of e.g. configs/tiny.py).

    cfg = write_synthetic_tfrecords(config, out_dir, examples_per_class=4)

writes, for every task, `<out_dir>/<task>/{train,validation,test}-00000-of-00001.tfrecord`
in polyvit_tf's tf.Example format with media sized for the task's modality (images of the
input size, audio clips a little longer than the input frames, videos a little longer and
larger than the input clip), whose class is visible (a square's position, a tone's pitch,
a blob's direction of motion), and returns a copy of the config whose tasks read them.
Multi-label tasks get one or two labels per example. Deterministic in `seed`.
"""

from __future__ import annotations

import copy
import io
import os
from typing import Sequence

import ml_collections
import numpy as np
from PIL import Image

from polyvit_tf.data import features
from polyvit_tf.data import filterbank
from polyvit_tf.data import options as options_lib
from polyvit_tf.data import records
from polyvit_tf.model import spec as spec_lib


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format=fmt, **({'quality': 90} if fmt == 'JPEG' else {}))
  return buffer.getvalue()


def _image(labels: Sequence[int], num_classes: int, size, rng) -> bytes:
  h, w = size
  pixels = rng.uniform(0, 60, (h, w, 3))
  cells = int(np.ceil(np.sqrt(num_classes)))
  for c in labels:
    r, q = divmod(c, cells)
    y0, x0 = r * h // cells, q * w // cells
    pixels[y0:y0 + max(1, h // cells), x0:x0 + max(1, w // cells)] = 230
  return _encode(pixels.astype(np.uint8), 'PNG')


def _audio(labels: Sequence[int], num_classes: int, frames: int, rng) -> np.ndarray:
  _, hop, _ = filterbank.frame_geometry()
  n = (frames + 20) * hop + 400
  t = np.arange(n) / filterbank.SAMPLE_RATE
  x = rng.normal(0, 0.01, n)
  for c in labels:
    freq = 200.0 * (7000.0 / 200.0) ** ((c + 0.5) / num_classes)
    x += 0.3 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3))
  return np.clip(x, -1, 1)


def _video(labels: Sequence[int], num_frames: int, size, rng) -> list[bytes]:
  h, w = size[0] + 8, size[1] + 8
  yy, xx = np.mgrid[0:h, 0:w]
  c = labels[0]
  dy, dx = [(0, 1), (0, -1), (1, 0), (-1, 0)][c % 4]
  speed = 1.0 + c // 4
  cy, cx = h / 2 - dy * num_frames * speed / 2, w / 2 - dx * num_frames * speed / 2
  out = []
  for f in range(num_frames):
    blob = np.exp(-((yy - cy - dy * speed * f) ** 2 + (xx - cx - dx * speed * f) ** 2) / 8.0)
    frame = 30 + 200 * blob[..., None] * np.ones(3) + rng.normal(0, 5, (h, w, 3))
    out.append(_encode(np.clip(frame, 0, 255).astype(np.uint8), 'JPEG'))
  return out


def write_synthetic_tfrecords(config: ml_collections.ConfigDict, out_dir: str,
                              examples_per_class: int = 4, *,
                              splits: Sequence[str] = ('train', 'validation', 'test'),
                              seed: int = 0) -> ml_collections.ConfigDict:
  """Writes small class-dependent TFRecords for every task; returns the config reading them."""
  config = copy.deepcopy(config)
  for task in spec_lib.task_names(config):
    t = spec_lib.task_spec(config, task)
    m = spec_lib.modality_spec(config, t.modality)
    rng = np.random.default_rng([seed, sum(map(ord, task))])
    directory = os.path.join(out_dir, task)
    counts = {}
    for split in splits:
      examples = []
      for i in range(examples_per_class * t.num_classes):
        c = i % t.num_classes
        labels = [c, (c + 1) % t.num_classes] if t.multilabel and i % 2 else [c]
        example_id = f'{task}/{split}/{i:04d}'
        if t.modality == 'image':
          examples.append(features.image_example(
              example_id, labels, _image(labels, t.num_classes, m.input_size, rng)))
        elif t.modality == 'audio':
          wave = _audio(labels, t.num_classes, m.input_size[0], rng)
          examples.append(features.audio_example(example_id, labels, waveform=wave))
        else:
          opts = options_lib.for_task(config, task)
          span = (opts.num_frames - 1) * opts.stride + 3
          examples.append(features.video_example(
              example_id, labels, _video(labels, span, m.input_size[1:], rng), 25.0))
      records.write_split(directory, split, examples)
      counts[split] = len(examples)
    records.write_info(directory, modality=t.modality,
                       class_names=[f'class_{i}' for i in range(t.num_classes)],
                       split_counts=counts)
    data = config.tasks[task].data
    data.source = f'tfrecord:{directory}'
    data.train_split = 'train'
    data.eval_split = 'test' if 'test' in splits else splits[-1]
    data.validation_split = 'validation' if 'validation' in splits else ''
  return config
