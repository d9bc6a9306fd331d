"""Request batching: the shipped parameters file, merging, isolation of bad requests, limits,
and a bounded loopback load test with and without batching (throughput reported, not
asserted)."""

import os
import threading
import time

import numpy as np
import pytest

from serving import batching
from serving import load_test
from serving import service as service_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_shipped_batching_parameters_file():
  params = batching.BatchingParameters.from_file(
      os.path.join(ROOT, 'serving', 'batching_parameters.txt'))
  assert params == batching.BatchingParameters(max_batch_size=32, batch_timeout_micros=2000,
                                               max_enqueued_batches=100, num_batch_threads=4)
  with pytest.raises(ValueError, match='max_batch_size'):
    batching.BatchingParameters.from_text('max_batch_size { value: 0 }')


def _echo_batcher(params, calls):
  def run(signature, inputs):
    calls.append(len(inputs['x']))
    if (inputs['x'] < 0).any():
      raise ValueError('negative input')
    return {'y': inputs['x'] * 2, 'sig': np.array([signature] * len(inputs['x']))}
  return batching.Batcher(run, params)


def test_concurrent_requests_are_merged_and_split_back():
  calls = []
  b = _echo_batcher(batching.BatchingParameters(max_batch_size=16,
                                                batch_timeout_micros=200_000,
                                                num_batch_threads=1), calls)
  results, errors = {}, {}
  gate = threading.Barrier(8)

  def request(i):
    gate.wait()
    x = np.full((2, 3), i if i != 5 else -1, np.float32)  # request 5 is bad
    try:
      results[i] = b.submit('s', {'x': x})
    except ValueError as e:
      errors[i] = str(e)

  threads = [threading.Thread(target=request, args=(i,)) for i in range(8)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  b.close()
  assert list(errors) == [5] and errors[5] == 'negative input'
  for i, out in results.items():
    np.testing.assert_array_equal(out['y'], np.full((2, 3), 2 * i))
  assert max(calls) > 2  # some requests really ran together
  assert sum(calls) >= 16


def test_queue_limit_and_oversized_requests():
  release, running = threading.Event(), threading.Event()

  def slow(signature, inputs):
    running.set()
    release.wait(10)
    return {'y': inputs['x']}

  b = batching.Batcher(slow, batching.BatchingParameters(
      max_batch_size=2, batch_timeout_micros=0, max_enqueued_batches=1, num_batch_threads=1))
  worker = threading.Thread(target=b.submit, args=('s', {'x': np.zeros((2, 1))}))
  worker.start()  # occupies the only batch thread
  assert running.wait(10)
  queued = threading.Thread(target=b.submit, args=('s', {'x': np.zeros((2, 1))}))
  queued.start()
  deadline = time.time() + 10
  while b._queued_rows < 2 and time.time() < deadline:  # pylint: disable=protected-access
    time.sleep(0.01)
  with pytest.raises(batching.QueueFullError, match='queue full'):
    b.submit('s', {'x': np.zeros((1, 1))})
  release.set()
  worker.join()
  queued.join()
  # A request larger than max_batch_size runs as a batch of its own.
  assert b.submit('s', {'x': np.ones((5, 1))})['y'].shape == (5, 1)
  b.close()


def test_queue_full_is_unavailable(exported_base):
  svc = service_lib.ModelService(exported_base, warmup=False,
                                 batching_parameters=batching.BatchingParameters(
                                     max_batch_size=1, max_enqueued_batches=1))
  svc._batcher.close()  # pylint: disable=protected-access  (a closed queue accepts nothing)
  with pytest.raises(service_lib.ServiceError) as e:
    svc.predict('image_b', {'image': np.zeros((1, 32, 32, 3), np.float32)})
  assert e.value.code == 'UNAVAILABLE'


def test_bounded_load_with_and_without_batching(exported_base, capsys):
  results = load_test.compare_batching(exported_base, 'video_a', requests=48, concurrency=8)
  with capsys.disabled():
    print()
    for label, r in results.items():
      print(f'  local server, {label}: {r.summary()}; {"; ".join(r.notes)}')
  for r in results.values():
    assert r.failures == 0, r.errors
    assert r.requests == 48
  batcher_note = results['batching'].notes[0]
  batches, rows = (int(w) for w in batcher_note.split()[:4:3])
  assert rows == 56 and batches < rows  # 48 + 8 warm-up rows, merged into fewer batches


def test_admission_counts_requests_bytes_and_client_shares():
  """A client filling the queue is refused at its share; another client still gets in."""
  release = threading.Event()

  def slow(signature, inputs):
    release.wait(10)
    return {'y': inputs['x']}

  b = batching.Batcher(slow, batching.BatchingParameters(
      max_batch_size=1, batch_timeout_micros=0, max_enqueued_batches=8, num_batch_threads=1),
      batching.Admission(max_requests=6, max_bytes=1000, client_share=0.5))
  assert b.limits == {'rows': 8, 'requests': 6, 'bytes': 1000}
  threads = []

  def submit(client, nbytes=10):
    t = threading.Thread(target=b.submit, args=('s', {'x': np.zeros((1, 1))}),
                         kwargs=dict(client=client, nbytes=nbytes), daemon=True)
    t.start()
    threads.append(t)

  def wait_queued(n):
    deadline = time.time() + 10
    while b._usage.total['requests'] < n and time.time() < deadline:  # pylint: disable=protected-access
      time.sleep(0.01)

  submit('hostile')  # runs (and blocks the only batch thread)
  time.sleep(0.2)
  for i in range(3):
    submit('hostile')
    wait_queued(i + 1)
  with pytest.raises(batching.QueueFullError, match='client hostile has 3 requests waiting, '
                     'its share of the batching queue is 3 requests'):
    b.submit('s', {'x': np.zeros((1, 1))}, client='hostile', nbytes=10)
  with pytest.raises(batching.QueueFullError, match='bytes waiting, limit 1000 bytes'):
    b.submit('s', {'x': np.zeros((1, 1))}, client='good', nbytes=990)
  submit('good')
  wait_queued(4)
  release.set()
  for t in threads:
    t.join(10)
  assert b.rows_run == 5
  b.close()
