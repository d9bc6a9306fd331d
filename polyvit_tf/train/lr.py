"""Learning rates: each task's base rate times ONE warmup + decay schedule (Sec. 4.2, App. A).

The shared schedule's warmup and total steps are the sums over the co-trained tasks (the
paper's rule: "we simply use the sum of all warmup steps"), and it is evaluated at the GLOBAL
step, whatever task that step trains. For step s (0-based) with W warmup and U total steps:

  factor(s) = s / W                                       s < W   (linear warmup)
            = end + (1 - end) * (1 + cos(pi * p)) / 2     cosine,  p = (s - W) / (U - W)
            = 1 - (1 - end) * p                           linear
            = 1                                           constant

so the step trains task j with lr_j * factor(s). For the accumulated schedule, U and W are
divided by the number of tasks (U = sum U_j / T updates) and one rate is used for every
update: `optimizer.accumulated_learning_rate`, or the smallest task rate (Appendix B).
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from polyvit_tf.configs import base
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.train import schedules as schedules_lib

DECAYS = base.LR_DECAYS


@dataclasses.dataclass(frozen=True)
class LearningRate:
  """Per-task base rates x one shared warmup/decay factor of the global step."""
  base: dict[str, float]
  warmup_steps: int
  total_steps: int
  decay: str = 'cosine'
  end_factor: float = 0.0

  def factor(self, step: int) -> float:
    if step < self.warmup_steps:
      return step / self.warmup_steps
    if self.decay == 'constant':
      return 1.0
    progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
    if self.decay == 'cosine':
      return self.end_factor + (1.0 - self.end_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - (1.0 - self.end_factor) * progress

  def __call__(self, task: str, step: int) -> float:
    """Learning rate of a step of `task` at global step `step` (`task` may be '*' for the
    accumulated schedule's single rate)."""
    return self.base[task] * self.factor(step)


def from_config(config: ml_collections.ConfigDict,
                schedule: schedules_lib.Schedule) -> LearningRate:
  """The run's learning rates; raises ConfigError naming a bad key."""
  spec = specs_lib.resolve(config)
  decay, end = spec.lr_schedule.decay, spec.lr_schedule.end_factor
  tasks = spec.task_names
  base = {t: spec.training[t].learning_rate for t in tasks}
  warmup = sum(spec.training[t].warmup_steps for t in tasks)
  if schedule.name == 'accumulated':
    warmup //= len(tasks)
    fixed = spec.optimizer.accumulated_learning_rate
    base['*'] = fixed if fixed > 0 else min(base.values())
  total = schedule.num_steps
  if warmup > total:
    raise ConfigError(f'tasks.*.warmup_steps: the summed warmup ({warmup} steps) exceeds the '
                      f'schedule length ({total} steps).')
  return LearningRate(base, warmup, total, decay, end)
