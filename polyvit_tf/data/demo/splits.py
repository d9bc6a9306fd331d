"""Labelled splits of a synthetic demo data set: labels round-robin over the classes."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import tensorflow as tf


def labelled_splits(name: str, split_sizes: Mapping[str, int], num_classes: int, seed: int,
                    make: Callable[[str, int, np.random.Generator], tf.train.Example]
                    ) -> dict[str, list[tf.train.Example]]:
  """{split: examples}; example i of a split has label i mod num_classes and id
  `<name>/<split>/<i>`; one generator seeded with `seed` is drawn from in split order."""
  rng = np.random.default_rng(seed)
  return {split: [make(f'{name}/{split}/{i:04d}', i % num_classes, rng) for i in range(size)]
          for split, size in split_sizes.items()}
