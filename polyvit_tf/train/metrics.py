"""Evaluation metrics per task: top-1, top-5, loss and mAP, with padding masked out.

The evaluator gathers every replica's (and every worker's) predictions (the views'
combined logits and probabilities, polyvit_tf/model/prediction.py), labels and padding masks
to the host, so the metrics are computed once over ALL examples of the eval set; the scores
ranked are the probabilities, the ones the exported signatures serve. (The original computes
mAP per host and counts padded examples; we do neither.)

top-k: an example is a hit when one of its k highest-scoring classes is a positive label
(single-label: the true class is among the top k; multi-label: "precision@k > 0", the
convention for AudioSet-style top-1). mAP: the macro average, over classes with at least one
positive example, of the average precision sum_n (R_n - R_{n-1}) P_n at every distinct score
threshold (the definition scikit-learn's average_precision_score uses).
"""

from __future__ import annotations

import numpy as np

from polyvit_tf.train import losses


def example_losses(loss: str, labels: np.ndarray, logits: np.ndarray,
                   probabilities: np.ndarray, view_averaging: str) -> np.ndarray:
  """(N,) losses of combined predictions (polyvit_tf.model.prediction): of the views' mean
  logits when they are averaged ('logits'), else of the averaged probabilities ('probs')."""
  labels = np.asarray(labels, np.float64)
  if view_averaging == 'logits':
    mean = np.asarray(logits, np.float64)
    if loss == 'softmax_xent':
      shifted = mean - mean.max(-1, keepdims=True)
      log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
      return -np.sum(labels * log_p, axis=-1)
    return np.sum(np.maximum(mean, 0) - mean * labels + np.log1p(np.exp(-np.abs(mean))),
                  axis=-1)
  return losses.loss_of_scores(loss, labels, np.asarray(probabilities, np.float64))


def top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
  """(N,) 1.0 where one of the k highest-scoring classes is a positive label."""
  k = min(k, scores.shape[-1])
  top = np.argsort(-scores, axis=-1, kind='stable')[:, :k]
  return (np.take_along_axis(labels, top, axis=-1) > 0).any(axis=-1).astype(np.float64)


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
  """Average precision of one class: sum over distinct thresholds of (R_n - R_{n-1}) P_n."""
  order = np.argsort(-scores, kind='mergesort')
  s, y = scores[order], positives[order].astype(np.float64)
  last_of_threshold = np.r_[np.nonzero(np.diff(s))[0], y.size - 1]
  tps = np.cumsum(y)[last_of_threshold]
  precision = tps / (last_of_threshold + 1)
  recall = tps / tps[-1]
  return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
  """Macro mAP over classes with at least one positive example (NaN if none has one)."""
  positives = labels > 0.5
  classes = np.nonzero(positives.any(axis=0))[0]
  if classes.size == 0:
    return float('nan')
  return float(np.mean([average_precision(scores[:, c], positives[:, c]) for c in classes]))


class TaskMetrics:
  """Accumulates a task's gathered eval batches and computes its metrics."""

  def __init__(self, loss: str, multilabel: bool, view_averaging: str):
    self.loss, self.multilabel, self.view_averaging = loss, multilabel, view_averaging
    self._scores, self._labels, self._losses = [], [], []

  def update(self, logits: np.ndarray, probabilities: np.ndarray, labels: np.ndarray,
             mask: np.ndarray) -> None:
    """One gathered batch of predictions (polyvit_tf.model.prediction: logits and
    probabilities (B, C), views combined), labels (B, C) and padding mask (B,)."""
    keep = np.asarray(mask) > 0
    if not keep.any():
      return
    labels = np.asarray(labels, np.float64)[keep]
    scores = np.asarray(probabilities, np.float64)[keep]
    self._scores.append(scores)
    self._labels.append(labels)
    self._losses.append(example_losses(self.loss, labels, np.asarray(logits)[keep], scores,
                                       self.view_averaging))

  @property
  def num_examples(self) -> int:
    return int(sum(len(x) for x in self._losses))

  def result(self) -> dict[str, float | int]:
    n = self.num_examples
    if n == 0:
      out = {'top1': float('nan'), 'top5': float('nan'), 'loss': float('nan')}
      if self.multilabel:
        out['map'] = float('nan')
      return {**out, 'num_examples': 0}
    scores, labels = np.concatenate(self._scores), np.concatenate(self._labels)
    out = {'top1': float(top_k_hits(scores, labels, 1).mean()),
           'top5': float(top_k_hits(scores, labels, 5).mean()),
           'loss': float(np.concatenate(self._losses).mean())}
    if self.multilabel:
      out['map'] = mean_average_precision(scores, labels)
    out['num_examples'] = n
    return out
