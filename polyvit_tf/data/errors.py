"""Data errors and the bad-example log.

A missing source raises `DataSourceError` (naming the task and `data.source`) when a
pipeline is built. Bad examples (undecodable or empty media, clips shorter than one
analysis window, labels outside the task's classes, the unreadable rest of a truncated or
corrupt TFRecord file, named `<file> at byte <N> (record <i>)`) are found while the pipeline runs;
each one is logged with its id and counted per task in `BAD_EXAMPLES`, then skipped, or,
with `data.skip_bad_examples=False`, the iterator fails with an InvalidArgumentError whose
message names the task, the example id and the reason.

    from polyvit_tf.data import errors
    errors.BAD_EXAMPLES.summary()   # {task: {reason: count}} of distinct bad examples
    print(errors.BAD_EXAMPLES.report())
"""

from __future__ import annotations

import collections
import threading

from absl import logging


class DataSourceError(FileNotFoundError):
  """A task's `data.source` does not exist or cannot be read; the message names both."""


class DataConfigError(ValueError):
  """A data setting of a task is invalid; the message names the task and the field."""


# Reason codes used inside the tf.data graph (int32) and their messages.
OK = 0
UNDECODABLE = 1
EMPTY = 2
TOO_SHORT = 3
LABEL_OUT_OF_RANGE = 4
BAD_LABEL_COUNT = 5
CORRUPT_SHARD = 7

REASONS = {
    OK: 'ok',
    UNDECODABLE: 'undecodable or corrupt media',
    EMPTY: 'empty media',
    TOO_SHORT: 'clip shorter than one analysis window',
    LABEL_OUT_OF_RANGE: 'label outside the task\'s classes',
    BAD_LABEL_COUNT: 'no label, or several labels for a single-label task',
    CORRUPT_SHARD: 'truncated or corrupt TFRecord file (unreadable from there to its end)',
}


def reason_message(code: int) -> str:
  return REASONS.get(int(code), f'unknown reason {int(code)}')


class BadExampleLog:
  """Thread-safe record of bad examples, per task: distinct ids per reason, and events.

  An example that is bad is met again every epoch; `summary()` counts it once,
  `events()` counts every time it was met.
  """

  def __init__(self, max_ids_per_reason: int = 100_000):
    self._lock = threading.Lock()
    self._max_ids = max_ids_per_reason
    self.reset()

  def reset(self) -> None:
    with self._lock:
      self._ids: dict[str, dict[str, set[str]]] = collections.defaultdict(
          lambda: collections.defaultdict(set))
      self._events: dict[str, collections.Counter] = collections.defaultdict(
          collections.Counter)

  def record(self, task: str, split: str, example_id: str, reason: int) -> None:
    message = reason_message(reason)
    with self._lock:
      ids = self._ids[task][message]
      first = example_id not in ids
      if len(ids) < self._max_ids:
        ids.add(example_id)
      self._events[task][message] += 1
    if first:
      logging.warning('task %s (%s split): skipping bad example %s: %s', task, split,
                      example_id, message)

  def summary(self) -> dict[str, dict[str, int]]:
    """{task: {reason: number of distinct bad examples}}."""
    with self._lock:
      return {t: {r: len(ids) for r, ids in reasons.items()}
              for t, reasons in sorted(self._ids.items())}

  def events(self) -> dict[str, dict[str, int]]:
    """{task: {reason: number of times a bad example was met}} (every epoch counts)."""
    with self._lock:
      return {t: dict(c) for t, c in sorted(self._events.items())}

  def ids(self, task: str) -> dict[str, list[str]]:
    """{reason: sorted ids} of the bad examples of `task`."""
    with self._lock:
      return {r: sorted(ids) for r, ids in self._ids.get(task, {}).items()}

  def total(self) -> int:
    return sum(sum(r.values()) for r in self.summary().values())

  def report(self) -> str:
    """Human-readable summary, one line per task and reason, with a few ids."""
    lines = []
    with self._lock:
      for task in sorted(self._ids):
        for reason, ids in sorted(self._ids[task].items()):
          shown = ', '.join(sorted(ids)[:5]) + (', ...' if len(ids) > 5 else '')
          lines.append(f'{task}: {len(ids)} skipped ({reason}): {shown}')
    return '\n'.join(lines) if lines else 'no bad examples'


# The process-wide log the pipelines write to.
BAD_EXAMPLES = BadExampleLog()


def bad_example_summary() -> dict[str, dict[str, int]]:
  """{task: {reason: distinct bad examples}} seen by the pipelines of this process."""
  return BAD_EXAMPLES.summary()
