"""Server-side request batching for the local server, configured like TF Serving's.

`BatchingParameters.from_file` reads the same text-format file TF Serving takes with
`--batching_parameters_file` (serving/batching_parameters.txt); the fields used here are
max_batch_size, batch_timeout_micros, max_enqueued_batches and num_batch_threads.

`Batcher.submit(signature, inputs)` queues a request; a scheduler thread merges queued
requests of the same signature and the same per-example shapes into one batch of at most
`max_batch_size` rows (waiting at most `batch_timeout_micros` after the oldest request for more
to arrive), runs it on one of `num_batch_threads` workers and splits the outputs back. A
request larger than max_batch_size runs as a batch of its own. When a merged batch fails, its
requests are retried one by one, so one malformed request cannot fail its neighbours.

Admission (`Admission`) counts what waits in the queue three ways: rows (at most
max_enqueued_batches * max_batch_size, as TF Serving bounds its queue), requests and bytes;
and it gives no client more than `client_share` of any of the three, so a client flooding
the queue fills its own share and the others still get in. A request that does not fit
gets QueueFullError naming the limit (the server answers UNAVAILABLE, as TF Serving does
when its queue is full).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import re
import threading
import time
from typing import Callable, Mapping

import numpy as np

Inputs = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]


class QueueFullError(RuntimeError):
  """The batching queue is full; the request was not queued."""


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
  max_batch_size: int = 32
  batch_timeout_micros: int = 2000
  max_enqueued_batches: int = 100
  num_batch_threads: int = 2

  @classmethod
  def from_text(cls, text: str, source: str = '<text>') -> 'BatchingParameters':
    """Parses TF Serving's text format: `max_batch_size { value: 32 }` (or `name: value`)."""
    text = re.sub(r'#[^\n]*', '', text)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for name, value in re.findall(r'(\w+)\s*(?::\s*|\{\s*value\s*:\s*)([^\s}]+)\s*\}?', text):
      if name in known:
        try:
          values[name] = int(value)
        except ValueError as e:
          raise ValueError(f'{source}: {name} must be an integer, got {value!r}.') from e
    bad = {k: v for k, v in values.items() if v < (0 if k == 'batch_timeout_micros' else 1)}
    if bad:
      raise ValueError(f'{source}: out-of-range batching parameters {bad}.')
    return cls(**values)

  @classmethod
  def from_file(cls, path: str) -> 'BatchingParameters':
    with open(path) as f:
      return cls.from_text(f.read(), source=path)


@dataclasses.dataclass(frozen=True)
class Admission:
  """Queue limits beyond TF Serving's rows: requests, bytes, and one client's share.

  0 for max_requests means max_enqueued_batches * max_batch_size (one row per request).
  """
  max_requests: int = 0
  max_bytes: int = 256 << 20
  client_share: float = 0.5

  def __post_init__(self):
    if self.max_requests < 0 or self.max_bytes < 1 or not 0.0 < self.client_share <= 1.0:
      raise ValueError(f'bad admission limits {self}: max_requests >= 0, max_bytes >= 1, '
                       '0 < client_share <= 1.')


@dataclasses.dataclass
class _Request:
  inputs: Inputs
  rows: int
  enqueued: float
  future: concurrent.futures.Future
  client: str = ''
  nbytes: int = 0


class _Usage:
  """Rows, requests and bytes waiting in the queue, in all and per client."""

  FIELDS = ('rows', 'requests', 'bytes')

  def __init__(self):
    self.total = dict.fromkeys(self.FIELDS, 0)
    self.clients: dict[str, dict[str, int]] = {}

  @staticmethod
  def cost(request: _Request) -> dict[str, int]:
    return {'rows': request.rows, 'requests': 1, 'bytes': request.nbytes}

  def add(self, request: _Request, sign: int = 1) -> None:
    mine = self.clients.setdefault(request.client, dict.fromkeys(self.FIELDS, 0))
    for k, v in self.cost(request).items():
      self.total[k] += sign * v
      mine[k] += sign * v
    if not any(mine.values()):
      del self.clients[request.client]


def _rows(inputs: Inputs) -> int:
  return int(next(iter(inputs.values())).shape[0])


def _key(signature: str, inputs: Inputs) -> tuple:
  """Requests merge only when signature, input names, dtypes and example shapes all agree."""
  return (signature,) + tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items()))


class Batcher:
  """Merges concurrent requests into batches; `run(signature, inputs)` executes one batch."""

  def __init__(self, run: Callable[[str, Inputs], Outputs], params: BatchingParameters,
               admission: Admission | None = None):
    self._run = run
    self.params = params
    admission = admission or Admission()
    rows = params.max_enqueued_batches * params.max_batch_size
    self.limits = {'rows': rows, 'requests': admission.max_requests or rows,
                   'bytes': admission.max_bytes}
    self.client_share = admission.client_share
    self._cv = threading.Condition()
    self._queues: dict[tuple, collections.deque[_Request]] = collections.OrderedDict()
    self._usage = _Usage()
    self._closed = False
    self._workers = concurrent.futures.ThreadPoolExecutor(
        params.num_batch_threads, thread_name_prefix='batch')
    self._free_workers = threading.Semaphore(params.num_batch_threads)
    self.batches_run = 0
    self.rows_run = 0
    self._scheduler = threading.Thread(target=self._schedule, name='batch-scheduler',
                                       daemon=True)
    self._scheduler.start()

  @property
  def _queued_rows(self) -> int:
    return self._usage.total['rows']

  def _refusal(self, request: _Request) -> str | None:
    """Why `request` may not wait in the queue now (None: it may)."""
    mine = self._usage.clients.get(request.client, dict.fromkeys(_Usage.FIELDS, 0))
    for field, need in _Usage.cost(request).items():
      limit, used = self.limits[field], self._usage.total[field]
      if used and used + need > limit:  # an empty queue takes any one request
        return (f'batching queue full ({used} {field} waiting, limit {limit} {field}); '
                'retry later.')
      share = max(1, int(limit * self.client_share))
      if request.client and mine[field] and mine[field] + need > share:
        return (f'client {request.client} has {mine[field]} {field} waiting, its share of the '
                f'batching queue is {share} {field} ({self.client_share:g} of {limit}); '
                'retry later.')
    return None

  def submit(self, signature: str, inputs: Inputs, *, client: str = '',
             nbytes: int = 0) -> Outputs:
    """Queues `inputs` (a batch of one or more rows) of `client` (`nbytes` of request) and
    blocks until its outputs are ready; QueueFullError when admission refuses it."""
    request = _Request(dict(inputs), _rows(inputs), time.monotonic(),
                       concurrent.futures.Future(), client, int(nbytes))
    with self._cv:
      if self._closed:
        raise QueueFullError('the server is shutting down.')
      refusal = self._refusal(request)
      if refusal:
        raise QueueFullError(refusal)
      self._queues.setdefault(_key(signature, inputs), collections.deque()).append(request)
      self._usage.add(request)
      self._cv.notify_all()
    return request.future.result()

  def close(self) -> None:
    with self._cv:
      self._closed = True
      self._cv.notify_all()
    self._scheduler.join()
    self._workers.shutdown(wait=True)

  # ------------------------------------------------------------------------------ internals
  def _oldest(self) -> tuple | None:
    heads = [(q[0].enqueued, key) for key, q in self._queues.items() if q]
    return min(heads)[1] if heads else None

  def _schedule(self) -> None:
    timeout = self.params.batch_timeout_micros / 1e6
    while True:
      self._free_workers.acquire()  # batches keep growing while every worker is busy
      with self._cv:
        while not self._closed and self._oldest() is None:
          self._cv.wait()
        key = self._oldest()
        if key is None:  # closed and drained
          self._free_workers.release()
          return
        queue = self._queues[key]
        deadline = queue[0].enqueued + timeout
        while (not self._closed and sum(r.rows for r in queue) < self.params.max_batch_size
               and time.monotonic() < deadline):
          self._cv.wait(max(0.0, deadline - time.monotonic()))
        batch = [queue.popleft()]
        rows = batch[0].rows
        while queue and rows + queue[0].rows <= self.params.max_batch_size:
          rows += queue[0].rows
          batch.append(queue.popleft())
        if not queue:
          del self._queues[key]
        for r in batch:
          self._usage.add(r, -1)
      self._workers.submit(self._run_batch, key[0], batch)

  def _run_batch(self, signature: str, batch: list[_Request]) -> None:
    try:
      if len(batch) == 1:
        self._finish(batch[0], signature, batch[0].inputs)
        return
      names = list(batch[0].inputs)
      merged = {n: np.concatenate([r.inputs[n] for r in batch]) for n in names}
      try:
        outputs = self._run(signature, merged)
      except Exception:  # pylint: disable=broad-except
        for r in batch:  # isolate the bad request(s)
          self._finish(r, signature, r.inputs)
        return
      self.batches_run += 1
      self.rows_run += sum(r.rows for r in batch)
      start = 0
      for r in batch:
        r.future.set_result({k: v[start:start + r.rows] for k, v in outputs.items()})
        start += r.rows
    finally:
      self._free_workers.release()

  def _finish(self, request: _Request, signature: str, inputs: Inputs) -> None:
    try:
      request.future.set_result(self._run(signature, inputs))
      self.batches_run += 1
      self.rows_run += request.rows
    except Exception as e:  # pylint: disable=broad-except
      request.future.set_exception(e)
