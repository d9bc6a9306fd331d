"""Evaluation metrics: mAP against scikit-learn with padding present, top-k, losses of
combined views."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from polyvit_tf.train import metrics


def _multilabel(n=60, c=7, seed=0):
  rng = np.random.default_rng(seed)
  labels = (rng.random((n, c)) < 0.3).astype(np.float32)
  labels[:, 5] = 0.0  # a class without positives: excluded from the mean
  logits = rng.normal(size=(n, c)) + 1.5 * labels
  logits[:, 2] = np.round(logits[:, 2])  # ties in the scores
  return logits.astype(np.float32), labels


def test_average_precision_matches_sklearn_per_class():
  logits, labels = _multilabel()
  for c in (0, 1, 2, 3):
    ours = metrics.average_precision(logits[:, c], labels[:, c] > 0)
    assert ours == pytest.approx(average_precision_score(labels[:, c], logits[:, c]), abs=1e-12)


def test_map_over_all_batches_with_padding_masked_matches_sklearn():
  logits, labels = _multilabel()
  acc = metrics.TaskMetrics('sigmoid_xent', multilabel=True, view_averaging='probs')
  # Three "gathered" batches of 24 rows; the last has 12 padding rows carrying garbage that
  # would change the result if it were counted.
  rng = np.random.default_rng(1)
  padded_logits = np.concatenate([logits, rng.normal(size=(12, 7)).astype(np.float32) * 10])
  padded_labels = np.concatenate([labels, np.ones((12, 7), np.float32)])
  mask = np.r_[np.ones(60), np.zeros(12)]
  padded_scores = 1 / (1 + np.exp(-padded_logits.astype(np.float64)))
  for i in range(0, 72, 24):
    acc.update(padded_logits[i:i + 24], padded_scores[i:i + 24], padded_labels[i:i + 24],
               mask[i:i + 24])
  result = acc.result()
  scores = 1 / (1 + np.exp(-logits.astype(np.float64)))
  keep = labels.sum(0) > 0
  expected = average_precision_score(labels[:, keep], scores[:, keep], average='macro')
  assert result['map'] == pytest.approx(expected, abs=1e-12)
  assert result['num_examples'] == 60
  wrong = average_precision_score(padded_labels[:, keep], padded_logits[:, keep])
  assert abs(wrong - expected) > 1e-3  # the padding really would have mattered


def test_top_k_single_and_multi_label():
  scores = np.array([[0.1, 0.7, 0.2, 0.0, 0.0, 0.0],
                     [0.5, 0.1, 0.2, 0.1, 0.05, 0.05],
                     [0.0, 0.1, 0.2, 0.3, 0.35, 0.05]])
  labels = np.eye(6)[[1, 2, 0]]
  assert metrics.top_k_hits(scores, labels, 1).tolist() == [1, 0, 0]
  assert metrics.top_k_hits(scores, labels, 5).tolist() == [1, 1, 0]
  multi = np.array([[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]], float)
  assert metrics.top_k_hits(scores, multi, 1).tolist() == [0, 1, 0]


def test_losses_of_combined_views():
  # One example, two views that disagree (polyvit_tf.model.prediction combines them).
  view_logits = np.log(np.array([[[0.6, 0.3, 0.1], [0.1, 0.5, 0.4]]]))
  labels = np.array([[0.0, 1.0, 0.0]])
  probs = np.array([[0.35, 0.4, 0.25]])  # 'probs': the views' probabilities averaged
  loss = metrics.example_losses('softmax_xent', labels, view_logits.mean(1), probs, 'probs')
  np.testing.assert_allclose(loss, [-np.log(0.4)], atol=1e-9)
  acc = metrics.TaskMetrics('softmax_xent', multilabel=False, view_averaging='probs')
  acc.update(view_logits.mean(1), probs, labels, np.ones(1))
  assert acc.result()['top1'] == 1.0  # view 0 alone would be wrong
  mean = view_logits.mean(1)  # 'logits': the loss of the views' mean logits
  expected = np.exp(mean) / np.exp(mean).sum(-1, keepdims=True)
  loss = metrics.example_losses('softmax_xent', labels, mean, expected, 'logits')
  np.testing.assert_allclose(loss, -np.log(expected[:, 1]), atol=1e-9)
  sigmoid_loss = metrics.example_losses('sigmoid_xent', labels, mean, None, 'logits')
  p = 1 / (1 + np.exp(-mean))
  np.testing.assert_allclose(sigmoid_loss, -np.sum(labels * np.log(p) + (1 - labels) *
                                                   np.log(1 - p), -1), atol=1e-9)
