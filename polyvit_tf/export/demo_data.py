"""Held-out inputs for the TFLite report and int8 calibration.

`source='eval'` reads preprocessed examples of a task's evaluation split through the training
evaluation pipeline (polyvit_tf.data.pipeline.eval_dataset, first view of each example);
`source='synthetic'` draws seeded uniform values in [-1, 1] of the task's input shape (the
value range of the preprocessed images and videos), for tests and for runs without data.
"""

from __future__ import annotations

from typing import Sequence

import ml_collections
import numpy as np

SOURCES = ('eval', 'synthetic')


def synthetic_inputs(input_shape: Sequence[int], n: int, *, seed: int = 0) -> np.ndarray:
  """float32 (n, *input_shape), uniform in [-1, 1], a pure function of the seed."""
  rng = np.random.default_rng(seed)
  return rng.uniform(-1.0, 1.0, size=(n,) + tuple(input_shape)).astype(np.float32)


def eval_inputs(config: ml_collections.ConfigDict, task: str, n: int) -> np.ndarray:
  """Up to `n` preprocessed examples of `task`'s eval split (first view, padding dropped)."""
  from polyvit_tf.data import pipeline  # pylint: disable=import-outside-toplevel
  out, have = [], 0
  for batch in pipeline.eval_dataset(config, task, split='eval').as_numpy_iterator():
    x = batch['inputs'][batch['mask'] > 0][:, 0]
    out.append(x)
    have += len(x)
    if have >= n:
      break
  if not have:
    raise ValueError(f'task {task!r}: the eval split of {config.tasks[task].data.source!r} '
                     'has no examples.')
  return np.concatenate(out)[:n].astype(np.float32)


def inputs(config: ml_collections.ConfigDict, task: str, input_shape: Sequence[int], n: int,
           *, source: str, seed: int = 0) -> np.ndarray:
  if source == 'eval':
    return eval_inputs(config, task, n)
  if source == 'synthetic':
    return synthetic_inputs(input_shape, n, seed=seed)
  raise ValueError(f'data source must be one of {list(SOURCES)}, got {source!r}.')
