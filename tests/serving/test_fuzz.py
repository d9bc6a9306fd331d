"""Fuzz suite: hostile requests against `python -m serving.local_server` run as a subprocess.

The server (batching on, the session's tiny exported model, loopback only) gets every case
of issue 12 and more (tests/serving/hostile.py: >= 150 malformed requests over gRPC and
REST, a fixed list, each with the status it must get), with good requests interleaved;
then a hostile client and a good client at once. Asserted: the server never dies, every
case gets its status, every good request succeeds, the server's peak RSS (VmHWM of
/proc/<pid>/status, model load included) stays under RSS_BOUND_BYTES, and the good client
succeeds >= 99 % of the time. The tally, the peak RSS and the fairness figure are printed.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import portpicker
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.export import fixtures
from tests.serving import hostile

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_REQUEST_BYTES = 4 << 20
REST_TIMEOUT_SECONDS = 2.0
REST_WORKERS = 6
# The bound on the server's peak RSS: TF and the tiny model take about 0.7-0.9 GB; each bomb
# of issue 12 alone took 3.6-8 GB before the limits.
RSS_BOUND_BYTES = 2 << 30
GOOD_SUCCESS_RATE = 0.99


class RssMonitor(threading.Thread):
  """Polls VmHWM / VmRSS of a process every 20 ms; `peak` is the largest seen (bytes)."""

  def __init__(self, pid: int):
    super().__init__(daemon=True)
    self.pid, self.peak, self._done = pid, 0, threading.Event()

  def read(self) -> int:
    try:
      with open(f'/proc/{self.pid}/status') as f:
        fields = dict(line.split(':', 1) for line in f if ':' in line)
    except OSError:
      return self.peak
    return max(int(fields[k].split()[0]) * 1024 for k in ('VmHWM', 'VmRSS') if k in fields)

  def run(self):
    while not self._done.wait(0.02):
      self.peak = max(self.peak, self.read())

  def stop(self) -> int:
    self._done.set()
    self.join()
    self.peak = max(self.peak, self.read())
    return self.peak


@pytest.fixture(scope='module')
def server(exported_base, tmp_path_factory):
  grpc_port, rest_port = portpicker.pick_unused_port(), portpicker.pick_unused_port()
  logs = tmp_path_factory.mktemp('fuzz_server')
  out, err = open(logs / 'stdout', 'w+'), open(logs / 'stderr', 'w+')
  cmd = [sys.executable, '-m', 'serving.local_server', f'--model_dir={exported_base}',
         f'--port={grpc_port}', f'--rest_port={rest_port}', '--enable_batching',
         f'--batching_parameters_file={ROOT}/serving/batching_parameters.txt',
         f'--max_request_bytes={MAX_REQUEST_BYTES}', f'--rest_workers={REST_WORKERS}',
         f'--rest_timeout_seconds={REST_TIMEOUT_SECONDS}']
  env = {**os.environ, 'PYTHONPATH': ROOT, 'TF_CPP_MIN_LOG_LEVEL': '2'}
  proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
  deadline = time.time() + 600
  while 'serving polyvit' not in (logs / 'stdout').read_text():
    if proc.poll() is not None or time.time() > deadline:
      proc.kill()
      pytest.fail(f'local server did not start: {(logs / "stderr").read_text()[-3000:]}')
    time.sleep(0.2)
  monitor = RssMonitor(proc.pid)
  monitor.start()
  channel = grpc.insecure_channel(f'127.0.0.1:{grpc_port}', options=[
      ('grpc.max_send_message_length', 64 << 20)])
  yield dict(proc=proc, grpc_port=grpc_port, rest_port=rest_port, monitor=monitor,
             stub=prediction_service_pb2_grpc.PredictionServiceStub(channel), logs=logs)
  channel.close()
  monitor.stop()
  proc.terminate()
  try:
    proc.wait(30)
  except subprocess.TimeoutExpired:
    proc.kill()
  out.close()
  err.close()


def _good_requests():
  """(name, send) pairs of valid requests over both transports; send returns an error
  string or ''."""
  wav = hostile.strings(fixtures.wav_bytes(3, seconds=0.5))
  jpeg = fixtures.image_bytes(4)
  frames = fixtures.jpeg_frames(fixtures.video_frames(5, num_frames=6))

  def grpc_call(signature, **inputs):
    def send(srv):
      code, message = hostile.send_grpc(srv['stub'], hostile.request(signature, **inputs))
      return '' if code == 'OK' else f'{code}: {message}'
    return send

  def rest_call(body, check=None):
    def send(srv):
      status, text = hostile.send_rest(srv['rest_port'], hostile.predict_body(body))
      if status != 200:
        return f'HTTP {status}: {text[:300]}'
      return check(text) if check else ''
    return send

  def has_nan(text):  # NaN outputs written as TF Serving writes them, and readable back
    outputs = json.loads(text)['outputs']
    return '' if '"logits":[[NaN' in text and np.isnan(outputs['logits'][0][0]) else (
        f'NaN not serialised as TF Serving does: {text[:200]}')

  return [
      ('grpc image_a tensor', grpc_call('image_a', image=hostile.IMAGE)),
      ('grpc audio_a_raw WAV', grpc_call('audio_a_raw', wav=wav)),
      ('rest image_a_raw JPEG', rest_call({'signature_name': 'image_a_raw',
                                           'inputs': [hostile.b64(jpeg)]})),
      ('grpc video_a_frames uint8', grpc_call(
          'video_a_frames', frames=fixtures.video_frames(6, num_frames=5)[None])),
      ('rest video_a_raw frames', rest_call({'signature_name': 'video_a_raw',
                                             'instances': [[hostile.b64(f) for f in frames]]})),
      ('rest NaN input, NaN output', rest_call(
          {'signature_name': 'image_b', 'inputs': np.where(
              np.arange(3072).reshape(1, 32, 32, 3) == 0, np.nan, 0.0).tolist()}, has_nan)),
      ('grpc image_b_raw PNG', grpc_call('image_b_raw', encoded=hostile.strings(
          fixtures.image_bytes(7, fmt='png')))),
  ]


def _run_case(srv, case) -> tuple[bool, str]:
  name, transport, payload, expected = case
  if transport == 'grpc':
    code, message = hostile.send_grpc(srv['stub'], payload)
  else:
    code, message = hostile.send_rest(srv['rest_port'], payload)
  ok = code in expected
  if ok and transport == 'rest' and code >= 400:
    try:
      message = json.loads(message).get('error', '')  # TF Serving's REST error form
    except (ValueError, AttributeError):
      return False, f'{code}: not a JSON error: {message[:200]}'
  # The reason reaches the caller whole, not TF's "Graph execution error" wrapper.
  ok = ok and bool(message.strip()) and not any(
      noise in message for noise in ('Graph execution error', '{{node', 'Detected at node'))
  return ok, f'{code}: {message[:240]}'


def _saturate_rest(srv) -> tuple[bool, str]:
  """REST_WORKERS idle connections take every REST worker; the next gets 503 at once."""
  held = [socket.create_connection(('127.0.0.1', srv['rest_port'])) for _ in range(REST_WORKERS)]
  time.sleep(0.3)
  try:
    status, body = hostile.send_rest(srv['rest_port'], hostile.http('GET', '/v1/models/polyvit'),
                                     timeout=5)
  finally:
    for s in held:
      s.close()
  return status == 503 and 'error' in json.loads(body), f'{status}: {body[:200]}'


def test_fuzz_server_never_dies(server, capsys):
  srv = server
  cases = (hostile.grpc_cases(MAX_REQUEST_BYTES) + hostile.rest_cases(MAX_REQUEST_BYTES))
  order = np.random.default_rng(12).permutation(len(cases))
  goods = _good_requests()
  start = time.time()
  wrong, good_failures, tried, good_sent, crashed = [], [], 0, 0, False

  slow = hostile.slow_rest_cases()  # each waits for the REST deadline: run them together
  slow_results: dict = {}
  slow_threads = [threading.Thread(target=lambda c=c: slow_results.__setitem__(
      c[0], _run_case(srv, c))) for c in slow]
  for t in slow_threads:
    t.start()

  for i, index in enumerate(order):
    ok, got = _run_case(srv, cases[index])
    tried += 1
    if not ok:
      wrong.append((cases[index][0], cases[index][1], sorted(cases[index][3]), got))
    if srv['proc'].poll() is not None:
      crashed = True
      break
    if i % 4 == 3:
      name, send = goods[good_sent % len(goods)]
      error = send(srv)
      good_sent += 1
      if error:
        good_failures.append((name, error))
  for t in slow_threads:
    t.join()
  for name, (ok, got) in slow_results.items():
    tried += 1
    if not ok:
      wrong.append((name, 'rest', [408], got))
  ok, got = _saturate_rest(srv)
  tried += 1
  if not ok:
    wrong.append(('all REST workers busy', 'rest', [503], got))
  for name, send in goods:  # the server still serves everything after the storm
    error = send(srv)
    good_sent += 1
    if error:
      good_failures.append((name, error))
  crashed = crashed or srv['proc'].poll() is not None
  peak = srv['monitor'].read()
  by_transport = collections.Counter(c[1] for c in cases)
  with capsys.disabled():
    print(f'\n  fuzz: {tried} hostile requests tried ({by_transport["grpc"]} gRPC, '
          f'{by_transport["rest"] + len(slow) + 1} REST), {tried - len(wrong)} answered with '
          f'the right status, {len(wrong)} wrong, crashed: {crashed}; {good_sent} good '
          f'requests interleaved, {len(good_failures)} failed; server peak RSS '
          f'{peak / 2**20:.0f} MiB (bound {RSS_BOUND_BYTES / 2**20:.0f} MiB); '
          f'{time.time() - start:.1f} s')
    for w in wrong + good_failures:
      print('   ', w)
  assert not crashed, (srv['logs'] / 'stderr').read_text()[-3000:]
  assert tried >= 150
  assert not wrong
  assert not good_failures
  assert peak < RSS_BOUND_BYTES


def test_hostile_client_does_not_starve_a_good_one(server, capsys):
  """One client floods the server (heavy valid batches, broadcast shapes, bombs) from 12
  threads on one connection; another sends single requests: >= 99 % of them succeed."""
  srv = server
  address = f'127.0.0.1:{srv["grpc_port"]}'
  heavy = hostile.request('image_a', image=np.random.default_rng(0).uniform(
      -1, 1, (256, 32, 32, 3)).astype(np.float32))
  attacks = [heavy, heavy, hostile.grpc_cases(MAX_REQUEST_BYTES)[4][2],
             hostile.request('image_a_raw', encoded=hostile.strings(
                 hostile.png_with_size(20_000, 20_000))),
             hostile.request('audio_a_raw', wav=hostile.strings(hostile.wav(1, 44_100)))]
  stop = threading.Event()
  hostile_codes = collections.Counter()
  lock = threading.Lock()
  bad_channel = grpc.insecure_channel(address, options=[
      ('grpc.max_send_message_length', 64 << 20)])
  bad_stub = prediction_service_pb2_grpc.PredictionServiceStub(bad_channel)

  def flood(k):
    i = k
    while not stop.is_set():
      code, _ = hostile.send_grpc(bad_stub, attacks[i % len(attacks)])
      with lock:
        hostile_codes[code] += 1
      i += 1

  threads = [threading.Thread(target=flood, args=(k,), daemon=True) for k in range(12)]
  for t in threads:
    t.start()
  time.sleep(1.0)
  good_channel = grpc.insecure_channel(address)
  good_stub = prediction_service_pb2_grpc.PredictionServiceStub(good_channel)
  good = [hostile.request('image_b', image=hostile.IMAGE),
          hostile.request('image_a_raw', encoded=hostile.strings(fixtures.image_bytes(1)))]
  n, codes, latencies = 100, collections.Counter(), []
  for i in range(n):
    t0 = time.perf_counter()
    code, message = hostile.send_grpc(good_stub, good[i % 2], timeout=60)
    latencies.append(time.perf_counter() - t0)
    codes['OK' if code == 'OK' else f'{code}: {message[:120]}'] += 1
  stop.set()
  for t in threads:
    t.join(60)
  good_channel.close()
  bad_channel.close()
  rate = codes['OK'] / n
  with capsys.disabled():
    print(f'\n  fairness: good client {codes["OK"]}/{n} OK ({100 * rate:.1f} %), latency p50 '
          f'{1e3 * np.percentile(latencies, 50):.0f} ms p99 '
          f'{1e3 * np.percentile(latencies, 99):.0f} ms; hostile client (12 threads, one '
          f'connection) {sum(hostile_codes.values())} requests: {dict(hostile_codes)}; '
          f'server peak RSS {srv["monitor"].read() / 2**20:.0f} MiB')
    for c in codes:
      if c != 'OK':
        print('   ', c)
  assert srv['proc'].poll() is None
  assert rate >= GOOD_SUCCESS_RATE
  assert srv['monitor'].read() < RSS_BOUND_BYTES
