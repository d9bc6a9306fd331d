"""Whether a candidate model is blessed: every task clears its threshold, none regresses.

A task's primary metric is mAP for multi-label tasks and top-1 accuracy otherwise. The
candidate is blessed when, for every task, the metric is at least the task's threshold and,
when a previously blessed (baseline) model exists, it is not lower than the baseline's by more
than the tolerance. The first run has no baseline.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

Metrics = Mapping[str, Mapping[str, float]]  # task -> metric name -> value


@dataclasses.dataclass(frozen=True)
class Decision:
  blessed: bool
  reasons: tuple[str, ...]  # one line per task: why it passed or failed


def primary_metric(task_metrics: Mapping[str, float]) -> str:
  return 'map' if 'map' in task_metrics else 'top1'


def decide(candidate: Metrics, baseline: Metrics | None, thresholds: Mapping[str, float],
           tolerance: float) -> Decision:
  """Blessing decision for `candidate`; `thresholds` maps task -> minimum primary metric."""
  blessed = True
  reasons = []
  for task, metrics in sorted(candidate.items()):
    name = primary_metric(metrics)
    value = float(metrics[name])
    floor = float(thresholds.get(task, 0.0))
    line = f'{task}: {name}={value:.4f} (threshold {floor:.4f}'
    ok = value >= floor
    if baseline is not None and task in baseline:
      base = float(baseline[task][name])
      line += f', baseline {base:.4f}, tolerance {tolerance:.4f}'
      ok = ok and value >= base - tolerance
    line += ') ' + ('ok' if ok else 'FAILED')
    blessed = blessed and ok
    reasons.append(line)
  missing = sorted(set(thresholds) - set(candidate))
  if missing:
    blessed = False
    reasons.append(f'no metrics for tasks {missing}: FAILED')
  return Decision(blessed, tuple(reasons))
