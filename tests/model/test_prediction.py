"""The one prediction path: activation rule, view combination, chunked passes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.configs import base
from polyvit_tf.configs import specs
from polyvit_tf.configs import tiny
from polyvit_tf.model import prediction


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_the_activation_is_the_one_the_loss_trains():
  spec = specs.resolve(tiny.get_config())
  rules = {t: prediction.PredictionSpec.of(spec, t).activation for t in spec.task_names}
  # Image tasks train with sigmoid_xent (single-label or not), multi-label audio too.
  assert rules == {'audio_a': 'sigmoid', 'image_a': 'sigmoid', 'image_b': 'sigmoid',
                   'video_a': 'softmax'}
  assert not spec.task('image_a').multilabel


def test_view_averaging_default_is_logits_as_vivit():
  assert base.base_config().eval.view_averaging == 'logits'
  assert specs.resolve(tiny.get_config()).eval.view_averaging == 'logits'
  # Views that disagree: averaging logits and averaging probabilities pick different classes.
  views = np.array([[[4.0, 0.0, 0.0], [-4.0, 1.0, 0.0]]], np.float32)
  best = {how: int(np.argmax(prediction.combine_views(
      views, prediction.PredictionSpec(3, 'softmax', how)).probabilities[0]))
          for how in ('logits', 'probs')}
  assert best == {'logits': 1, 'probs': 0}


@pytest.mark.parametrize('activation', ['sigmoid', 'softmax'])
def test_views_are_combined_as_configured(activation):
  views = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
  act = _sigmoid if activation == 'sigmoid' else _softmax
  v64 = views.astype(np.float64)
  for averaging, expected in (('probs', act(v64).mean(1)), ('logits', act(v64.mean(1)))):
    p = prediction.combine_views(views, prediction.PredictionSpec(5, activation, averaging))
    np.testing.assert_allclose(p.probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(p.logits, v64.mean(1), atol=1e-6)


@pytest.mark.parametrize('chunk', [1, 4, 7, 100])
def test_chunked_passes_equal_one_pass(chunk):
  """At most `chunk` views through the model at a time, padded last chunk included: the
  same numbers as one pass, eagerly and traced, with a batch size unknown when traced."""
  keras.utils.set_random_seed(0)
  model = keras.Sequential([keras.Input((6, 2)), keras.layers.Flatten(),
                            keras.layers.Dense(8, activation='gelu'), keras.layers.Dense(3)])
  views = np.random.default_rng(1).normal(size=(5, 3, 6, 2)).astype(np.float32)
  calls = []

  def logits_fn(x):
    calls.append(x.shape[0])
    return model(x)

  one = prediction.PredictionSpec(3, 'softmax', 'probs')
  chunked = prediction.PredictionSpec(3, 'softmax', 'probs', max_clips_per_pass=chunk)
  reference = prediction.predict(logits_fn, views, one)
  assert calls == [15]
  calls.clear()
  eager = prediction.predict(logits_fn, views, chunked)
  assert calls == [chunk] * -(-15 // chunk)  # ceil(15 / chunk) passes of `chunk` views
  traced = tf.function(lambda v: prediction.predict(model, v, chunked),
                       input_signature=[tf.TensorSpec((None, 3, 6, 2), tf.float32)])(views)
  for p in (eager, traced):
    np.testing.assert_allclose(p.logits, reference.logits, atol=1e-6, rtol=0)
    np.testing.assert_allclose(p.probabilities, reference.probabilities, atol=1e-6, rtol=0)
