"""Input-pipeline throughput: examples per second per modality, 1 vs 2 parallel calls.

    python -m benchmarks.input_pipeline [--config=polyvit_tf/configs/demo.py] \
        [--examples=2000] [--quick] [--split=train|eval] [--parallel=1,2,-1] \
        [--consumption] [--out=benchmarks/results]

For each modality the first task of the config that uses it is read through
`train_dataset` (or `eval_dataset`) with `data.num_parallel_calls` = 1 and 2; the first
batches (tracing, filling the shuffle block) are excluded, then `--examples` examples are
timed. The two settings of a modality run back to back in one process; on a shared
machine compare the ratio, not the absolute numbers. `--parallel=-1` is tf.data.AUTOTUNE
(the configs' default).

`--consumption` also times the model's training step on the same task and batch size (the
trainer's step function, `benchmarks.runners.StepRunner`, on a constant batch) right
after the pipeline, and prints pipeline examples/s / model examples/s: the headroom of the
input pipeline (>= 2x is the goal). `--out` writes the figures as JSON.
"""

from __future__ import annotations

import copy
import time
from typing import Sequence

from absl import app
from absl import flags
from ml_collections import config_flags

from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import pipeline

_CONFIG = config_flags.DEFINE_config_file('config', 'polyvit_tf/configs/demo.py',
                                          'PolyViT config.')
_EXAMPLES = flags.DEFINE_integer('examples', 2000, 'Examples timed per setting.')
_QUICK = flags.DEFINE_bool('quick', False, 'Time 200 examples per setting.')
_SPLIT = flags.DEFINE_enum('split', 'train', ['train', 'eval'], 'Pipeline to time.')
_PARALLEL = flags.DEFINE_list('parallel', ['1', '2'],
                              'num_parallel_calls settings (-1: AUTOTUNE).')
_CONSUMPTION = flags.DEFINE_bool('consumption', False,
                                 "Also time the model's training step on each task.")
_OUT = flags.DEFINE_string('out', None, 'Directory for input_pipeline.json (optional).')


def throughput(config, task: str, parallel: int, examples: int, split: str) -> float:
  """Examples per second of `task`'s pipeline with `parallel` parallel calls."""
  config = copy.deepcopy(config)
  config.tasks[task].data.num_parallel_calls = parallel
  if split == 'train':
    ds = pipeline.train_dataset(config, task, seed=0)
    batch = config.tasks[task].batch_size
    ds = ds.repeat()
  else:
    batch = config.eval.batch_size
    ds = pipeline.eval_dataset(config, task, batch_size=batch).repeat()
  it = iter(ds)
  for _ in range(2):  # tracing, shuffle block, first decode
    next(it)
  steps = max(1, examples // batch)
  start = time.perf_counter()
  for _ in range(steps):
    next(it)
  return steps * batch / (time.perf_counter() - start)


def consumption(config, task: str, steps: int = 5) -> float:
  """Examples per second the trainer's step consumes for `task` at its batch size."""
  # pylint: disable=import-outside-toplevel
  from benchmarks import common
  from benchmarks import runners
  runner = runners.StepRunner(config, task)
  times = common.time_calls(runner, steps=steps, warmup=2)
  return config.tasks[task].batch_size / common.median(times)


def main(argv: Sequence[str]) -> None:
  del argv
  config = _CONFIG.value
  examples = 200 if _QUICK.value else _EXAMPLES.value
  settings = [int(p) for p in _PARALLEL.value]
  label = lambda p: 'auto' if p < 0 else str(p)  # noqa: E731
  print(f'{_SPLIT.value} pipeline of {config.name}, {examples} examples per setting')
  header = (f'{"modality":8} {"task":14} ' + ' '.join(f'{f"{label(p)} call(s) ex/s":>16}'
                                                      for p in settings) + '  ratio')
  if _CONSUMPTION.value:
    header += f'  {"model ex/s":>10}  {"best/model":>10}'
  print(header)
  rows = []
  spec = specs_lib.resolve(config)
  for modality in spec.used_modalities:
    task = next(t for t in spec.task_names if spec.task(t).modality == modality)
    rates = [throughput(config, task, p, examples, _SPLIT.value) for p in settings]
    ratio = rates[-1] / rates[0]
    line = (f'{modality:8} {task:14} ' + ' '.join(f'{r:16.1f}' for r in rates) +
            f'  {ratio:5.2f}x')
    row = {'modality': modality, 'task': task, 'batch': config.tasks[task].batch_size,
           'pipeline_examples_per_second': dict(zip(map(label, settings), rates))}
    if _CONSUMPTION.value:
      model = consumption(config, task, steps=3 if _QUICK.value else 8)
      row['model_examples_per_second'] = model
      row['headroom'] = max(rates) / model
      line += f'  {model:10.1f}  {row["headroom"]:9.2f}x'
    rows.append(row)
    print(line, flush=True)
  if _OUT.value:
    # pylint: disable=import-outside-toplevel
    from benchmarks import common
    path = common.write_json(_OUT.value, 'input_pipeline' + ('_quick' if _QUICK.value else ''),
                             {'config': config.name, 'split': _SPLIT.value,
                              'examples': examples, 'rows': rows})
    print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
