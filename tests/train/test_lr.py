"""Per-task learning rates x one warmup/decay schedule over summed steps (closed form)."""

from __future__ import annotations

import math

import pytest

from polyvit_tf.configs import tiny
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.train import lr as lr_lib
from polyvit_tf.train import schedules

# tiny: 4 tasks x 20 steps (U = 80), warmups 2 each (W = 8); rates audio_a 0.5,
# image_a 0.03, image_b 0.1, video_a 0.1.
U, W = 80, 8


def _rates(name='weighted', decay='cosine', end=0.0, fixed=0.0):
  cfg = tiny.get_config()
  cfg.schedule.name = name
  cfg.lr_schedule.decay = decay
  cfg.lr_schedule.end_factor = end
  cfg.optimizer.accumulated_learning_rate = fixed
  return lr_lib.from_config(cfg, schedules.build(cfg))


def test_warmup_and_total_are_sums_over_tasks():
  rates = _rates()
  assert (rates.warmup_steps, rates.total_steps) == (W, U)


@pytest.mark.parametrize('step', [0, 3, 8, 20, 44, 79])
def test_cosine_rate_at_chosen_steps(step):
  rates = _rates()
  if step < W:
    factor = step / W
  else:
    factor = 0.5 * (1 + math.cos(math.pi * (step - W) / (U - W)))
  for task, base in (('audio_a', 0.5), ('image_a', 0.03), ('video_a', 0.1)):
    assert rates(task, step) == pytest.approx(base * factor, rel=1e-12, abs=1e-15)


def test_linear_and_constant_decay():
  linear = _rates(decay='linear', end=0.1)
  assert linear('image_b', 44) == pytest.approx(0.1 * (1 - 0.9 * (44 - W) / (U - W)))
  assert linear('image_b', U) == pytest.approx(0.1 * 0.1)
  constant = _rates(decay='constant')
  assert constant('audio_a', 4) == pytest.approx(0.5 * 4 / W)
  assert constant('audio_a', 70) == 0.5


def test_accumulated_uses_one_rate_the_smallest_and_divided_steps():
  rates = _rates('accumulated')
  assert (rates.warmup_steps, rates.total_steps) == (W // 4, U // 4)
  assert rates.base['*'] == 0.03  # Appendix B: the smallest task learning rate
  assert _rates('accumulated', fixed=0.2).base['*'] == 0.2


def test_bad_values_name_the_key():
  with pytest.raises(ConfigError, match='lr_schedule.decay'):
    _rates(decay='exponential')
  cfg = tiny.get_config()
  cfg.tasks.video_a.learning_rate = 0.0
  with pytest.raises(ConfigError, match='tasks.video_a.learning_rate'):
    lr_lib.from_config(cfg, schedules.build(cfg))
  cfg = tiny.get_config()
  cfg.tasks.video_a.warmup_steps = 100
  with pytest.raises(ConfigError, match='warmup'):
    lr_lib.from_config(cfg, schedules.build(cfg))
