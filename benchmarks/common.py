"""Shared pieces of the benchmark scripts: the machine, the matmul reference, timing, JSON.

Every benchmark reports ratios against something measured in the same process, because the
machines are shared and noisy: `matmul_gflops()` is the hardware reference of the training
step figures (fp32, square, measured right before and after each measured configuration).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from typing import Callable

import numpy as np
import tensorflow as tf

_FLAGS_OF_INTEREST = ('avx', 'avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_vnni',
                      'avx_vnni', 'amx_bf16', 'amx_tile', 'amx_int8', 'f16c')


def machine() -> dict:
  """Cores, CPU model, the vector-ISA flags that matter for matmuls, load, versions."""
  info = {'cpus': os.cpu_count(), 'python': platform.python_version(),
          'tensorflow': tf.__version__, 'model_name': '', 'flags': []}
  try:
    with open('/proc/cpuinfo') as f:
      text = f.read()
    for line in text.splitlines():
      if line.startswith('model name') and not info['model_name']:
        info['model_name'] = line.split(':', 1)[1].strip()
      if line.startswith('flags'):
        flags = set(line.split(':', 1)[1].split())
        info['flags'] = [f for f in _FLAGS_OF_INTEREST if f in flags]
        break
  except OSError:
    pass
  try:
    info['load_average'] = list(os.getloadavg())
  except OSError:
    pass
  import keras  # pylint: disable=import-outside-toplevel
  info['keras'] = keras.__version__
  return info


def has_bf16_hardware(info: dict | None = None) -> bool:
  flags = (info or machine())['flags']
  return 'avx512_bf16' in flags or 'amx_bf16' in flags


class MatmulReference:
  """fp32 n x n x n matmuls in a tf.function: the hardware reference of the step figures.

  `burst(seconds)` runs matmul calls for about that long and returns (best, mean) GFLOP/s:
  the best call is the least disturbed one (the reference the efficiency figures use, a
  conservative choice), the mean is total FLOPs / total time over the burst.
  """

  def __init__(self, n: int = 2048, dtype=tf.float32):
    self.n = n
    self.a = tf.random.stateless_normal((n, n), seed=(1, 2), dtype=dtype)
    self.b = tf.random.stateless_normal((n, n), seed=(3, 4), dtype=dtype)

    @tf.function
    def product(a, b):
      return tf.reduce_sum(tf.matmul(a, b)[0, :1])

    self._product = product
    self.flops = 2 * n ** 3
    self.call()

  def call(self) -> float:
    """Seconds of one call."""
    start = time.perf_counter()
    self._product(self.a, self.b).numpy()
    return time.perf_counter() - start

  def burst(self, seconds: float, min_calls: int = 3) -> tuple[float, float]:
    times = []
    while len(times) < min_calls or sum(times) < seconds:
      times.append(self.call())
    return self.flops / min(times) / 1e9, len(times) * self.flops / sum(times) / 1e9

  def best(self, seconds: float = 1.0) -> float:
    return self.burst(seconds)[0]


def matmul_gflops(n: int = 2048, seconds: float = 1.0, dtype=tf.float32) -> float:
  """Best GFLOP/s of an n x n x n matmul over about `seconds`."""
  return MatmulReference(n, dtype).best(seconds)


def interleaved(step: Callable[[], object], reference: MatmulReference, *, pairs: int,
                warmup: int = 1, min_burst: float = 1.0
                ) -> tuple[list[float], list[float], list[float]]:
  """Alternates a matmul burst (as long as the last step, at least `min_burst` s) and one
  call of `step`, `pairs` times after `warmup` calls. Returns (step seconds, burst best
  GFLOP/s, burst mean GFLOP/s) per pair: a neighbour's load hits both members of a pair."""
  last = 0.0
  for _ in range(warmup):
    t0 = time.perf_counter()
    step()
    last = time.perf_counter() - t0
  times, best, mean = [], [], []
  for _ in range(pairs):
    b, m = reference.burst(max(min_burst, last))
    best.append(b)
    mean.append(m)
    t0 = time.perf_counter()
    step()
    last = time.perf_counter() - t0
    times.append(last)
  return times, best, mean


def time_calls(fn: Callable[[], object], *, steps: int, warmup: int = 1,
               min_seconds: float = 0.0) -> list[float]:
  """Seconds of each of `steps` calls of `fn` (a blocking call) after `warmup` calls;
  keeps calling until `min_seconds` have passed."""
  for _ in range(warmup):
    fn()
  times = []
  start = time.perf_counter()
  while len(times) < steps or time.perf_counter() - start < min_seconds:
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return times


def median(values) -> float:
  return float(statistics.median(values))


def robust_rate(times: list[float]) -> float:
  """Calls per second from the median call time (robust to a neighbour's burst)."""
  return 1.0 / median(times)


def write_json(out_dir: str, name: str, payload: dict) -> str:
  """Writes `<out_dir>/<name>.json` with the machine description added; returns the path."""
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, f'{name}.json')
  payload = {'machine': machine(), 'time': time.strftime('%Y-%m-%d %H:%M:%S %Z'), **payload}
  with open(path, 'w') as f:
    json.dump(payload, f, indent=2, default=_json_default)
  return path


def _json_default(x):
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (np.floating,)):
    return float(x)
  raise TypeError(f'not JSON serialisable: {type(x)}')


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
  """A fixed-width text table: columns are (key, header, format)."""
  widths = [max(len(h), *(len(format(r.get(k, ''), f)) if r.get(k) is not None else 1
                         for r in rows)) if rows else len(h) for k, h, f in columns]
  lines = ['  '.join(h.rjust(w) for (_, h, _), w in zip(columns, widths))]
  for r in rows:
    cells = []
    for (k, _, f), w in zip(columns, widths):
      v = r.get(k)
      cells.append(('-' if v is None else format(v, f)).rjust(w))
    lines.append('  '.join(cells))
  return '\n'.join(lines)
