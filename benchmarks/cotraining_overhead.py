r"""Co-training overhead: a weighted schedule over three modalities through the real trainer
vs the same steps as separate single-task loops.

    python -m benchmarks.cotraining_overhead [--quick] [--config=polyvit_tf/configs/demo.py] \
        [--steps=120] [--rounds=3] [--idle_params=shared_momentum,freeze_idle] [--out=...]

Co-training: `polyvit_tf.train.Trainer` on the config (its tasks span image, audio and video;
schedule `weighted`), run for `--steps` steps per round. Separate: one Trainer per task on a
one-task copy of the config (same encoder, optimizer and batch size; only that task's
tokenizer and head exist), each run for exactly the steps that task got in the co-training
round. Both sides read constant in-memory batches (the input pipeline has its own
benchmark), both are warmed up first (every step function traced), and checkpoint writes
are excluded (`checkpoint_every_steps=0`, the end-of-run save replaced by a no-op while
timing), and one whole round runs untimed first. Rounds alternate co-training and separate
runs, so a neighbour's load hits both.
Time counted: the time inside the trainer's step functions (call until the loss is on the
host), summed per round; it excludes the fixed cost of each `Trainer.train` call
(iterators, preemption watcher, final summary), which the separate side would otherwise pay
four times per round and a real run pays once. The figure is the median over rounds of
(co-training examples/s) / (separate examples/s), and the overhead is 1 - that ratio; the
wall-clock ratio (fixed costs included) is reported beside it.

`optimizer.idle_params`: with `shared_momentum` (the paper) every step also updates the
idle parameters (other tasks' heads, other modalities' tokenizers) with their momentum, a
cost single-task runs do not have; `freeze_idle` skips them. Both are measured.
"""

from __future__ import annotations

import copy
import gc
import os
import tempfile
import time
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf
from ml_collections import config_flags

from benchmarks import common
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.train import loop

_CONFIG = config_flags.DEFINE_config_file('config', 'polyvit_tf/configs/demo.py',
                                          'PolyViT config (tasks over several modalities).')
_QUICK = flags.DEFINE_bool('quick', False, 'Fewer steps and rounds.')
_STEPS = flags.DEFINE_integer('steps', 0, 'Co-training steps per round (0: auto).')
_ROUNDS = flags.DEFINE_integer('rounds', 0, 'Alternating rounds (0: auto).')
_IDLE = flags.DEFINE_list('idle_params', ['shared_momentum', 'freeze_idle'],
                          'optimizer.idle_params settings to measure.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Directory of the JSON results.')


class ConstantProvider:
  """A data provider (the trainer's interface) repeating one seeded batch per task."""

  def _batch(self, config, task: str, batch_size: int) -> dict:
    spec = specs_lib.resolve(config).task(task)
    shape = specs_lib.resolve(config).input_shape(task)
    rng = np.random.default_rng(len(task))
    labels = np.zeros((batch_size, spec.num_classes), np.float32)
    labels[np.arange(batch_size), rng.integers(0, spec.num_classes, batch_size)] = 1.0
    return {'inputs': rng.uniform(-1, 1, (batch_size,) + shape).astype(np.float32),
            'labels': labels}

  def train_dataset(self, config, task, *, seed, batch_size=None, input_context=None,
                    skip_batches=0):
    del seed, skip_batches
    size = batch_size or int(config.tasks[task].batch_size)
    if input_context is not None:
      size = input_context.get_per_replica_batch_size(int(config.tasks[task].batch_size))
    return tf.data.Dataset.from_tensors(self._batch(config, task, size)).repeat()

  def eval_dataset(self, config, task, *, split='eval', batch_size=None, input_context=None):
    raise NotImplementedError('the overhead benchmark does not evaluate')


def bench_config(config: ml_collections.ConfigDict, idle: str, total_steps: int
                 ) -> ml_collections.ConfigDict:
  config = copy.deepcopy(config)
  config.schedule.name = 'weighted'
  config.optimizer.idle_params = idle
  config.train.checkpoint_every_steps = 0
  config.train.log_every_steps = 10 ** 6
  config.train.eval_every_steps = 0
  # Enough schedule for every round (the learning rates do not change the step's cost).
  for task in config.tasks:
    config.tasks[task].train_steps = max(int(config.tasks[task].train_steps), total_steps)
  return config


def single_task_config(config: ml_collections.ConfigDict, task: str
                       ) -> ml_collections.ConfigDict:
  single = copy.deepcopy(config)
  with single.unlocked():
    for other in list(single.tasks.keys()):
      if other != task:
        del single.tasks[other]
    used = specs_lib.resolve(single).used_modalities
    for mod in list(single.modalities.keys()):
      if mod not in used:
        del single.modalities[mod]
  return single


class Run:
  """A Trainer that can be advanced by a number of steps at a time (checkpoints off).

  Besides the wall time of each `advance`, it sums the time inside the trainer's step
  functions (the step call until its loss is on the host): the steady-state cost a long run
  pays per step, without the fixed cost of each `Trainer.train` call (iterators, watcher,
  final summary), which the separate side pays once per task per round and a real run once.
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, data):
    self.trainer = loop.Trainer(config, workdir, data=data)
    self.trainer.save = lambda: ''  # no checkpoint writes while timing
    self.step_seconds = 0.0
    build = self.trainer.steps.step_fn

    def timed_step_fn(kind):
      fn = build(kind)

      def call(*args):
        start = time.perf_counter()
        out = fn(*args)
        out[0][0].numpy()
        self.step_seconds += time.perf_counter() - start
        return out
      return call

    self.trainer.steps.step_fn = timed_step_fn

  @property
  def step(self) -> int:
    return int(self.trainer.step.numpy())

  def advance(self, steps: int) -> tuple[float, float]:
    """Runs `steps` more steps; returns (wall seconds, seconds inside step functions)."""
    if steps <= 0:
      return 0.0, 0.0
    self.trainer.num_steps = self.step + steps
    inside = self.step_seconds
    start = time.perf_counter()
    self.trainer.train()
    return time.perf_counter() - start, self.step_seconds - inside

  def close(self):
    self.trainer.close()


def measure(config: ml_collections.ConfigDict, idle: str, *, steps: int, rounds: int,
            root: str) -> dict:
  tasks = list(specs_lib.resolve(config).task_names)
  config = bench_config(config, idle, total_steps=(rounds + 3) * steps)
  data = ConstantProvider()
  co = Run(config, os.path.join(root, f'co_{idle}'), data)
  schedule = co.trainer.schedule
  # Warm-up: up to the step where every task has been traced twice.
  warm = next(s for s in range(1, schedule.num_steps + 1)
              if min(schedule.counts(s).values()) >= 2)
  co.advance(warm)
  singles = {t: Run(single_task_config(config, t), os.path.join(root, f'{t}_{idle}'), data)
             for t in tasks}
  for run in singles.values():
    run.advance(2)
  batch = {t: int(config.tasks[t].batch_size) for t in tasks}

  def one_round() -> tuple[dict, tuple[float, float], list[tuple[float, float]]]:
    start = co.step
    counts = {t: schedule.counts(start + steps)[t] - schedule.counts(start)[t] for t in tasks}
    return counts, co.advance(steps), [singles[t].advance(counts[t]) for t in tasks]

  # One untimed round: the first round after tracing ran ~2x slower on both sides.
  one_round()
  out = {'co_seconds': [], 'separate_seconds': [], 'co_wall_seconds': [],
         'separate_wall_seconds': [], 'examples': [], 'counts': []}
  for _ in range(rounds):
    counts, (co_wall, co_s), separate = one_round()
    out['co_seconds'].append(co_s)
    out['separate_seconds'].append(sum(s for _, s in separate))
    out['co_wall_seconds'].append(co_wall)
    out['separate_wall_seconds'].append(sum(w for w, _ in separate))
    out['examples'].append(sum(counts[t] * batch[t] for t in tasks))
    out['counts'].append(counts)
  for run in [co, *singles.values()]:
    run.close()
  singles.clear()
  gc.collect()
  ratios = [s / c for c, s in zip(out['co_seconds'], out['separate_seconds'])]
  ratio = common.median(ratios)
  wall = [s / c for c, s in zip(out['co_wall_seconds'], out['separate_wall_seconds'])]
  return dict(idle_params=idle, tasks=tasks,
              modalities=[config.tasks[t].modality for t in tasks], steps_per_round=steps,
              rounds=rounds, warmup_steps=warm,
              co_examples_per_second=common.median(
                  [e / c for e, c in zip(out['examples'], out['co_seconds'])]),
              separate_examples_per_second=common.median(
                  [e / s for e, s in zip(out['examples'], out['separate_seconds'])]),
              throughput_ratio=ratio, throughput_ratio_all=ratios, overhead=1.0 - ratio,
              throughput_ratio_totals=sum(out['separate_seconds']) / sum(out['co_seconds']),
              wall_ratio=common.median(wall), wall_ratio_all=wall,
              **out)


COLUMNS = [('idle_params', 'idle_params', 's'), ('steps_per_round', 'steps/round', 'd'),
           ('rounds', 'rounds', 'd'), ('co_examples_per_second', 'co-training ex/s', '.1f'),
           ('separate_examples_per_second', 'separate ex/s', '.1f'),
           ('throughput_ratio', 'ratio', '.3f'), ('overhead_pct', 'overhead %', '+.1f')]


def main(argv: Sequence[str]) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  quick = _QUICK.value
  steps = _STEPS.value or (40 if quick else 120)
  rounds = _ROUNDS.value or (2 if quick else 5)
  mods = sorted({config.tasks[t].modality for t in config.tasks})
  print(f'{config.name}: tasks {list(config.tasks.keys())} over {mods}; weighted schedule, '
        f'{steps} steps x {rounds} rounds', flush=True)
  rows = []
  with tempfile.TemporaryDirectory(prefix='polyvit_overhead_') as root:
    for idle in _IDLE.value:
      row = measure(config, idle, steps=steps, rounds=rounds, root=root)
      row['overhead_pct'] = 100 * row['overhead']
      rows.append(row)
      print(common.table([row], COLUMNS), flush=True)
  print()
  print(common.table(rows, COLUMNS))
  path = common.write_json(_OUT.value, 'cotraining_overhead_quick' if quick
                           else 'cotraining_overhead',
                           {'config': config.name, 'quick': quick, 'rows': rows})
  print(f'\nwrote {path}')


if __name__ == '__main__':
  app.run(main)
