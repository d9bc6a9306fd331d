"""The shared optimizer against closed forms: momentum, clipping, idle policy, AdamW, NaN."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.configs import base
from polyvit_tf.configs import specs
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.train import optim


def _config(**optimizer):
  cfg = base.base_config()
  cfg.optimizer.update(optimizer)
  return cfg


def _variables():
  a = keras.Variable(np.array([1.0, -2.0], np.float32), name='a')
  b = keras.Variable(np.array([[0.5]], np.float32), name='b')
  return [a, b]


def _apply(opt, grads, lr, loss=1.0):
  strategy = tf.distribute.get_strategy()

  def fn():
    return opt.apply_gradients({i: tf.constant(g, tf.float32) for i, g in grads.items()},
                               tf.constant(lr), tf.constant(loss))
  return strategy.run(fn)


def test_sgd_momentum_closed_form_and_shared_momentum_drift():
  a, b = _variables()
  opt = optim.Optimizer(_config(grad_clip_norm=0.0), [a, b])
  g1a, g1b = np.array([0.1, 0.2]), np.array([[0.3]])
  _apply(opt, {0: g1a, 1: g1b}, 0.5)
  # m = g; w -= lr * m
  np.testing.assert_allclose(a.numpy(), [1.0 - 0.5 * 0.1, -2.0 - 0.5 * 0.2], rtol=1e-6)
  g2a = np.array([-0.4, 0.0])
  _apply(opt, {0: g2a}, 0.25)  # b is idle this step (another task's parameter)
  m_a = 0.9 * g1a + g2a
  np.testing.assert_allclose(a.numpy(), [1.0 - 0.05 - 0.25 * m_a[0], -2.1 - 0.25 * m_a[1]],
                             rtol=1e-6)
  # 'shared_momentum' (the paper): the idle b still moves with its momentum 0.9 * g1b.
  np.testing.assert_allclose(b.numpy(), 0.5 - 0.5 * 0.3 - 0.25 * 0.9 * 0.3, rtol=1e-6)
  np.testing.assert_allclose(opt.slot('momentum', b).numpy(), 0.9 * g1b, rtol=1e-6)
  assert int(opt.iterations.numpy()) == 2


def test_freeze_idle_leaves_idle_parameters_and_their_momentum_alone():
  a, b = _variables()
  opt = optim.Optimizer(_config(grad_clip_norm=0.0, idle_params='freeze_idle'), [a, b])
  _apply(opt, {0: [0.1, 0.2], 1: [[0.3]]}, 0.5)
  b_before, m_before = b.numpy().copy(), opt.slot('momentum', b).numpy().copy()
  _apply(opt, {0: [-0.4, 0.0]}, 0.25)
  np.testing.assert_array_equal(b.numpy(), b_before)
  np.testing.assert_array_equal(opt.slot('momentum', b).numpy(), m_before)


def test_global_norm_clipping():
  a, b = _variables()
  opt = optim.Optimizer(_config(grad_clip_norm=1.0), [a, b])
  norm, ok = _apply(opt, {0: [3.0, 0.0], 1: [[4.0]]}, 1.0)  # norm 5 -> scaled by 1/5
  assert float(norm) == pytest.approx(5.0) and bool(ok)
  np.testing.assert_allclose(a.numpy(), [1.0 - 0.6, -2.0], rtol=1e-6)
  np.testing.assert_allclose(b.numpy(), [[0.5 - 0.8]], rtol=1e-6)


def test_clipping_placement_per_modality_and_equal_on_one_replica():
  cfg = _config()
  opt = optim.Optimizer(cfg, _variables())
  assert tuple(cfg.optimizer.clip_per_replica_modalities) == ('video', 'audio')  # original
  assert opt.clips_per_replica(['video']) and opt.clips_per_replica(['audio'])
  assert not opt.clips_per_replica(['image'])
  assert not opt.clips_per_replica(['audio', 'image'])  # accumulated over mixed modalities
  assert not optim.Optimizer(_config(grad_clip_norm=0.0), _variables()).clips_per_replica(
      ['audio'])
  results = []
  for per_replica in (False, True):  # one replica: the same computation
    a, b = _variables()
    opt = optim.Optimizer(_config(), [a, b])
    strategy = tf.distribute.get_strategy()
    norm, _ = strategy.run(lambda: opt.apply_gradients(  # noqa: B023
        {0: tf.constant([3.0, 0.0]), 1: tf.constant([[4.0]])}, tf.constant(1.0),
        tf.constant(1.0), clip_per_replica=per_replica))  # noqa: B023
    results.append((float(norm), a.numpy(), b.numpy()))
  assert results[0][0] == results[1][0] == pytest.approx(5.0)
  np.testing.assert_array_equal(results[0][1], results[1][1])
  np.testing.assert_array_equal(results[0][2], results[1][2])


def test_non_finite_gradient_or_loss_changes_nothing():
  a, b = _variables()
  opt = optim.Optimizer(_config(), [a, b])
  _, ok = _apply(opt, {0: [np.nan, 0.0], 1: [[1.0]]}, 1.0)
  assert not bool(ok)
  _, ok = _apply(opt, {0: [1.0, 0.0]}, 1.0, loss=np.inf)
  assert not bool(ok)
  np.testing.assert_array_equal(a.numpy(), [1.0, -2.0])
  np.testing.assert_array_equal(b.numpy(), [[0.5]])
  assert not np.any(opt.slot('momentum', a).numpy()) and int(opt.iterations.numpy()) == 0


def test_adamw_closed_form():
  a, b = _variables()
  opt = optim.Optimizer(_config(name='adamw', weight_decay=0.1, grad_clip_norm=0.0), [a, b])
  g = np.array([0.1, -0.2])
  _apply(opt, {0: g}, 0.01)
  m, v = 0.1 * g, 0.001 * g ** 2
  step = (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8) + 0.1 * np.array([1.0, -2.0])
  np.testing.assert_allclose(a.numpy(), [1.0, -2.0] - 0.01 * step, rtol=1e-5)


def test_config_errors_name_the_key():
  for field, value in (('name', 'lamb'), ('idle_params', 'sometimes'), ('momentum', 1.5),
                       ('clip_per_replica_modalities', ('video', 'text'))):
    with pytest.raises(ConfigError, match=f'optimizer.{field}'):
      specs.resolve(_config(**{field: value})).optimizer
