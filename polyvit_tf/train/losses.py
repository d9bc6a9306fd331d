"""Per-task losses on (possibly soft) label vectors, per example.

softmax_xent: -sum_c y_c log softmax(z)_c (single-label video/audio tasks).
sigmoid_xent: sum_c BCE(y_c, sigmoid(z_c)) (multi-label tasks, and all image tasks as the
original code trains them, BiT style).
Labels arrive one-/multi-hot with the task's label smoothing and mixup already applied by
the data pipeline (polyvit_tf.data.pipeline), so the loss takes them as they are.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def per_example_loss(loss: str, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
  """(B,) losses of `logits` (B, C) against `labels` (B, C), computed in float32."""
  logits = tf.cast(logits, tf.float32)
  labels = tf.cast(labels, tf.float32)
  if loss == 'softmax_xent':
    return -tf.reduce_sum(labels * tf.nn.log_softmax(logits, axis=-1), axis=-1)
  if loss == 'sigmoid_xent':
    return tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)
  raise ValueError(f'unknown loss {loss!r}')


def loss_of_scores(loss: str, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
  """(B,) losses given averaged class probabilities (multi-crop evaluation), in numpy."""
  eps = 1e-7
  p = np.clip(probs.astype(np.float64), eps, 1.0 - eps)
  if loss == 'softmax_xent':
    return -np.sum(labels * np.log(p), axis=-1)
  return -np.sum(labels * np.log(p) + (1.0 - labels) * np.log(1.0 - p), axis=-1)
