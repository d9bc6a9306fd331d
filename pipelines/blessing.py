"""Whether a candidate model is blessed: every task clears its bound, none regresses.

A task's primary metric is mAP for multi-label tasks and top-1 accuracy otherwise. Its bound
is the task's threshold (`pipeline.thresholds.<task>`) when one is configured (> 0); without
one (absent, or 0, the default) the blessing fails closed: the metric must be strictly above
the task's trivial baseline on the same eval examples (pipelines/trivial_baseline.py: the
majority-class rate for top-1, the class prevalence for mAP). When a model is being served
(the baseline), no task may be lower than the baseline's by more than the tolerance. Every
reason line names the bound that applied; a metric that is not a number fails.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

Metrics = Mapping[str, Mapping[str, float]]  # task -> metric name -> value

_TRIVIAL_NAMES = {'top1': 'majority-class rate', 'map': 'class prevalence'}


@dataclasses.dataclass(frozen=True)
class Decision:
  blessed: bool
  reasons: tuple[str, ...]  # one line per task: why it passed or failed


def primary_metric(task_metrics: Mapping[str, float]) -> str:
  return 'map' if 'map' in task_metrics else 'top1'


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and math.isfinite(value)


def _bound(task: str, name: str, value: float, metrics: Mapping[str, float],
           thresholds: Mapping[str, float]) -> tuple[bool, str]:
  """(ok, description) of the threshold or trivial-baseline bound of one task."""
  floor = float(thresholds.get(task, 0.0) or 0.0)
  if floor > 0:
    return value >= floor, f'configured threshold {floor:.4f}'
  trivial = metrics.get(f'trivial_{name}')
  if not _is_number(trivial):
    return False, f'no threshold and no trivial baseline ({_TRIVIAL_NAMES[name]}) measured'
  return value > trivial, (f'no threshold: must beat the trivial baseline, '
                           f'{_TRIVIAL_NAMES[name]} {trivial:.4f}')


def decide(candidate: Metrics, baseline: Metrics | None, thresholds: Mapping[str, float],
           tolerance: float) -> Decision:
  """Blessing decision for `candidate`; `thresholds` maps task -> minimum primary metric."""
  blessed = True
  reasons = []
  for task, metrics in sorted(candidate.items()):
    name = primary_metric(metrics)
    value = metrics.get(name)
    if not _is_number(value):
      blessed = False
      reasons.append(f'{task}: {name}={value} is not a number: FAILED')
      continue
    ok, bound = _bound(task, name, float(value), metrics, thresholds)
    line = f'{task}: {name}={value:.4f} ({bound}'
    if baseline is not None and task in baseline:
      base = baseline[task].get(name)
      if _is_number(base):
        line += f'; served model {base:.4f}, tolerance {tolerance:.4f}'
        ok = ok and value >= base - tolerance
      else:
        line += f'; served model {name}={base}: no regression check'
    elif baseline is not None:
      line += '; the served model has no such task: no regression check'
    line += ') ' + ('ok' if ok else 'FAILED')
    blessed = blessed and ok
    reasons.append(line)
  missing = sorted(set(thresholds) - set(candidate))
  if missing:
    blessed = False
    reasons.append(f'no metrics for tasks {missing}: FAILED')
  if not candidate:
    blessed = False
    reasons.append('no task was evaluated: FAILED')
  return Decision(blessed, tuple(reasons))
