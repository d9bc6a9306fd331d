r"""A local stand-in for TF Serving: PredictionService (Predict, GetModelMetadata) over gRPC.

  python -m serving.local_server --model_dir=<models>/polyvit --port=8500 \
      [--rest_port=8501] [--enable_batching \
       --batching_parameters_file=serving/batching_parameters.txt]

It serves the latest version under --model_dir with the tensorflow_serving.apis protocol, so
serving/client.py (and any TF Serving client) works against it unchanged. It is NOT the TF
Serving binary (which cannot be installed on our machines): one model, no version policy or
hot reload, Predict and GetModelMetadata only (Classify, Regress, MultiInference answer
UNIMPLEMENTED), Python-level batching. Bound to 127.0.0.1 unless --host says otherwise.

The optional REST port speaks the subset of TF Serving's REST API the client uses:
  GET  /v1/models/<name>[/versions/<v>]             model status
  GET  /v1/models/<name>[/versions/<v>]/metadata    signature defs
  POST /v1/models/<name>[/versions/<v>]:predict     {"signature_name", "instances"|"inputs"}
  GET  /monitoring/prometheus/metrics               request counters
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.server
import json
import re
import threading
from typing import Any

from absl import app
from absl import flags
from absl import logging
import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import batching
from serving import service as service_lib

# The gRPC transport limit sits above the service's own limit, so that an oversized request
# reaches the service and gets an INVALID_ARGUMENT naming the sizes.
_TRANSPORT_SLACK_BYTES = 16 << 20


def _abort(context: grpc.ServicerContext, error: service_lib.ServiceError):
  context.abort(getattr(grpc.StatusCode, error.code), error.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict and GetModelMetadata of tensorflow.serving.PredictionService."""

  def __init__(self, service: service_lib.ModelService):
    self.service = service

  def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
    spec = request.model_spec
    try:
      self.service.check_model(spec.name, spec.version.value if spec.HasField('version')
                               else None)
      signature = spec.signature_name or 'serving_default'
      sig = self.service.signature_def(signature)
      inputs = {}
      for name, proto in request.inputs.items():
        if name in sig.inputs and proto.dtype != sig.inputs[name].dtype:
          want = tf.dtypes.as_dtype(sig.inputs[name].dtype).name
          raise service_lib.ServiceError(
              'INVALID_ARGUMENT', f'signature {signature!r} input {name!r}: expects {want}, '
              f'got {tf.dtypes.as_dtype(proto.dtype).name}.')
        try:
          inputs[name] = tf.make_ndarray(proto)
        except Exception as e:  # pylint: disable=broad-except
          raise service_lib.ServiceError(
              'INVALID_ARGUMENT', f'input {name!r}: malformed TensorProto ({e}).') from e
      outputs = self.service.predict(signature, inputs,
                                     output_filter=list(request.output_filter),
                                     request_bytes=request.ByteSize())
    except service_lib.ServiceError as e:
      _abort(context, e)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = self.service.model_name
    response.model_spec.version.value = self.service.version
    response.model_spec.signature_name = signature
    for name, value in outputs.items():
      response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return response

  def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest,
                       context) -> get_model_metadata_pb2.GetModelMetadataResponse:
    spec = request.model_spec
    try:
      self.service.check_model(spec.name, spec.version.value if spec.HasField('version')
                               else None)
      fields = list(request.metadata_field)
      if fields != ['signature_def']:
        raise service_lib.ServiceError(
            'INVALID_ARGUMENT', f'metadata_field must be ["signature_def"], got {fields}.')
    except service_lib.ServiceError as e:
      _abort(context, e)
    return metadata_response(self.service)


def metadata_response(service: service_lib.ModelService
                      ) -> get_model_metadata_pb2.GetModelMetadataResponse:
  response = get_model_metadata_pb2.GetModelMetadataResponse()
  response.model_spec.name = service.model_name
  response.model_spec.version.value = service.version
  defs = get_model_metadata_pb2.SignatureDefMap()
  for name, sig in service.signature_defs.items():
    defs.signature_def[name].CopyFrom(sig)
  response.metadata['signature_def'].Pack(defs)
  return response


# ------------------------------------------------------------------------------------ REST
_HTTP_STATUS = {'OK': 200, 'INVALID_ARGUMENT': 400, 'NOT_FOUND': 404, 'UNAVAILABLE': 503,
                'INTERNAL': 500}
_MODEL_PATH = re.compile(r'^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?'
                         r'(?P<rest>/metadata|:predict)?$')


def _from_json(value: Any, dtype: tf.dtypes.DType) -> np.ndarray:
  """A JSON value (nested lists; {"b64": ...} for bytes) as an array of the signature dtype."""
  if dtype == tf.string:
    def decode(v):
      if isinstance(v, list):
        return [decode(u) for u in v]
      if isinstance(v, dict) and set(v) == {'b64'}:
        return base64.b64decode(v['b64'])
      if isinstance(v, str):
        return v.encode('utf-8')
      raise ValueError(f'expected a string or {{"b64": ...}}, got {type(v).__name__}')
    return np.array(decode(value), dtype=object)
  return np.asarray(value, dtype=dtype.as_numpy_dtype)


def _to_json(value: np.ndarray) -> Any:
  if value.dtype.kind in 'OS':
    return np.vectorize(lambda b: b.decode('utf-8', 'replace'), otypes=[object])(value).tolist() \
        if value.size else value.tolist()
  return value.tolist()


def _check_names(given, names: list[str]) -> None:
  unexpected = sorted(set(given) - set(names))
  if unexpected:
    raise service_lib.ServiceError('INVALID_ARGUMENT', f'unexpected input(s) {unexpected}; '
                                   f'the signature takes {names}.')


def _rest_inputs(body: dict, sig) -> tuple[dict[str, np.ndarray], bool]:
  """(inputs, row_format) of a predict body in the "instances" or "inputs" format."""
  names = list(sig.inputs)
  dtypes = {n: tf.dtypes.as_dtype(sig.inputs[n].dtype) for n in names}
  if ('instances' in body) == ('inputs' in body):
    raise service_lib.ServiceError('INVALID_ARGUMENT', 'the body needs exactly one of '
                                   '"instances" (row format) or "inputs" (columnar format).')
  try:
    if 'inputs' in body:
      cols = body['inputs']
      if not isinstance(cols, dict) or set(cols) == {'b64'}:  # the bare value of one input
        if len(names) != 1:
          raise ValueError(f'"inputs" must be an object keyed by the inputs {names}')
        cols = {names[0]: cols}
      _check_names(cols, names)
      return {k: _from_json(v, dtypes[k]) for k, v in cols.items()}, False
    rows = body['instances']
    if not isinstance(rows, list):
      raise ValueError('"instances" must be a list')
    if rows and all(isinstance(r, dict) and 'b64' not in r for r in rows):
      keys = set().union(*rows)
      _check_names(keys, names)
      return {k: _from_json([r.get(k) for r in rows], dtypes[k]) for k in keys}, True
    if len(names) != 1:
      raise ValueError(f'the signature takes several inputs {names}; send objects per instance')
    return {names[0]: _from_json(rows, dtypes[names[0]])}, True
  except (ValueError, TypeError) as e:
    raise service_lib.ServiceError('INVALID_ARGUMENT', f'malformed JSON inputs: {e}.') from e


def make_rest_handler(service: service_lib.ModelService):
  """An http.server handler class bound to `service`."""

  class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):  # quiet; absl logs instead
      logging.debug('rest: ' + fmt, *args)

    def _send(self, status: int, payload: Any, content_type: str = 'application/json'):
      data = (json.dumps(payload) if content_type == 'application/json' else payload).encode()
      self.send_response(status)
      self.send_header('Content-Type', content_type)
      self.send_header('Content-Length', str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def _error(self, e: service_lib.ServiceError):
      self._send(_HTTP_STATUS.get(e.code, 500), {'error': e.message})

    def _route(self):
      match = _MODEL_PATH.match(self.path)
      if not match:
        raise service_lib.ServiceError('NOT_FOUND', f'no such path {self.path!r}.')
      version = int(match['version']) if match['version'] else None
      service.check_model(match['name'], version)
      return match['rest'] or ''

    def do_GET(self):  # noqa: N802
      if self.path == '/monitoring/prometheus/metrics':
        self._send(200, prometheus_text(service), 'text/plain; version=0.0.4')
        return
      try:
        rest = self._route()
        if rest == '':
          self._send(200, {'model_version_status': [{
              'version': str(service.version), 'state': 'AVAILABLE',
              'status': {'error_code': 'OK', 'error_message': ''}}]})
        elif rest == '/metadata':
          self._send(200, json_format.MessageToDict(metadata_response(service),
                                                  preserving_proto_field_name=True))
        else:
          raise service_lib.ServiceError('NOT_FOUND', f'GET {self.path}: use POST to predict.')
      except service_lib.ServiceError as e:
        self._error(e)

    def do_POST(self):  # noqa: N802
      try:
        length = int(self.headers.get('Content-Length', 0))
        if length > service.max_request_bytes:
          self.rfile.read(length)
          raise service_lib.ServiceError(
              'INVALID_ARGUMENT', f'request of {length} bytes exceeds the server limit of '
              f'{service.max_request_bytes} bytes (max_request_bytes).')
        body_bytes = self.rfile.read(length)
        if self._route() != ':predict':
          raise service_lib.ServiceError('NOT_FOUND', f'POST {self.path}: not a :predict URL.')
        try:
          body = json.loads(body_bytes or b'{}')
        except json.JSONDecodeError as e:
          raise service_lib.ServiceError('INVALID_ARGUMENT', f'body is not JSON: {e}.') from e
        signature = body.get('signature_name') or 'serving_default'
        sig = service.signature_def(signature)
        inputs, rows = _rest_inputs(body, sig)
        outputs = service.predict(signature, inputs, request_bytes=length)
        if rows:
          n = next(iter(outputs.values())).shape[0]
          predictions = [{k: _to_json(v[i]) for k, v in outputs.items()} for i in range(n)]
          self._send(200, {'predictions': predictions})
        else:
          self._send(200, {'outputs': {k: _to_json(v) for k, v in outputs.items()}})
      except service_lib.ServiceError as e:
        self._error(e)

  return Handler


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


# ---------------------------------------------------------------------------------- server
class LocalServer:
  """gRPC (and optionally REST) front ends over one ModelService."""

  def __init__(self, model_dir: str, *, model_name: str = 'polyvit', host: str = '127.0.0.1',
               port: int = 0, rest_port: int | None = None,
               batching_parameters: batching.BatchingParameters | None = None,
               max_request_bytes: int = service_lib.DEFAULT_MAX_REQUEST_BYTES,
               max_workers: int = 16, warmup: bool = True):
    self.service = service_lib.ModelService(
        model_dir, model_name=model_name, batching_parameters=batching_parameters,
        max_request_bytes=max_request_bytes, warmup=warmup)
    limit = max_request_bytes + _TRANSPORT_SLACK_BYTES
    self._grpc = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix='grpc'),
        options=[('grpc.max_receive_message_length', limit),
                 ('grpc.max_send_message_length', limit)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(self.service), self._grpc)
    self.host = host
    self.port = self._grpc.add_insecure_port(f'{host}:{port}')
    if self.port == 0:
      raise OSError(f'could not bind gRPC to {host}:{port}.')
    self._http = None
    self.rest_port = None
    if rest_port is not None:
      self._http = http.server.ThreadingHTTPServer((host, rest_port),
                                                   make_rest_handler(self.service))
      self._http.daemon_threads = True
      self.rest_port = self._http.server_address[1]

  def start(self) -> 'LocalServer':
    self._grpc.start()
    if self._http:
      threading.Thread(target=self._http.serve_forever, name='rest', daemon=True).start()
    return self

  def stop(self) -> None:
    if self._http:
      self._http.shutdown()
      self._http.server_close()
    self._grpc.stop(grace=1.0).wait()
    self.service.close()

  def wait(self) -> None:
    self._grpc.wait_for_termination()

  def __enter__(self) -> 'LocalServer':
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()


def _define_flags() -> None:
  flags.DEFINE_string('model_dir', None, 'Exported model: base dir with numeric versions (the '
                      'latest is served) or one version dir.')
  flags.DEFINE_string('model_name', 'polyvit', 'Name clients put in model_spec.')
  flags.DEFINE_string('host', '127.0.0.1', 'Address to bind (0.0.0.0 exposes it).')
  flags.DEFINE_integer('port', 8500, 'gRPC port (0 = any free port).')
  flags.DEFINE_integer('rest_port', None, 'REST port (unset = no REST).')
  flags.DEFINE_bool('enable_batching', False, 'Merge concurrent requests.')
  flags.DEFINE_string('batching_parameters_file', None,
                      'TF Serving batching parameters (text format).')
  flags.DEFINE_integer('max_request_bytes', service_lib.DEFAULT_MAX_REQUEST_BYTES,
                       'Requests above this size get INVALID_ARGUMENT.')


def main(argv):
  del argv
  f = flags.FLAGS
  params = None
  if f.enable_batching:
    params = (batching.BatchingParameters.from_file(f.batching_parameters_file)
              if f.batching_parameters_file else batching.BatchingParameters())
  server = LocalServer(f.model_dir, model_name=f.model_name, host=f.host, port=f.port,
                       rest_port=f.rest_port, batching_parameters=params,
                       max_request_bytes=f.max_request_bytes)
  server.start()
  svc = server.service
  print(f'serving {svc.model_name} version {svc.version} ({svc.version_dir}) on '
        f'{server.host}:{server.port} (gRPC)'
        + (f', {server.host}:{server.rest_port} (REST)' if server.rest_port else '')
        + (f', batching {params}' if params else ''), flush=True)
  print('signatures: ' + ', '.join(sorted(svc.signature_defs)), flush=True)
  try:
    server.wait()
  except KeyboardInterrupt:
    server.stop()


if __name__ == '__main__':
  _define_flags()
  flags.mark_flags_as_required(['model_dir'])
  app.run(main)
