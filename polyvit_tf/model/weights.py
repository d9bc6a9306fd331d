"""PolyViT weights by name: read, assign (with a load report) and checkpoint.

Names are the Keras variable paths, e.g. `tokenizer_video/kernel`,
`shared_block_7/attention/query/kernel`, `head_cifar100/bias`. They are the canonical
names every checkpoint reader maps to, and the object graph of `checkpoint(model)` is one
attribute per layer name, so a training checkpoint's `model` node restores into any PolyViT
with the same layers (and a subset of them with `expect_partial`).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import tensorflow as tf

from polyvit_tf.model.polyvit import PolyViT


@dataclasses.dataclass
class LoadReport:
  """What `assign` did: names assigned, skipped (not in the model), missing, mismatched."""
  assigned: list[str] = dataclasses.field(default_factory=list)
  unexpected: list[str] = dataclasses.field(default_factory=list)
  missing: list[str] = dataclasses.field(default_factory=list)
  mismatched: list[str] = dataclasses.field(default_factory=list)  # 'name: (src) vs (dst)'


class WeightLoadError(ValueError):
  """Missing weights or shape mismatches; the message lists the offending names."""


def get(model: PolyViT) -> dict[str, np.ndarray]:
  """Every trainable weight of the model as numpy, by name."""
  return {v.path: np.asarray(v) for v in model.trainable_variables}


def variables(model: PolyViT) -> dict[str, tf.Variable]:
  return {v.path: v for v in model.trainable_variables}


def assign(model: PolyViT, weights: Mapping[str, np.ndarray], *,
           allow_missing: bool = False) -> LoadReport:
  """Assigns `weights` by name. Raises WeightLoadError on shape mismatches, and on names the
  model has but `weights` lacks unless `allow_missing`; names the model lacks are reported
  as unexpected and skipped. Nothing is assigned when it raises."""
  targets = variables(model)
  report = LoadReport()
  for name, value in weights.items():
    if name not in targets:
      report.unexpected.append(name)
    elif tuple(np.shape(value)) != tuple(targets[name].shape):
      report.mismatched.append(
          f'{name}: {tuple(np.shape(value))} vs {tuple(targets[name].shape)}')
  report.missing = [n for n in targets if n not in weights]
  problems = list(report.mismatched) + ([] if allow_missing else report.missing)
  if problems:
    raise WeightLoadError('cannot load weights: ' + '; '.join(
        ([f'shape mismatch: {", ".join(report.mismatched)}'] if report.mismatched else [])
        + ([f'missing: {", ".join(report.missing)}']
           if report.missing and not allow_missing else [])))
  for name, value in weights.items():
    if name in targets:
      targets[name].assign(np.asarray(value, dtype=targets[name].dtype))
      report.assigned.append(name)
  return report


def checkpoint(model: PolyViT) -> tf.train.Checkpoint:
  """The model's object graph for tf.train.Checkpoint: one attribute per weight-holding layer."""
  return tf.train.Checkpoint(**model.layers())
