"""Task sampling schedules of Sec. 4.2 / Fig. 2: which task every SGD step trains.

A schedule is a pure function of (config, seed): every worker computes the same one without
communicating, and a resumed run continues it from its global step. U_j is
`tasks.<j>.train_steps` (the single-task baseline's step count) and T the number of tasks.

  task_by_task  U = sum U_j; U_j1 steps of task j1, then U_j2 of j2, ... in a seeded random
                task order (or `schedule.task_order`, e.g. the paper's Appendix B order).
  alternating   U = sum U_j; one step per task in a fixed repeating order (task_order or
                config order); U/T steps per task (the first U mod T tasks get one more).
  uniform       U = sum U_j; exactly U/T steps per task (as above), randomly permuted.
  weighted      exactly U_j steps of task j, randomly permuted (U = sum U_j).
  accumulated   U = (sum U_j) / T updates (rounded down, at least 1); every update sums the
                gradients of one batch of every task.

Every step is of an explicit kind: a `TaskStep` (one batch of one task) or an
`AccumulatedStep` (one batch of every task, one update); `Schedule.step_at(s)` gives it, the
loop runs the step function of that kind, and a kind's `tasks` say which data streams it
advances (what `counts` adds up).

The original code has only `weighted`, permutes with a FIXED key (ignoring the run's seed) and
skips slot 0 while using the last slot twice (an off-by-one). Here the permutation is seeded by
`config.seed` and every slot is used exactly once, so task j gets exactly U_j steps.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import ml_collections
import numpy as np

from polyvit_tf.configs import base
from polyvit_tf.configs import specs as specs_lib

SCHEDULES = base.SCHEDULES

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclasses.dataclass(frozen=True)
class TaskStep:
  """One update from one batch of one task, at that task's learning rate."""
  task: str
  kind: ClassVar[str] = 'task'

  @property
  def tasks(self) -> tuple[str, ...]:
    return (self.task,)

  @property
  def rate_key(self) -> str:
    return self.task

  @property
  def label(self) -> str:
    return repr(self.task)


@dataclasses.dataclass(frozen=True)
class AccumulatedStep:
  """One update from the summed gradients of one batch of every task, at one rate."""
  tasks: tuple[str, ...]
  kind: ClassVar[str] = 'accumulated'
  rate_key: ClassVar[str] = '*'  # polyvit_tf.train.lr: the accumulated schedule's rate

  @property
  def label(self) -> str:
    return 'all tasks (accumulated)'


Step = TaskStep | AccumulatedStep


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The step of every global step: `kinds[kind_ids[s]]`."""
  name: str
  tasks: tuple[str, ...]
  kinds: tuple[Step, ...]
  kind_ids: np.ndarray  # (U,) int32

  @property
  def num_steps(self) -> int:
    return int(self.kind_ids.shape[0])

  def step_at(self, step: int) -> Step:
    """The kind of global step `step` (0-based)."""
    return self.kinds[int(self.kind_ids[step])]

  def membership(self) -> np.ndarray:
    """(kinds, tasks) 1 where a step of that kind takes a batch of that task."""
    return np.asarray([[t in k.tasks for t in self.tasks] for k in self.kinds], np.int64)

  def counts(self, stop: int | None = None) -> dict[str, int]:
    """Batches of each task taken by steps [0, stop)."""
    ids = self.kind_ids[:self.num_steps if stop is None else stop]
    per_kind = np.bincount(ids, minlength=len(self.kinds))
    totals = per_kind @ self.membership()
    return {t: int(n) for t, n in zip(self.tasks, totals)}


def _splitmix64(x: np.ndarray) -> np.ndarray:
  """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic): a fixed, portable hash."""
  with np.errstate(over='ignore'):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
    return x ^ (x >> np.uint64(31))


def permutation(n: int, seed: int, salt: int = 0) -> np.ndarray:
  """A seeded random permutation of range(n) that depends only on (n, seed, salt).

  Sorting by a 64-bit hash of (seed, salt, index) is defined by this code alone (not by a
  library's random stream), so every worker and every NumPy version gets the same order.
  """
  key = _splitmix64(np.array([(seed & 0xFFFFFFFF) << 32 | (salt & 0xFFFFFFFF)],
                             dtype=np.uint64))
  hashes = _splitmix64(np.arange(n, dtype=np.uint64) ^ key)
  return np.argsort(hashes, kind='stable').astype(np.int64)


def _equal_counts(total: int, num_tasks: int) -> np.ndarray:
  """U/T steps per task; the first U mod T tasks get one more so the counts sum to U."""
  counts = np.full(num_tasks, total // num_tasks, dtype=np.int64)
  counts[:total % num_tasks] += 1
  return counts


def build(config: ml_collections.ConfigDict, seed: int | None = None) -> Schedule:
  """The schedule `config.schedule.name` for the config's tasks, seeded by `seed`
  (default `config.seed`). Raises ConfigError naming the bad key."""
  spec = specs_lib.resolve(config)
  name, order = spec.schedule.name, list(spec.schedule.task_order) or None
  seed = int(config.seed if seed is None else seed)
  tasks = list(spec.task_names)
  steps = np.asarray([spec.training[t].train_steps for t in tasks], dtype=np.int64)
  num_tasks, total = len(tasks), int(steps.sum())
  index = {t: j for j, t in enumerate(tasks)}

  if name == 'task_by_task':
    ids = ([index[t] for t in order] if order
           else permutation(num_tasks, seed, salt=1).tolist())
    task_ids = np.concatenate([np.full(steps[j], j) for j in ids])
  elif name == 'alternating':
    cycle = np.asarray([index[t] for t in order] if order else range(num_tasks))
    task_ids = cycle[np.arange(total) % num_tasks]
  elif name in ('uniform', 'weighted'):
    counts = _equal_counts(total, num_tasks) if name == 'uniform' else steps
    pool = np.repeat(np.arange(num_tasks), counts)
    task_ids = pool[permutation(total, seed, salt=2)]
  else:  # accumulated
    step = AccumulatedStep(tuple(tasks))
    return Schedule(name, tuple(tasks), (step,),
                    np.zeros(max(1, total // num_tasks), dtype=np.int32))
  return Schedule(name, tuple(tasks), tuple(TaskStep(t) for t in tasks),
                  np.asarray(task_ids, dtype=np.int32))
