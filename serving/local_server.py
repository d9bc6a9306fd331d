r"""A local STAND-IN for TF Serving: PredictionService (Predict, GetModelMetadata) over gRPC.

  python -m serving.local_server --model_dir=<models>/polyvit --port=8500 \
      [--rest_port=8501] [--enable_batching \
       --batching_parameters_file=serving/batching_parameters.txt] [limits, see --help]

This is NOT the TF Serving binary (tensorflow_model_server cannot be installed on our
machines); it is a Python server that loads the same SavedModel and speaks the same
tensorflow_serving.apis protocol, so serving/client.py (and any TF Serving client) works
against it unchanged, with TF Serving's status codes and REST forms. It serves one model
(the latest version under --model_dir; no version policy or hot reload), Predict and
GetModelMetadata only (Classify, Regress, MultiInference answer UNIMPLEMENTED), with
Python-level batching. Bound to 127.0.0.1 unless --host says otherwise.

Limits (docs/serving.md, "Limits"), each breach answered with a status naming the limit
and the value, nothing allocated before the check:
  --max_request_bytes      gRPC receive limit (RESOURCE_EXHAUSTED from gRPC) and REST body
  --max_batch_rows         rows of one request          } checked from the TensorProto's
  --max_tensor_elements    elements of one input tensor } dtype and shape (limits.py)
  --max_client_inflight    requests of one client (gRPC connection) running at once
  --max_enqueued_bytes, --max_client_queue_share   batching admission (batching.py)
  --rest_workers, --rest_timeout_seconds           the REST pool and per-request deadline
The REST port (rest.py) speaks the subset of TF Serving's REST API the client uses.
"""

from __future__ import annotations

import concurrent.futures
import threading

from absl import app
from absl import flags
import grpc
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
import tensorflow as tf

from serving import batching
from serving import errors
from serving import limits as limits_lib
from serving import rest
from serving import service as service_lib

DEFAULT_MAX_WORKERS = 16
DEFAULT_REST_WORKERS = 16
DEFAULT_REST_TIMEOUT_SECONDS = 30.0


def _abort(context: grpc.ServicerContext, error: errors.ServiceError):
  context.abort(getattr(grpc.StatusCode, error.code), error.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict and GetModelMetadata of tensorflow.serving.PredictionService."""

  def __init__(self, service: service_lib.ModelService):
    self.service = service

  def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
    spec = request.model_spec
    signature = spec.signature_name or 'serving_default'
    try:
      self.service.check_model(spec.name, spec.version.value if spec.HasField('version')
                               else None)
      dtypes = self.service.input_dtypes(signature)
      inputs = {name: limits_lib.array_from_proto(name, proto, dtypes.get(name),
                                                  self.service.limits)
                for name, proto in request.inputs.items()}
      outputs = self.service.predict(signature, inputs,
                                     output_filter=list(request.output_filter),
                                     request_bytes=request.ByteSize(), client=context.peer())
    except errors.ServiceError as e:
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
        raise errors.ServiceError(
            'INVALID_ARGUMENT', f'metadata_field must be ["signature_def"], got {fields}.')
    except errors.ServiceError as e:
      _abort(context, e)
    return service_lib.metadata_response(self.service)


class LocalServer:
  """gRPC (and optionally REST) front ends over one ModelService."""

  def __init__(self, model_dir: str, *, model_name: str = 'polyvit', host: str = '127.0.0.1',
               port: int = 0, rest_port: int | None = None,
               batching_parameters: batching.BatchingParameters | None = None,
               max_request_bytes: int | None = None,
               limits: limits_lib.Limits | None = None,
               max_workers: int = DEFAULT_MAX_WORKERS,
               max_client_inflight: int = service_lib.DEFAULT_MAX_CLIENT_INFLIGHT,
               admission: batching.Admission | None = None,
               rest_workers: int = DEFAULT_REST_WORKERS,
               rest_timeout_seconds: float = DEFAULT_REST_TIMEOUT_SECONDS,
               warmup: bool = True):
    self.service = service_lib.ModelService(
        model_dir, model_name=model_name, batching_parameters=batching_parameters,
        limits=limits, max_request_bytes=max_request_bytes,
        max_client_inflight=max_client_inflight, admission=admission, warmup=warmup)
    limit = self.service.max_request_bytes
    self._grpc = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix='grpc'),
        options=[('grpc.max_receive_message_length', limit),
                 ('grpc.max_send_message_length', max(limit, 4 << 20))],
        maximum_concurrent_rpcs=4 * max_workers)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(self.service), self._grpc)
    self.host = host
    self.port = self._grpc.add_insecure_port(f'{host}:{port}')
    if self.port == 0:
      raise OSError(f'could not bind gRPC to {host}:{port}.')
    self._http = None
    self.rest_port = None
    if rest_port is not None:
      self._http = rest.BoundedHTTPServer(
          (host, rest_port), rest.make_handler(self.service, rest_timeout_seconds),
          workers=rest_workers)
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
  flags.DEFINE_integer('max_request_bytes', limits_lib.DEFAULT_MAX_REQUEST_BYTES,
                       'Largest gRPC message / REST body in bytes.')
  flags.DEFINE_integer('max_batch_rows', limits_lib.DEFAULT_MAX_BATCH_ROWS,
                       'Most rows (dim 0) of one request.')
  flags.DEFINE_integer('max_tensor_elements', limits_lib.DEFAULT_MAX_TENSOR_ELEMENTS,
                       'Most elements of one input tensor.')
  flags.DEFINE_integer('max_workers', DEFAULT_MAX_WORKERS, 'gRPC worker threads.')
  flags.DEFINE_integer('max_client_inflight', service_lib.DEFAULT_MAX_CLIENT_INFLIGHT,
                       'Most requests of one client (gRPC connection) running at once.')
  flags.DEFINE_integer('max_enqueued_bytes', batching.Admission.max_bytes,
                       'Batching: most request bytes waiting in the queue.')
  flags.DEFINE_float('max_client_queue_share', batching.Admission.client_share,
                     'Batching: most one client may hold of the queue\'s rows, requests '
                     'and bytes.')
  flags.DEFINE_integer('rest_workers', DEFAULT_REST_WORKERS, 'REST worker threads.')
  flags.DEFINE_float('rest_timeout_seconds', DEFAULT_REST_TIMEOUT_SECONDS,
                     'A REST request (headers and body) must arrive within this time.')


def main(argv):
  del argv
  f = flags.FLAGS
  params = None
  if f.enable_batching:
    params = (batching.BatchingParameters.from_file(f.batching_parameters_file)
              if f.batching_parameters_file else batching.BatchingParameters())
  limits = limits_lib.Limits(max_request_bytes=f.max_request_bytes,
                             max_batch_rows=f.max_batch_rows,
                             max_tensor_elements=f.max_tensor_elements)
  admission = batching.Admission(max_bytes=f.max_enqueued_bytes,
                                 client_share=f.max_client_queue_share)
  server = LocalServer(f.model_dir, model_name=f.model_name, host=f.host, port=f.port,
                       rest_port=f.rest_port, batching_parameters=params, limits=limits,
                       max_workers=f.max_workers, max_client_inflight=f.max_client_inflight,
                       admission=admission, rest_workers=f.rest_workers,
                       rest_timeout_seconds=f.rest_timeout_seconds)
  server.start()
  svc = server.service
  print(f'serving {svc.model_name} version {svc.version} ({svc.version_dir}) on '
        f'{server.host}:{server.port} (gRPC)'
        + (f', {server.host}:{server.rest_port} (REST)' if server.rest_port else '')
        + (f', batching {params}' if params else ''), flush=True)
  print('signatures: ' + ', '.join(sorted(svc.signature_defs)), flush=True)
  print('(serving.local_server is a local stand-in for TF Serving, not '
        'tensorflow_model_server)', flush=True)
  try:
    server.wait()
  except KeyboardInterrupt:
    server.stop()


if __name__ == '__main__':
  _define_flags()
  flags.mark_flags_as_required(['model_dir'])
  app.run(main)
