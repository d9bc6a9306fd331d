"""Task schedules (Sec. 4.2): exact per-task step counts, order properties, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from polyvit_tf.configs import paper
from polyvit_tf.configs import tiny
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.train import schedules


def _config(name, steps=(7, 3, 12, 5), seed=0, order=()):
  cfg = tiny.get_config()
  for task, u in zip(sorted(cfg.tasks), steps):
    cfg.tasks[task].train_steps = u
  cfg.schedule.name = name
  cfg.schedule.task_order = tuple(order)
  cfg.seed = seed
  return cfg


STEPS = dict(zip(sorted(tiny.get_config().tasks), (7, 3, 12, 5)))  # U = 27, T = 4


def test_weighted_has_exactly_u_j_steps_per_task_and_uses_every_slot():
  sched = schedules.build(_config('weighted'))
  assert sched.num_steps == 27
  assert sched.counts() == STEPS
  # Seeded permutation: not the sorted pool, and not the same for another seed.
  assert not np.array_equal(sched.kind_ids, np.sort(sched.kind_ids))
  other = schedules.build(_config('weighted', seed=1))
  assert other.counts() == STEPS and not np.array_equal(other.kind_ids, sched.kind_ids)


def test_uniform_has_u_over_t_steps_per_task():
  sched = schedules.build(_config('uniform'))
  counts = sched.counts()
  assert sched.num_steps == 27 and sum(counts.values()) == 27
  assert sorted(counts.values()) == [6, 7, 7, 7]  # 27 / 4: the first 27 mod 4 tasks get 7
  assert not np.array_equal(sched.kind_ids, np.sort(sched.kind_ids))


def test_alternating_cycles_in_a_fixed_order():
  order = ('video_a', 'audio_a', 'image_b', 'image_a')
  sched = schedules.build(_config('alternating', order=order))
  assert [sched.step_at(s).task for s in range(8)] == list(order) * 2
  assert sched.num_steps == 27
  assert sorted(sched.counts().values()) == [6, 7, 7, 7]
  default = schedules.build(_config('alternating'))
  assert [default.step_at(s).task for s in range(4)] == sorted(STEPS)


def test_task_by_task_runs_contiguous_blocks_of_u_j_steps():
  order = ('image_b', 'video_a', 'audio_a', 'image_a')
  sched = schedules.build(_config('task_by_task', order=order))
  expected = [t for t in order for _ in range(STEPS[t])]
  assert [sched.step_at(s).task for s in range(sched.num_steps)] == expected
  # Without task_order the block order is a seeded random permutation.
  orders = set()
  for seed in range(8):
    ids = schedules.build(_config('task_by_task', seed=seed)).kind_ids
    blocks = tuple(int(ids[i]) for i in range(len(ids)) if i == 0 or ids[i] != ids[i - 1])
    assert len(blocks) == 4 and sorted(blocks) == [0, 1, 2, 3]
    orders.add(blocks)
  assert len(orders) > 1


def test_paper_appendix_b_order_is_accepted():
  cfg = paper.get_config('table2_b_adapt0')
  cfg.schedule.name = 'task_by_task'
  cfg.schedule.task_order = ('cifar100', 'moments_in_time', 'kinetics400', 'mini_audioset',
                             'vggsound', 'pets', 'cifar10', 'imagenet', 'resisc45')
  sched = schedules.build(cfg)
  assert sched.step_at(0).task == 'cifar100'
  assert sched.step_at(sched.num_steps - 1).task == 'resisc45'
  assert sched.counts()['pets'] == 500


def test_accumulated_has_sum_over_t_updates_of_every_task():
  sched = schedules.build(_config('accumulated'))
  assert sched.num_steps == 27 // 4
  assert sched.kinds == (schedules.AccumulatedStep(tuple(sorted(STEPS))),)
  assert all(sched.step_at(s).tasks == tuple(sorted(STEPS)) for s in range(sched.num_steps))
  assert sched.step_at(0).rate_key == '*'
  assert sched.counts() == {t: 6 for t in STEPS}


@pytest.mark.parametrize('name', schedules.SCHEDULES)
def test_every_step_has_an_explicit_kind_and_counts_add_up_its_tasks(name):
  sched = schedules.build(_config(name))
  kinds = [sched.step_at(s) for s in range(sched.num_steps)]
  expected = (schedules.AccumulatedStep if name == 'accumulated' else schedules.TaskStep)
  assert all(isinstance(k, expected) for k in kinds)
  for stop in (0, 5, sched.num_steps):
    counts = {t: sum(t in k.tasks for k in kinds[:stop]) for t in sched.tasks}
    assert sched.counts(stop) == counts


def test_paper_weighted_schedule_counts():
  cfg = paper.get_config('table2_b_adapt0')
  sched = schedules.build(cfg)
  assert sched.counts() == {t: cfg.tasks[t].train_steps for t in cfg.tasks}
  assert sched.num_steps == sum(cfg.tasks[t].train_steps for t in cfg.tasks)


@pytest.mark.parametrize('name', schedules.SCHEDULES)
def test_identical_on_every_worker_and_after_resume(name):
  # Each "worker" (or a resumed run) builds the schedule from the config alone.
  a, b = schedules.build(_config(name, seed=5)), schedules.build(_config(name, seed=5))
  assert np.array_equal(a.kind_ids, b.kind_ids)
  # A resumed run at step s continues with exactly the remaining tasks.
  s = a.num_steps // 2
  assert [a.step_at(i) for i in range(s, a.num_steps)] == [b.step_at(i)
                                                          for i in range(s, b.num_steps)]
  assert sum(a.counts(s).values()) == (s * 4 if name == 'accumulated' else s)


def test_permutation_is_portable():
  # The permutation is defined by this code alone (a 64-bit hash), not a library's random
  # stream: these values must never change, or resumed runs would change their schedule.
  assert schedules.permutation(10, seed=0).tolist() == [1, 4, 5, 7, 6, 9, 0, 3, 2, 8]
  p = schedules.permutation(1000, seed=3, salt=2)
  assert sorted(p.tolist()) == list(range(1000))


def test_config_errors_name_the_key():
  with pytest.raises(ConfigError, match='schedule.name'):
    schedules.build(_config('round_robin'))
  with pytest.raises(ConfigError, match='schedule.task_order.*nope'):
    schedules.build(_config('task_by_task', order=('nope', 'image_a', 'image_b', 'video_a')))
  with pytest.raises(ConfigError, match='schedule.task_order'):
    schedules.build(_config('alternating', order=('image_a',)))
  with pytest.raises(ConfigError, match='tasks.audio_a.train_steps'):
    schedules.build(_config('weighted', steps=(0, 1, 1, 1)))
