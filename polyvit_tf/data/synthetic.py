"""Small synthetic TFRecords for any config (tests, quick runs of e.g. configs/tiny.py).

    cfg = write_synthetic_tfrecords(config, out_dir, examples_per_class=4)

writes, for every task, `<out_dir>/<task>/{train,validation,test}-00000-of-00001.tfrecord`
in polyvit_tf's tf.Example format with media sized for the task's modality, whose class is
visible (the modality's `synthetic_payload`: a square's position in an image, a tone's pitch,
a blob's direction of motion in a video), and returns a copy of the config whose tasks read
them.
Multi-label tasks get one or two labels per example. Deterministic in `seed`.
"""

from __future__ import annotations

import copy
import os
from typing import Sequence

import ml_collections
import numpy as np

from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import features
from polyvit_tf.data import records


def write_synthetic_tfrecords(config: ml_collections.ConfigDict, out_dir: str,
                              examples_per_class: int = 4, *,
                              splits: Sequence[str] = ('train', 'validation', 'test'),
                              seed: int = 0) -> ml_collections.ConfigDict:
  """Writes small class-dependent TFRecords for every task; returns the config reading them."""
  config = copy.deepcopy(config)
  spec = specs_lib.resolve(config)
  for task in spec.task_names:
    t, geometry, opts = spec.task(task), spec.modality_of(task), spec.data[task].options
    rng = np.random.default_rng([seed, sum(map(ord, task))])
    directory = os.path.join(out_dir, task)
    counts = {}
    for split in splits:
      examples = []
      for i in range(examples_per_class * t.num_classes):
        c = i % t.num_classes
        labels = [c, (c + 1) % t.num_classes] if t.multilabel and i % 2 else [c]
        payload = geometry.impl.synthetic_payload(labels, t.num_classes, geometry, opts, rng)
        examples.append(features.example(f'{task}/{split}/{i:04d}', labels, payload))
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
