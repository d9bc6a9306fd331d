"""TensorBoard summaries per task (<workdir>/tensorboard/<task>/) and console progress.

Per task: train/loss, train/learning_rate, train/examples_per_sec, train/grad_norm at every
log interval, and eval/<split>/{top1, top5, loss, map} after each evaluation. Only the chief
writes. The console shows one line per log interval: step, %, ETA, and per task the mean loss,
the current learning rate and examples/s since the previous line.
"""

from __future__ import annotations

import collections
import os
import time

import tensorflow as tf
from absl import logging

from polyvit_tf import workdir as workdir_lib


class Summaries:
  """Per-task TensorBoard writers (no-ops when disabled, e.g. on non-chief workers)."""

  def __init__(self, workdir: str, tasks, enabled: bool = True):
    self.enabled = enabled
    self._writers = {}
    if enabled:
      for task in tasks:
        self._writers[task] = tf.summary.create_file_writer(
            os.path.join(workdir, workdir_lib.TENSORBOARD, task))

  def scalars(self, task: str, step: int, values: dict[str, float]) -> None:
    if not self.enabled:
      return
    with self._writers[task].as_default(step=step):
      for name, value in values.items():
        if value is not None and value == value:
          tf.summary.scalar(name, float(value))

  def eval(self, step: int, split: str, results: dict[str, dict]) -> None:
    for task, m in results.items():
      self.scalars(task, step, {f'eval/{split}/{k}': v for k, v in m.items()
                                if k != 'num_examples'})

  def flush(self) -> None:
    for w in self._writers.values():
      w.flush()


class Progress:
  """Accumulates per-task training statistics between log lines."""

  def __init__(self, total_steps: int, start_step: int):
    self.total, self.start = total_steps, start_step
    self._t0 = time.monotonic()
    self._reset()

  def _reset(self):
    self.loss = collections.defaultdict(float)
    self.norm = collections.defaultdict(float)
    self.steps = collections.Counter()
    self.examples = collections.Counter()
    self.seconds = collections.defaultdict(float)
    self.lr = {}

  def record(self, task: str, loss: float, norm: float, lr: float, examples: int,
             seconds: float) -> None:
    self.loss[task] += loss
    self.norm[task] += norm
    self.steps[task] += 1
    self.examples[task] += examples
    self.seconds[task] += seconds
    self.lr[task] = lr

  def flush(self, step: int, summaries: Summaries) -> str:
    """Writes the interval's summaries, logs one line, and starts a new interval."""
    parts = []
    for task in sorted(self.steps):
      n = self.steps[task]
      rate = self.examples[task] / max(self.seconds[task], 1e-9)
      values = {'train/loss': self.loss[task] / n, 'train/grad_norm': self.norm[task] / n,
                'train/learning_rate': self.lr[task], 'train/examples_per_sec': rate}
      summaries.scalars(task, step, values)
      parts.append(f'{task}: loss {values["train/loss"]:.4f} lr {self.lr[task]:.3g} '
                   f'{rate:.1f} ex/s')
    done = step - self.start
    elapsed = time.monotonic() - self._t0
    eta = elapsed / max(done, 1) * (self.total - step)
    line = (f'step {step}/{self.total} ({100.0 * step / max(self.total, 1):.0f}%, '
            f'ETA {eta / 60:.1f} min) | ' + ' | '.join(parts))
    logging.info('%s', line)
    summaries.flush()
    self._reset()
    return line
