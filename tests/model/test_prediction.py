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


@pytest.mark.parametrize('chunk, passes', [(1, [1] * 15), (4, [4] * 4), (7, [5] * 3),
                                           (15, [15]), (100, [15])])
def test_chunked_passes_equal_one_pass(chunk, passes):
  """ceil(15 / chunk) passes of equal size, at most `chunk` views (never more than the 15
  there are) and fewer padded views than passes: the same numbers as one pass, eagerly and
  traced, with a batch size unknown when traced."""
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
  assert calls == passes
  traced = tf.function(lambda v: prediction.predict(model, v, chunked),
                       input_signature=[tf.TensorSpec((None, 3, 6, 2), tf.float32)])(views)
  for p in (eager, traced):
    np.testing.assert_allclose(p.logits, reference.logits, atol=1e-6, rtol=0)
    np.testing.assert_allclose(p.probabilities, reference.probabilities, atol=1e-6, rtol=0)


def test_single_view_examples_run_in_one_pass():
  """One view per example (images): the batch is one pass whatever the chunk size."""
  views = np.random.default_rng(2).normal(size=(5, 1, 4)).astype(np.float32)
  calls = []

  def logits_fn(x):
    calls.append(x.shape[0])
    return x[:, :3] * 2.0

  spec = prediction.PredictionSpec(3, 'softmax', 'logits', max_clips_per_pass=2)
  p = prediction.predict(logits_fn, views, spec)
  assert calls == [5]
  np.testing.assert_allclose(p.logits, views[:, 0, :3] * 2.0, atol=1e-6, rtol=0)


def test_max_clips_per_pass_is_validated():
  """Default 2 (the original's clips per device at a time); 0 or None: one pass; a negative,
  non-integer or over-the-limit value is a ConfigError naming the field and the limit."""
  config = tiny.get_config()
  assert base.MAX_CLIPS_PER_PASS_DEFAULT == 2
  assert specs.resolve(config).eval.max_clips_per_pass == 2
  assert prediction.PredictionSpec.of(specs.resolve(config), 'video_a').max_clips_per_pass == 2
  for value, expected in ((None, 0), (0, 0), (1, 1), (base.MAX_CLIPS_PER_PASS_LIMIT,
                                                      base.MAX_CLIPS_PER_PASS_LIMIT)):
    config.eval.max_clips_per_pass = value
    assert specs.resolve(config).eval.max_clips_per_pass == expected
  for bad in (-1, base.MAX_CLIPS_PER_PASS_LIMIT + 1, 2.5, True, '4'):
    config = tiny.get_config()
    del config.eval['max_clips_per_pass']  # ConfigDict keeps a field's type: a new field
    config.eval.max_clips_per_pass = bad
    with pytest.raises(specs.ConfigError, match=r'eval\.max_clips_per_pass must be an integer '
                       rf'in \[0, {base.MAX_CLIPS_PER_PASS_LIMIT}\], got'):
      specs.resolve(config).eval
