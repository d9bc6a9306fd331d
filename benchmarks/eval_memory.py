r"""Peak memory of the multi-view eval step, one pass against chunked passes, side by side.

    python -m benchmarks.eval_memory [--size=B] [--batch=1] [--views=12] \
        [--max_clips_per_pass=0,2] [--quick] [--tag=] [--out=benchmarks/results]

One video task at the paper's geometry (32x224x224 clips, the tubelets of
`configs/base.py:paper_modalities`, as the paper's B set-ups in configs/paper.py), a seeded
random PolyViT (nothing is downloaded), one eval batch of `--batch` examples x `--views` views
of random clips (a random head too: the video head's default, zeros, would give all-zero
logits and so compare nothing). For each value of `--max_clips_per_pass` (0: every view of the batch in one
pass, "before"; n > 0: n clips per pass, "after") a fresh child process builds the model and
runs the trainer's eval step (polyvit_tf.train.evaluation.Evaluator.eval_step, the prediction
path of every route) once on that batch. Per child: the peak resident memory of the whole
process (the child's ru_maxrss, from os.wait4) and its VmHWM / VmRSS just before the step
(model, input batch and libraries), so the step's own peak is the difference; the wall time
of the step (its first call, tracing included); and the logits, which the parent compares
(chunked against one pass, max |difference|). `--quick`: 16x112x112 clips, a smoke run.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Sequence

from absl import app
from absl import flags
import numpy as np

from benchmarks import common

_SIZE = flags.DEFINE_string('size', 'B', 'Encoder size.')
_BATCH = flags.DEFINE_integer('batch', 1, 'Examples in the eval batch.')
_VIEWS = flags.DEFINE_integer('views', 12, 'Views (clips) per example: 4 temporal x 3 spatial.')
_CHUNKS = flags.DEFINE_list('max_clips_per_pass', ['0', '2'],
                            'eval.max_clips_per_pass of each child run (0: one pass).')
_QUICK = flags.DEFINE_bool('quick', False, '16x112x112 clips (a smoke run).')
_TAG = flags.DEFINE_string('tag', '', 'Result name suffix: eval_memory_<tag>.json.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Directory of the JSON results.')
_CHILD = flags.DEFINE_string('child', None, 'Internal: run one measurement, write this .npz.')

TASK = 'video'


def _status_kib(field: str) -> int:
  """A /proc/self/status memory field (VmHWM, VmRSS) in KiB."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith(field + ':'):
        return int(line.split()[1])
  raise KeyError(field)


def _config(size: str, batch: int, views: int, chunk: int, quick: bool):
  from benchmarks import runners  # pylint: disable=import-outside-toplevel
  config = runners.one_task_config(size, TASK, batch, quick=quick, xla=False, bf16=False)
  config.tasks[TASK].eval_views = views
  config.tasks[TASK].head_init = 'lecun_normal'  # a random head: logits that can differ
  config.eval.batch_size = batch
  config.eval.max_clips_per_pass = chunk
  return config


def child(path: str, size: str, batch: int, views: int, chunk: int, quick: bool) -> None:
  """Builds the model and the batch, runs the eval step once, writes logits and figures."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from polyvit_tf.configs import specs  # pylint: disable=import-outside-toplevel
  from polyvit_tf.model import polyvit  # pylint: disable=import-outside-toplevel
  from polyvit_tf.train import evaluation  # pylint: disable=import-outside-toplevel

  config = _config(size, batch, views, chunk, quick)
  spec = specs.resolve(config)
  geometry, num_classes = spec.modality_of(TASK), spec.task(TASK).num_classes
  model = polyvit.build(config, seed=0)
  rng = np.random.default_rng(0)
  batch_ = {'inputs': tf.constant(rng.uniform(-1, 1, (batch, views) + geometry.input_shape)
                                  .astype(np.float32)),
            'labels': tf.one_hot(rng.integers(0, num_classes, batch), num_classes),
            'mask': tf.ones((batch,))}
  step = evaluation.Evaluator(model, config, tf.distribute.get_strategy(), None).eval_step(TASK)
  before = {'vm_hwm_before_kib': _status_kib('VmHWM'), 'vm_rss_before_kib': _status_kib('VmRSS')}
  start = time.perf_counter()
  logits, probabilities, _, _ = step(batch_)
  logits = logits.numpy()
  seconds = time.perf_counter() - start
  np.savez(path, logits=logits, probabilities=probabilities.numpy(),
           figures=json.dumps({**before, 'vm_hwm_kib': _status_kib('VmHWM'),
                               'step_seconds': seconds,
                               'tokens_per_clip': int(np.prod(geometry.grid)) + 1,
                               'input_mib': batch_['inputs'].numpy().nbytes / 2 ** 20}))


def measure(chunk: int, tmp: str) -> dict:
  """One child run with eval.max_clips_per_pass = chunk: its figures and logits."""
  path = os.path.join(tmp, f'chunk_{chunk}.npz')
  cmd = [sys.executable, '-m', 'benchmarks.eval_memory', f'--child={path}',
         f'--size={_SIZE.value}', f'--batch={_BATCH.value}', f'--views={_VIEWS.value}',
         f'--max_clips_per_pass={chunk}', f'--quick={_QUICK.value}']
  _, status, usage = os.wait4(subprocess.Popen(cmd).pid, 0)  # the child's own rusage
  code = os.waitstatus_to_exitcode(status)
  if code:
    raise RuntimeError(f'max_clips_per_pass={chunk}: child exited {code}')
  with np.load(path) as f:
    figures = json.loads(str(f['figures']))
    out = {'logits': f['logits'], 'probabilities': f['probabilities']}
  mib = lambda kib: kib / 1024  # noqa: E731
  row = {'max_clips_per_pass': chunk,
         'peak_rss_mib': mib(usage.ru_maxrss),  # Linux: KiB
         'vm_hwm_mib': mib(figures['vm_hwm_kib']),
         'rss_before_step_mib': mib(figures['vm_rss_before_kib']),
         'hwm_before_step_mib': mib(figures['vm_hwm_before_kib']),
         'step_seconds': figures['step_seconds'], 'tokens_per_clip': figures['tokens_per_clip'],
         'input_mib': figures['input_mib']}
  row['step_peak_mib'] = row['peak_rss_mib'] - row['rss_before_step_mib']
  return {**row, **out}


def main(argv: Sequence[str]) -> None:
  del argv
  if _CHILD.value:
    child(_CHILD.value, _SIZE.value, _BATCH.value, _VIEWS.value,
          int(_CHUNKS.value[0]), _QUICK.value)
    return
  chunks = [int(c) for c in _CHUNKS.value]
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for chunk in chunks:
      print(f'max_clips_per_pass={chunk} ({time.strftime("%T")})', flush=True)
      rows.append(measure(chunk, tmp))
  reference = next((r for r in rows if r['max_clips_per_pass'] == 0), rows[0])
  for r in rows:
    r['max_abs_logit_diff'] = float(np.abs(r['logits'] - reference['logits']).max())
    r['max_abs_prob_diff'] = float(np.abs(r['probabilities'] - reference['probabilities'])
                                   .max())
    r['peak_ratio'] = r['peak_rss_mib'] / reference['peak_rss_mib']
    r['step_peak_ratio'] = r['step_peak_mib'] / reference['step_peak_mib']
    r['time_ratio'] = r['step_seconds'] / reference['step_seconds']
  for r in rows:
    del r['logits'], r['probabilities']
  name = 'eval_memory' + (f'_{_TAG.value}' if _TAG.value else '') + (
      '_quick' if _QUICK.value else '')
  path = common.write_json(_OUT.value, name, {
      'size': _SIZE.value, 'batch': _BATCH.value, 'views': _VIEWS.value,
      'clips': _BATCH.value * _VIEWS.value, 'quick': _QUICK.value,
      'self_peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      'rows': rows})
  print(common.table(rows, [
      ('max_clips_per_pass', 'clips/pass', 'd'), ('peak_rss_mib', 'peak RSS MiB', '.0f'),
      ('rss_before_step_mib', 'before step MiB', '.0f'), ('step_peak_mib', 'step MiB', '.0f'),
      ('peak_ratio', 'peak ratio', '.3f'), ('step_seconds', 'step s', '.1f'),
      ('time_ratio', 'time ratio', '.3f'), ('max_abs_logit_diff', 'max|dlogit|', '.2e'),
      ('max_abs_prob_diff', 'max|dprob|', '.2e')]))
  print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
