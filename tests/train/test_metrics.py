"""Evaluation metrics: mAP against scikit-learn with padding present, top-k, view averaging."""

from __future__ import annotations

import ml_collections
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from polyvit_tf.configs import base
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
  acc = metrics.TaskMetrics('sigmoid_xent', multilabel=True)
  # Three "gathered" batches of 24 rows; the last has 12 padding rows carrying garbage that
  # would change the result if it were counted.
  rng = np.random.default_rng(1)
  padded_logits = np.concatenate([logits, rng.normal(size=(12, 7)).astype(np.float32) * 10])
  padded_labels = np.concatenate([labels, np.ones((12, 7), np.float32)])
  mask = np.r_[np.ones(60), np.zeros(12)]
  for i in range(0, 72, 24):
    acc.update(padded_logits[i:i + 24, None], padded_labels[i:i + 24], mask[i:i + 24])
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


def test_view_averaging_default_is_logits_as_vivit():
  assert base.base_config().eval.view_averaging == 'logits' == metrics.DEFAULT_VIEW_AVERAGING
  assert metrics.view_averaging(ml_collections.ConfigDict({'eval': {}})) == 'logits'
  # Views that disagree: averaging logits and averaging probabilities pick different classes.
  logits = np.array([[[4.0, 0.0, 0.0], [-4.0, 1.0, 0.0]]])
  labels = np.array([[0.0, 1.0, 0.0]])
  by = {}
  for how in ('logits', 'probs'):
    acc = metrics.TaskMetrics('softmax_xent', False, how)
    acc.update(logits, labels, np.ones(1))
    by[how] = acc.result()['top1']
  default = metrics.TaskMetrics('softmax_xent', False)
  default.update(logits, labels, np.ones(1))
  assert by == {'logits': 1.0, 'probs': 0.0} and default.result()['top1'] == 1.0


def test_views_are_averaged_per_example():
  # One example, two views that disagree; the averaged probabilities decide.
  logits = np.log(np.array([[[0.6, 0.3, 0.1], [0.1, 0.5, 0.4]]]))
  labels = np.array([[0.0, 1.0, 0.0]])
  scores, loss = metrics.average_views('softmax_xent', logits, labels, 'probs')
  np.testing.assert_allclose(scores, [[0.35, 0.4, 0.25]], atol=1e-12)
  np.testing.assert_allclose(loss, [-np.log(0.4)], atol=1e-9)
  acc = metrics.TaskMetrics('softmax_xent', multilabel=False, view_averaging='probs')
  acc.update(logits, labels, np.ones(1))
  assert acc.result()['top1'] == 1.0  # view 0 alone would be wrong
  scores, loss = metrics.average_views('softmax_xent', logits, labels, 'logits')
  mean = logits.mean(1)
  expected = np.exp(mean) / np.exp(mean).sum(-1, keepdims=True)
  np.testing.assert_allclose(scores, expected, atol=1e-12)
  np.testing.assert_allclose(loss, -np.log(expected[:, 1]), atol=1e-9)
