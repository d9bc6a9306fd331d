"""The trivial baseline a task must beat when it has no configured blessing threshold.

A model that cannot beat "always answer the same" is not worth serving, so the blessing fails
closed. The baseline is measured on the same eval examples as the model:
  top1 (single-label tasks): the majority-class rate, the top-1 accuracy of always predicting
      the most frequent class (for multi-label tasks: the share of examples that have it);
  map (multi-label tasks): the class prevalence, the mean over classes with a positive example
      of the share of examples that have the class, which is the mAP of a constant score
      (every score tied: one threshold, recall 1, precision = prevalence).
"""

from __future__ import annotations

import numpy as np


class TrivialBaseline:
  """Counts the eval split's labels; `result()` holds `trivial_top1` (and `trivial_map`)."""

  def __init__(self, multilabel: bool):
    self.multilabel = multilabel
    self._positives = None
    self._n = 0

  def update(self, labels: np.ndarray, mask: np.ndarray) -> None:
    """One batch: labels (B, C) (one-hot or multi-hot), mask (B,) (padding is 0)."""
    keep = np.asarray(mask) > 0
    positives = (np.asarray(labels)[keep] > 0.5).sum(axis=0).astype(np.int64)
    self._positives = positives if self._positives is None else self._positives + positives
    self._n += int(keep.sum())

  def result(self) -> dict[str, float]:
    if not self._n:
      out = {'trivial_top1': float('nan')}
      return {**out, 'trivial_map': float('nan')} if self.multilabel else out
    rates = self._positives / self._n
    out = {'trivial_top1': float(rates.max())}
    if self.multilabel:
      present = rates[self._positives > 0]
      out['trivial_map'] = float(present.mean()) if present.size else float('nan')
    return out
