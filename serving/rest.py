"""The local server's REST front end: the subset of TF Serving's REST API the client uses.

  GET  /v1/models/<name>[/versions/<v>]             model status
  GET  /v1/models/<name>[/versions/<v>]/metadata    signature defs
  POST /v1/models/<name>[/versions/<v>]:predict     {"signature_name", "instances"|"inputs"}
  GET  /monitoring/prometheus/metrics               request counters

Forms follow TF Serving (tensorflow_serving/util/json_tensor.cc, model_servers/
http_rest_api_handler.cc): errors are `{"error": "<message>"}` with the HTTP status TF
Serving maps the gRPC code to (serving/errors.py); float outputs are written as their
shortest round-tripping decimal with ".0" on whole numbers, and NaN / Infinity /
-Infinity as those bare tokens (TF Serving's writer; not strict JSON, and Python's
json.loads reads them back); string outputs are text, or {"b64": ...} when the output's
name ends in "_bytes"; requests may hold NaN and Infinity too.

Hostile clients: a pool of `workers` threads serves the connections (a connection beyond
them gets 503 at once), each request must arrive within `timeout` seconds in all (headers
and body: a trickling client is cut off with 408), the body must have a Content-Length of
at most `max_request_bytes` (a missing one is an empty body; chunked, negative, non-numeric
or oversized lengths are refused, 411 / 400 / 413, without reading the body), and every
malformed body gets a 4xx with a JSON error; nothing closes a connection unanswered.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import http.server
import io
import json
import math
import re
import reprlib
import socket
import threading
import time
from typing import Any

from absl import logging
import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from serving import errors
from serving import limits as limits_lib
from serving import service as service_lib

ServiceError = errors.ServiceError
MAX_JSON_RANK = 32
_MODEL_PATH = re.compile(r'^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?'
                         r'(?P<rest>/metadata|:predict)?$', re.I)
_CHUNK = 1 << 16


# --------------------------------------------------------------------------- JSON values
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 4, 4, 40, 40


def _describe(value: Any) -> str:
  """A short rendering of a JSON value for error messages (bounded however big it is)."""
  return _REPR.repr(value)


def _dims(value: Any) -> list[int]:
  """The dense shape of a nested list, read along first elements (as TF Serving does)."""
  dims = []
  while isinstance(value, list):
    if len(dims) >= MAX_JSON_RANK:
      raise ServiceError('INVALID_ARGUMENT', f'JSON lists nested deeper than {MAX_JSON_RANK} '
                         'levels.')
    dims.append(len(value))
    value = value[0] if value else None
  return dims


def _leaf(value: Any, dtype: tf.dtypes.DType):
  """One JSON leaf as a value of `dtype`, or ServiceError naming it."""
  def type_error():
    return ServiceError('INVALID_ARGUMENT', f'JSON Value: {_describe(value)} is not of '
                        f'expected type: {dtype.name}')
  if dtype == tf.string:
    if isinstance(value, str):
      return value.encode('utf-8')
    if isinstance(value, dict) and set(value) == {'b64'} and isinstance(value['b64'], str):
      try:
        return base64.b64decode(value['b64'], validate=True)
      except (binascii.Error, ValueError):
        raise ServiceError('INVALID_ARGUMENT', 'Unable to base64 decode') from None
    raise type_error()
  if dtype == tf.bool:
    if not isinstance(value, bool):
      raise type_error()
    return value
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise type_error()
  if dtype.is_floating:
    if math.isfinite(value) and abs(value) > dtype.max:
      raise ServiceError('INVALID_ARGUMENT', f'Cannot convert JSON value: {value} to '
                         f'{dtype.name} without loss of precision.')
    return value
  if not isinstance(value, int):
    raise type_error()
  if not dtype.min <= value <= dtype.max:
    raise ServiceError('INVALID_ARGUMENT', f'JSON value {value} is outside the range '
                       f'[{dtype.min}, {dtype.max}] of {dtype.name}.')
  return value


def _flatten(value: Any, dims: list[int], level: int, dtype: tf.dtypes.DType, out: list):
  if not isinstance(value, list):
    if level != len(dims):
      raise ServiceError('INVALID_ARGUMENT', f'JSON Value: {_describe(value)} found at '
                         f'incorrect level: {level + 1} in the JSON DOM. Expected at level: '
                         f'{len(dims)}')
    out.append(_leaf(value, dtype))
    return
  if level >= len(dims) or len(value) != dims[level]:
    raise ServiceError('INVALID_ARGUMENT', f'Encountered list at unexpected size: '
                       f'{len(value)} at level: {level} expected size: '
                       f'{dims[level] if level < len(dims) else 0}')
  for v in value:
    _flatten(v, dims, level + 1, dtype, out)


def array_from_json(name: str, value: Any, dtype: tf.dtypes.DType,
                    limits: limits_lib.Limits) -> np.ndarray:
  """A dense JSON value (nested lists, {"b64": ...} for bytes) as an array of `dtype`; its
  shape is checked against `limits` before the array is built."""
  dims = _dims(value)
  limits_lib.check_dims(name, dims, limits)
  flat: list = []
  _flatten(value, dims, 0, dtype, flat)
  if dtype == tf.string:
    return np.array(flat, dtype=object).reshape(dims)
  return np.array(flat, dtype=dtype.as_numpy_dtype).reshape(dims)


def _inputs(body: dict, dtypes: dict[str, tf.dtypes.DType],
            limits: limits_lib.Limits) -> tuple[dict[str, np.ndarray], bool]:
  """(inputs, row_format) of a predict body in the "instances" or "inputs" format."""
  names = sorted(dtypes)
  if 'instances' in body and 'inputs' in body:
    raise ServiceError('INVALID_ARGUMENT', "Not formatted correctly expecting only one of "
                       "'inputs' or 'instances' keys to exist")
  if 'inputs' in body:
    cols = body['inputs']
    if not isinstance(cols, dict) or set(cols) == {'b64'}:  # the bare value of one input
      if len(names) != 1:
        raise ServiceError('INVALID_ARGUMENT', 'inputs is a plain value/list, but expecting '
                           f'an object as multiple input tensors {names} are required')
      cols = {names[0]: cols}
    missing = [n for n in names if n not in cols]
    if missing:
      raise ServiceError('INVALID_ARGUMENT', f'Missing named input: {missing[0]} in '
                         "'inputs' object.")
    unexpected = sorted(set(cols) - set(names))
    if unexpected:
      raise ServiceError('INVALID_ARGUMENT', f'unexpected input(s) {unexpected}; the '
                         f'signature takes {names}.')
    return {k: array_from_json(k, cols[k], dtypes[k], limits) for k in names}, False
  if 'instances' not in body:
    raise ServiceError('INVALID_ARGUMENT', "Missing 'inputs' or 'instances' key")
  rows = body['instances']
  if not isinstance(rows, list):
    raise ServiceError('INVALID_ARGUMENT', "Excepting 'instances' to be an list/array")
  if not rows:
    raise ServiceError('INVALID_ARGUMENT', "No values in 'instances' array")
  if len(rows) > limits.max_batch_rows:
    raise ServiceError('INVALID_ARGUMENT', f'{len(rows)} instances exceed the limit of '
                       f'{limits.max_batch_rows} rows per request (max_batch_rows).')
  named = isinstance(rows[0], dict) and not set(rows[0]) == {'b64'}
  if not named:
    if len(names) != 1:
      raise ServiceError('INVALID_ARGUMENT', 'instances is a plain list, but expecting list '
                         f'of objects as multiple input tensors {names} are required')
    return {names[0]: array_from_json(names[0], rows, dtypes[names[0]], limits)}, True
  for i, r in enumerate(rows):
    if not isinstance(r, dict) or set(r) != set(names):
      raise ServiceError('INVALID_ARGUMENT', f'Failed to process element: {i} of '
                         f"'instances' list. JSON object: {_describe(r)} keys must be equal "
                         f'to: {",".join(names)}')
  return {k: array_from_json(k, [r[k] for r in rows], dtypes[k], limits) for k in names}, True


def float_text(value: float, dtype=np.float32) -> str:
  """A float as TF Serving writes it: NaN, Infinity, -Infinity; else the 6-digit %g form
  when it round-trips in `dtype` (9 / 17 digits otherwise), ".0" added to whole numbers."""
  if math.isnan(value):
    return 'NaN'
  if math.isinf(value):
    return '-Infinity' if value < 0 else 'Infinity'
  text = '%g' % value
  if dtype(float(text)) != dtype(value):
    text = '%.*g' % (9 if dtype == np.float32 else 17, value)
  if '.' not in text and 'e' not in text:
    text += '.0'
  return text


def _write(value: Any, out: list, as_bytes: bool = False) -> None:
  if isinstance(value, np.ndarray):
    if value.ndim == 0:
      _write(value[()], out, as_bytes)
    else:
      _write_list(value, out, as_bytes)
  elif isinstance(value, dict):
    out.append('{')
    for i, (k, v) in enumerate(value.items()):
      out.append((',' if i else '') + json.dumps(str(k)) + ':')
      _write(v, out, str(k).endswith('_bytes'))
    out.append('}')
  elif isinstance(value, (list, tuple)):
    _write_list(value, out, as_bytes)
  elif isinstance(value, (bytes, np.bytes_)):
    out.append(json.dumps({'b64': base64.b64encode(value).decode()}) if as_bytes
               else json.dumps(bytes(value).decode('utf-8', 'replace')))
  elif isinstance(value, (bool, np.bool_)):
    out.append('true' if value else 'false')
  elif isinstance(value, (np.floating, float)):
    out.append(float_text(float(value), np.float64 if isinstance(value, (float, np.float64))
                          else np.float32))
  elif isinstance(value, (np.integer, int)):
    out.append(str(int(value)))
  else:
    out.append(json.dumps(value))


def _write_list(values, out: list, as_bytes: bool) -> None:
  out.append('[')
  for i, v in enumerate(values):
    if i:
      out.append(',')
    _write(v, out, as_bytes)
  out.append(']')


def response_json(outputs: dict[str, np.ndarray], row_format: bool) -> str:
  """The predict response body: {"predictions": [...]} (row) or {"outputs": ...}; a
  signature with one output gets its bare values, as TF Serving writes them."""
  names = sorted(outputs)
  if row_format:
    n = outputs[names[0]].shape[0]
    rows = [({k: outputs[k][i] for k in names} if len(names) > 1 else outputs[names[0]][i])
            for i in range(n)]
    body: dict = {'predictions': rows}
  else:
    body = {'outputs': {k: outputs[k] for k in names} if len(names) > 1
            else outputs[names[0]]}
  out: list = []
  _write(body, out, len(names) == 1 and names[0].endswith('_bytes'))
  return ''.join(out)


# ------------------------------------------------------------------------------- serving
class _Refused(Exception):
  """A request refused at the HTTP layer: (status, message, whether to close)."""

  def __init__(self, status: int, message: str, close: bool = True):
    super().__init__(message)
    self.status, self.message, self.close = status, message, close


class _DeadlineSocketReader(io.RawIOBase):
  """Socket reads that fail once the handler's request deadline has passed."""

  def __init__(self, sock: socket.socket, handler):
    self._sock, self._handler = sock, handler
    self.received = 0      # bytes since the handler's deadline was set
    self.timed_out = False

  def readable(self) -> bool:
    return True

  def readinto(self, buffer) -> int:
    remaining = self._handler.deadline - time.monotonic()
    try:
      if remaining <= 0:
        raise TimeoutError('request deadline passed')
      self._sock.settimeout(remaining)
      n = self._sock.recv_into(buffer)
    except TimeoutError:
      self.timed_out = True
      raise
    self.received += n
    return n


def prometheus_text(service: service_lib.ModelService) -> str:
  """Request counts per signature and status, in the Prometheus text format."""
  lines = ['# TYPE polyvit_local_server_request_count counter']
  with service.stats.lock:
    for (signature, code), n in sorted(service.stats.requests.items()):
      lines.append(f'polyvit_local_server_request_count{{model_name="{service.model_name}",'
                   f'signature_name="{signature}",status="{code}"}} {n}')
    lines.append('# TYPE polyvit_local_server_request_latency_seconds_sum counter')
    lines.append(f'polyvit_local_server_request_latency_seconds_sum '
                 f'{service.stats.latency_seconds:.6f}')
  return '\n'.join(lines) + '\n'


def make_handler(service: service_lib.ModelService, timeout: float):
  """A BaseHTTPRequestHandler class serving `service`; `timeout` seconds per request."""

  class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    default_request_version = 'HTTP/1.1'  # errors on unparsable request lines get headers too
    deadline = 0.0

    def setup(self):
      super().setup()
      self.rfile.close()
      self.rfile = io.BufferedReader(_DeadlineSocketReader(self.connection, self))

    def handle_one_request(self):
      self.deadline = time.monotonic() + timeout
      reader = self.rfile.raw
      reader.received, reader.timed_out, self._responded = 0, False, False
      super().handle_one_request()  # a timeout in there closes the connection
      if reader.timed_out and reader.received and not self._responded:
        self.close_connection = True  # a partial request: say why it is dropped
        self.command = getattr(self, 'command', None) or 'POST'
        self.request_version = 'HTTP/1.1'
        self.requestline = getattr(self, 'requestline', '')
        self._try_send(408, {'error': self._late()})

    def _late(self) -> str:
      return f'request not received within {timeout:g} s (rest_timeout_seconds).'

    def log_message(self, fmt, *args):  # quiet; absl logs instead
      logging.debug('rest: ' + fmt, *args)

    def send_error(self, code, message=None, explain=None):
      """Every error BaseHTTPRequestHandler raises itself (bad request line, headers too
      long, unsupported method) as a JSON error, like the others."""
      self.close_connection = True
      self._send(code, {'error': message or explain or self.responses.get(code, ('',))[0]})

    def _send(self, status: int, payload: Any, content_type: str = 'application/json'):
      self._responded = True
      self.connection.settimeout(timeout)
      if isinstance(payload, str):
        data = payload.encode('utf-8')
      else:
        data = json.dumps(payload).encode('utf-8')
      self.send_response(status)
      self.send_header('Content-Type', content_type)
      self.send_header('Content-Length', str(len(data)))
      if self.close_connection:
        self.send_header('Connection', 'close')
      self.end_headers()
      if self.command != 'HEAD':
        self.wfile.write(data)

    def _try_send(self, status: int, payload: Any):
      try:
        self._send(status, payload)
        self.wfile.flush()
      except OSError:
        pass

    def _error(self, e: ServiceError):
      self._send(errors.HTTP_STATUS.get(e.code, 500), {'error': e.message})

    def _route(self) -> str:
      path = self.path.split('?', 1)[0]
      match = _MODEL_PATH.match(path)
      if not match:
        raise ServiceError('NOT_FOUND' if not path.lower().startswith('/v1/')
                           else 'INVALID_ARGUMENT',
                           f'Malformed request: {self.command} {path}')
      version = int(match['version']) if match['version'] else None
      service.check_model(match['name'], version)
      return (match['rest'] or '').lower()

    def _body(self) -> bytes:
      if self.headers.get('Transfer-Encoding'):
        raise _Refused(411, 'Transfer-Encoding is not accepted; send the body with a '
                            'Content-Length.')
      values = self.headers.get_all('Content-Length') or []
      if not values:
        return b''
      if len(set(values)) != 1 or not re.fullmatch(r'[0-9]{1,19}', values[0]):
        raise _Refused(400, f'bad Content-Length {", ".join(values)!r}: expected one '
                            'non-negative decimal number of bytes.')
      length = int(values[0])
      if length > service.max_request_bytes:
        raise _Refused(413, f'request body of {length} bytes exceeds the server limit of '
                            f'{service.max_request_bytes} bytes (max_request_bytes).')
      chunks, have = [], 0
      while have < length:
        try:
          chunk = self.rfile.read1(min(_CHUNK, length - have))
        except TimeoutError:
          raise _Refused(408, self._late() + f' ({have} of {length} body bytes came)') from None
        if not chunk:
          raise _Refused(400, f'body ended after {have} of the {length} bytes of its '
                              'Content-Length.')
        chunks.append(chunk)
        have += len(chunk)
      return b''.join(chunks)

    def do_GET(self):  # noqa: N802
      if self.path.split('?', 1)[0] == '/monitoring/prometheus/metrics':
        self._send(200, prometheus_text(service), 'text/plain; version=0.0.4')
        return
      try:
        self._body()  # a GET may carry a body: consume it (or refuse it) like any other
        rest = self._route()
        if rest == '':
          self._send(200, {'model_version_status': [{
              'version': str(service.version), 'state': 'AVAILABLE',
              'status': {'error_code': 'OK', 'error_message': ''}}]})
        elif rest == '/metadata':
          self._send(200, json_format.MessageToDict(service_lib.metadata_response(service),
                                                    preserving_proto_field_name=True))
        else:
          raise ServiceError('INVALID_ARGUMENT', f'Malformed request: GET {self.path}')
      except _Refused as e:
        self.close_connection = e.close
        self._send(e.status, {'error': e.message})
      except ServiceError as e:
        self._error(e)

    def do_POST(self):  # noqa: N802
      try:
        body_bytes = self._body()
        if self._route() != ':predict':
          raise ServiceError('INVALID_ARGUMENT', f'Malformed request: POST {self.path}')
        outputs, row_format = _predict(body_bytes, self.client_address)
        self._send(200, response_json(outputs, row_format))
      except _Refused as e:
        self.close_connection = e.close
        self._send(e.status, {'error': e.message})
      except ServiceError as e:
        self._error(e)

    def _malformed(self):
      try:
        self._body()
        raise ServiceError('INVALID_ARGUMENT', f'Malformed request: {self.command} '
                           f'{self.path}')
      except _Refused as e:
        self.close_connection = e.close
        self._send(e.status, {'error': e.message})
      except ServiceError as e:
        self._error(e)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _malformed  # noqa: N815

    def do_HEAD(self):  # noqa: N802
      self._malformed()

  def _predict(body_bytes: bytes, address) -> tuple[dict[str, np.ndarray], bool]:
    if not body_bytes.strip():
      raise ServiceError('INVALID_ARGUMENT', 'JSON Parse error: The document is empty')
    try:
      body = json.loads(body_bytes.decode('utf-8'))
    except UnicodeDecodeError as e:
      raise ServiceError('INVALID_ARGUMENT', f'JSON Parse error: the body is not UTF-8 '
                         f'({e.reason} at offset {e.start})') from None
    except json.JSONDecodeError as e:
      raise ServiceError('INVALID_ARGUMENT', f'JSON Parse error: {e.msg} at offset '
                         f'{e.pos}') from None
    except RecursionError:
      raise ServiceError('INVALID_ARGUMENT', 'JSON Parse error: nested too deeply') from None
    if not isinstance(body, dict):
      raise ServiceError('INVALID_ARGUMENT', f'JSON Value: {_describe(body)} Is not object')
    signature = body.get('signature_name', '')
    if not isinstance(signature, str):
      raise ServiceError('INVALID_ARGUMENT', f'JSON Value: {_describe(signature)} not '
                         "formatted correctly. 'signature_name' key must be a string value.")
    signature = signature or 'serving_default'
    if signature not in service.signature_defs:
      raise ServiceError('INVALID_ARGUMENT', f'Serving signature name: "{signature}" not '
                         'found in signature def')
    inputs, row_format = _inputs(body, service.input_dtypes(signature), service.limits)
    outputs = service.predict(signature, inputs, request_bytes=len(body_bytes),
                              client=f'{address[0]}:{address[1]}')
    return outputs, row_format

  return Handler


class BoundedHTTPServer(http.server.HTTPServer):
  """An HTTP server whose connections are served by a fixed pool of `workers` threads; a
  connection arriving when all are busy is answered 503 at once and closed."""

  daemon_threads = True

  def __init__(self, address, handler, *, workers: int):
    super().__init__(address, handler)
    self.workers = int(workers)
    self._slots = threading.BoundedSemaphore(self.workers)
    self._pool = concurrent.futures.ThreadPoolExecutor(self.workers,
                                                       thread_name_prefix='rest')

  def process_request(self, request, client_address):
    if not self._slots.acquire(blocking=False):
      body = json.dumps({'error': f'server busy: all {self.workers} REST workers are in use '
                                  '(rest_workers); retry later.'}).encode()
      try:
        request.settimeout(1.0)
        request.sendall(b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json'
                        b'\r\nConnection: close\r\nContent-Length: %d\r\n\r\n' % len(body)
                        + body)
      except OSError:
        pass
      self.shutdown_request(request)
      return
    self._pool.submit(self._serve, request, client_address)

  def _serve(self, request, client_address):
    try:
      self.finish_request(request, client_address)
    except Exception:  # pylint: disable=broad-except
      self.handle_error(request, client_address)
    finally:
      self.shutdown_request(request)
      self._slots.release()

  def server_close(self):
    super().server_close()
    self._pool.shutdown(wait=False, cancel_futures=True)
