"""Data errors and the bad-example log.

A missing source raises `DataSourceError` (naming the task and `data.source`) when a
pipeline is built. Bad examples (undecodable or empty media, clips shorter than one
analysis window, media over a decode budget, labels outside the task's classes, the
unreadable rest of a truncated or corrupt TFRecord file, named `<file> at byte <N> (record
<i>)`) are found while the pipeline runs;
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
from typing import Sequence

from absl import logging
import tensorflow as tf

from polyvit_tf.configs.errors import ConfigError


class DataSourceError(FileNotFoundError):
  """A task's `data.source` does not exist or cannot be read; the message names both."""


# A data setting of a task is invalid: the one config error type (the name stays for imports).
DataConfigError = ConfigError


# Reason codes used inside the tf.data graph (int32) and their messages.
OK = 0
UNDECODABLE = 1
EMPTY = 2
TOO_SHORT = 3
LABEL_OUT_OF_RANGE = 4
BAD_LABEL_COUNT = 5
OVER_BUDGET = 6
CORRUPT_SHARD = 7

REASONS = {
    OK: 'ok',
    UNDECODABLE: 'undecodable or corrupt media',
    EMPTY: 'empty media',
    TOO_SHORT: 'clip shorter than one analysis window',
    LABEL_OUT_OF_RANGE: 'label outside the task\'s classes',
    BAD_LABEL_COUNT: 'no label, or several labels for a single-label task',
    OVER_BUDGET: 'media outside the decode budget (pixels, frames, duration or sample rate)',
    CORRUPT_SHARD: 'truncated or corrupt TFRecord file (unreadable from there to its end)',
}


def reason_message(code: int) -> str:
  return REASONS.get(int(code), f'unknown reason {int(code)}')


# ------------------------------------------------------------- in-graph checks of media
# A media check is an ordered list of (failed: bool tensor, reason code, message) built by
# the guards of image.py / audio.py / video.py. The tf.data pipelines turn it into a status
# (the example is skipped with that reason); the serving signatures into an assertion that
# fails the request with the message (an InvalidArgumentError) before anything is decoded.
Check = tuple  # (tf.Tensor bool, int, tf.Tensor | str)


def text(*parts) -> tf.Tensor:
  """A scalar string of `parts` (str, or int / float tensors written in decimal)."""
  out = []
  for p in parts:
    if isinstance(p, str):
      out.append(p)
    else:
      p = tf.convert_to_tensor(p)
      out.append(p if p.dtype == tf.string else tf.strings.as_string(p))
  return tf.strings.join(out)


def first_failure(checks: Sequence[Check]) -> tuple[tf.Tensor, tf.Tensor]:
  """(status int32, message string) of the first failed check; (OK, '') when none failed."""
  status, message = tf.constant(OK, tf.int32), tf.constant('')
  for failed, code, why in reversed(list(checks)):
    status = tf.where(failed, tf.constant(code, tf.int32), status)
    message = tf.where(failed, tf.convert_to_tensor(why, tf.string), message)
  return status, message


def check_status(checks: Sequence[Check]) -> tf.Tensor:
  return first_failure(checks)[0]


def assert_checks(checks: Sequence[Check]) -> tf.Operation:
  """An assertion failing (InvalidArgumentError: the first failed check's message)."""
  status, message = first_failure(checks)
  return tf.debugging.Assert(tf.equal(status, OK), [message], summarize=1)


def gated(tensor: tf.Tensor, *ops: tf.Operation) -> tf.Tensor:
  """`tensor`, usable only after `ops` ran (so a failed check stops what consumes it)."""
  with tf.control_dependencies(ops):
    return tf.identity(tensor)


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
