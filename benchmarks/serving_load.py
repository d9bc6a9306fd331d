r"""Serving: the local server's throughput and latency percentiles, without and with batching.

    python -m benchmarks.serving_load [--quick] [--workdir=<trained run> | --config=<config>] \
        [--requests=200] [--concurrency=8] [--rows=1,4] [--out=benchmarks/results]

Exports the model (the latest checkpoint of `--workdir`, or a seeded random PolyViT of
`--config`, default the demo config: throughput does not depend on the weights) and, for
each task's tensor signature and each `--rows` (examples per request), runs
`serving.load_test.compare_batching`: the local gRPC server (serving/local_server.py) on a
free loopback port is started without and then with request batching, and a bounded number
of Predict calls (`--requests`, after a short warm-up) come from `--concurrency` client
threads in this process. Reported: failures, requests/s, rows/s, latency p50/p90, and
rows/s relative to calling the same SavedModel signature in-process at the same rows per
call (no gRPC, no server): the cost the server adds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf
from ml_collections import config_flags

from benchmarks import common
from polyvit_tf.export import savedmodel
from polyvit_tf.model import PolyViT
from serving import load_test

_CONFIG = config_flags.DEFINE_config_file('config', 'polyvit_tf/configs/demo.py',
                                          'Config of the random-weight model (no --workdir).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained run to export and serve.')
_QUICK = flags.DEFINE_bool('quick', False, 'Fewer requests, one task per modality, rows=1.')
_REQUESTS = flags.DEFINE_integer('requests', 0, 'Predict calls per measurement (0: 200; '
                                 'quick 48).')
_CONCURRENCY = flags.DEFINE_integer('concurrency', 8, 'Concurrent client threads.')
_ROWS = flags.DEFINE_list('rows', None, 'Examples per request (default 1,4; quick 1).')
_TASKS = flags.DEFINE_list('tasks', None, 'Signatures to load (default: one task per '
                           'modality).')
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Directory of the JSON results.')


def in_process_rows_per_second(version_dir: str, task: str, inputs: dict,
                               calls: int = 50) -> float:
  """Rows/s of calling the signature directly (batch = the request's rows), one thread."""
  loaded = tf.saved_model.load(version_dir)
  fn = loaded.signatures[task]
  args = {k: tf.constant(v) for k, v in inputs.items()}
  for _ in range(3):
    fn(**args)['logits'].numpy()
  times = common.time_calls(lambda: fn(**args)['logits'].numpy(), steps=calls, warmup=0)
  rows = int(next(iter(inputs.values())).shape[0])
  return rows / common.median(times)


def main(argv: Sequence[str]) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  quick = _QUICK.value
  requests = _REQUESTS.value or (48 if quick else 200)
  rows_list = [int(r) for r in (_ROWS.value or (['1'] if quick else ['1', '4']))]
  root = tempfile.mkdtemp(prefix='polyvit_serving_bench_')
  try:
    if _WORKDIR.value:
      version_dir = savedmodel.export_saved_model(_WORKDIR.value, os.path.join(root, 'polyvit'))
    else:
      config = _CONFIG.value
      version_dir = savedmodel.export_model(PolyViT(config, seed=0), config,
                                            os.path.join(root, 'polyvit'))
    meta = savedmodel.read_metadata(version_dir)
    tasks = _TASKS.value
    if not tasks:
      seen, tasks = set(), []
      for task, info in meta['tasks'].items():
        if info.get('modality') not in seen:
          seen.add(info.get('modality'))
          tasks.append(task)
    model_dir = os.path.dirname(version_dir)
    rows_out = []
    for task in tasks:
      shape = meta['tasks'][task]['input_shape']
      name = meta['signatures'][task]['input']
      for rows in rows_list:
        inputs = {name: np.random.default_rng(0).uniform(
            -1, 1, (rows,) + tuple(shape)).astype(np.float32)}
        direct = in_process_rows_per_second(version_dir, task, inputs)
        start = time.perf_counter()
        results = load_test.compare_batching(model_dir, task, requests=requests,
                                             concurrency=_CONCURRENCY.value, rows=rows)
        for label, r in results.items():
          rows_out.append({
              'task': task, 'modality': meta['tasks'][task].get('modality', ''),
              'rows': rows, 'batching': label, 'requests': r.requests,
              'failures': r.failures, 'requests_per_second': r.requests_per_second,
              'rows_per_second': r.rows_per_second, 'p50_ms': r.latency_p50_ms,
              'p90_ms': r.latency_p90_ms, 'in_process_rows_per_second': direct,
              'vs_in_process': r.rows_per_second / direct, 'notes': r.notes,
              'errors': r.errors})
        print(common.table(rows_out[-2:], COLUMNS), f'({time.perf_counter() - start:.0f} s)',
              flush=True)
  finally:
    shutil.rmtree(root, ignore_errors=True)
  print()
  print(common.table(rows_out, COLUMNS))
  path = common.write_json(_OUT.value, 'serving_quick' if quick else 'serving',
                           {'quick': quick, 'requests': requests,
                            'concurrency': _CONCURRENCY.value, 'rows': rows_out})
  print(f'\nwrote {path}')


COLUMNS = [('task', 'task', 's'), ('rows', 'rows/req', 'd'), ('batching', 'batching', 's'),
           ('failures', 'failed', 'd'), ('requests_per_second', 'req/s', '.1f'),
           ('rows_per_second', 'rows/s', '.1f'), ('p50_ms', 'p50 ms', '.1f'),
           ('p90_ms', 'p90 ms', '.1f'), ('in_process_rows_per_second', 'in-process rows/s', '.1f'),
           ('vs_in_process', 'vs in-process', '.2f')]


if __name__ == '__main__':
  app.run(main)
