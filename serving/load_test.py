r"""A bounded load test: a fixed number of Predict calls from concurrent clients.

  python -m serving.load_test --server=127.0.0.1:8500 --signature=<task> \
      --requests=200 --concurrency=8 [--rows=1]
  python -m serving.load_test --model_dir=<models>/polyvit --signature=<task> --compare_batching
      (starts the local server on a free loopback port, once without and once with batching)

Inputs are seeded uniform values in [-1, 1] shaped like the signature's input (a tensor
signature of a task). Reports failures, requests/s, rows/s and latency percentiles.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from typing import Callable

from absl import app
from absl import flags
import numpy as np

from serving import client as client_lib


@dataclasses.dataclass
class LoadResult:
  requests: int
  failures: int
  errors: list[str]
  seconds: float
  rows_per_request: int
  latency_p50_ms: float
  latency_p90_ms: float
  notes: list[str] = dataclasses.field(default_factory=list)

  @property
  def requests_per_second(self) -> float:
    return self.requests / self.seconds if self.seconds else 0.0

  @property
  def rows_per_second(self) -> float:
    return self.requests_per_second * self.rows_per_request

  def summary(self) -> str:
    return (f'{self.requests} requests x {self.rows_per_request} rows, {self.failures} failed, '
            f'{self.seconds:.2f} s: {self.requests_per_second:.1f} req/s, '
            f'{self.rows_per_second:.1f} rows/s, latency p50 {self.latency_p50_ms:.1f} ms '
            f'p90 {self.latency_p90_ms:.1f} ms')


def tensor_inputs(client, signature: str, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Seeded float32 inputs of the signature's shape (its input must be a float tensor)."""
  info = client.signatures()[signature]
  rng = np.random.default_rng(seed)
  inputs = {}
  for name, (dtype, shape) in info.inputs.items():
    if dtype != 'float32' or any(d is None for d in shape[1:]):
      raise ValueError(f'{signature}: input {name} is {dtype}{list(shape)}; the load test '
                       'sends float tensors of a fixed example shape (use a task signature).')
    inputs[name] = rng.uniform(-1, 1, (rows,) + tuple(shape[1:])).astype(np.float32)
  return inputs


def run(make_client: Callable[[], object], signature: str, inputs: dict[str, np.ndarray], *,
        requests: int, concurrency: int) -> LoadResult:
  """Sends `requests` Predict calls from `concurrency` threads (one client each)."""
  clients = [make_client() for _ in range(concurrency)]
  rows = int(next(iter(inputs.values())).shape[0])
  latencies, errors = [], []

  def one(i: int) -> None:
    start = time.perf_counter()
    try:
      out = clients[i % concurrency].predict(signature, inputs)
      if out['logits'].shape[0] != rows:
        raise ValueError(f'{out["logits"].shape[0]} rows of logits for {rows} inputs')
    except Exception as e:  # pylint: disable=broad-except
      errors.append(f'request {i}: {e}')
    latencies.append(time.perf_counter() - start)

  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
    list(pool.map(one, range(requests)))
  seconds = time.perf_counter() - start
  for c in clients:
    c.close()
  lat = np.array(latencies) * 1e3
  return LoadResult(requests, len(errors), errors[:10], seconds, rows,
                    float(np.percentile(lat, 50)), float(np.percentile(lat, 90)))


def compare_batching(model_dir: str, signature: str, *, requests: int, concurrency: int,
                     rows: int = 1, batching_parameters=None) -> dict[str, LoadResult]:
  """The same load against the local server without and with request batching."""
  # pylint: disable=import-outside-toplevel
  from serving import batching
  from serving import local_server
  results = {}
  params = batching_parameters or batching.BatchingParameters(
      max_batch_size=max(concurrency * rows, 1), batch_timeout_micros=2000,
      num_batch_threads=2)
  for label, p in (('no batching', None), ('batching', params)):
    with local_server.LocalServer(model_dir, port=0, batching_parameters=p) as server:
      address = f'127.0.0.1:{server.port}'
      make = lambda: client_lib.GrpcClient(address)  # noqa: E731
      probe = make()
      inputs = tensor_inputs(probe, signature, rows)
      probe.close()
      run(make, signature, inputs, requests=min(8, requests), concurrency=concurrency)  # warm
      results[label] = run(make, signature, inputs, requests=requests, concurrency=concurrency)
      if p is not None:
        b = server.service.batcher
        results[label].notes.append(
            f'{b.batches_run} batches ran {b.rows_run} rows (warm-up included)')
  return results


def _define_flags() -> None:
  flags.DEFINE_string('server', None, 'HOST:PORT of a running server (gRPC).')
  flags.DEFINE_string('model_dir', None, 'With --compare_batching: the exported model.')
  flags.DEFINE_string('signature', None, 'A tensor signature (a task name).')
  flags.DEFINE_integer('requests', 200, 'Number of Predict calls.')
  flags.DEFINE_integer('concurrency', 8, 'Concurrent clients.')
  flags.DEFINE_integer('rows', 1, 'Examples per request.')
  flags.DEFINE_bool('compare_batching', False,
                    'Start the local server twice: without and with batching.')


def main(argv):
  del argv
  f = flags.FLAGS
  if f.compare_batching:
    results = compare_batching(f.model_dir, f.signature, requests=f.requests,
                               concurrency=f.concurrency, rows=f.rows)
  else:
    make = lambda: client_lib.GrpcClient(f.server)  # noqa: E731
    probe = make()
    inputs = tensor_inputs(probe, f.signature, f.rows)
    probe.close()
    results = {f.server: run(make, f.signature, inputs, requests=f.requests,
                             concurrency=f.concurrency)}
  for label, r in results.items():
    print(f'{label}: {r.summary()}')
    for line in r.errors + r.notes:
      print(f'  {line}')


if __name__ == '__main__':
  _define_flags()
  flags.mark_flags_as_required(['signature'])
  app.run(main)
