"""The model behind the local server: loads an exported SavedModel, validates and runs requests.

Transport-free (numpy in, numpy out): the gRPC servicer (local_server.py) and the REST
handler (rest.py) both call `ModelService.predict` and `ModelService.signature_defs`.
Request checks follow the SavedModel's SignatureDefs (what TF Serving checks against) and
the request limits (limits.py), and fail with a `ServiceError` carrying the gRPC status
code TF Serving answers with and a message naming the problem:

  NOT_FOUND            unknown model name or version
  FAILED_PRECONDITION  unknown signature (TF Serving's code; REST answers 400)
  INVALID_ARGUMENT     missing / unexpected input, wrong dtype or shape, empty batch, inputs
                       with different batch sizes, a limit of limits.py exceeded, unknown
                       output filter, media the signature's decode checks refuse (their
                       message, whole)
  RESOURCE_EXHAUSTED   a client already has `max_client_inflight` requests running
  UNAVAILABLE          the batching queue (or that client's share of it) is full
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import threading
import time
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from polyvit_tf import versions
from serving import batching
from serving import errors
from serving import limits as limits_lib

DEFAULT_MAX_REQUEST_BYTES = limits_lib.DEFAULT_MAX_REQUEST_BYTES
DEFAULT_MAX_CLIENT_INFLIGHT = 8
WARMUP_FILE = os.path.join('assets.extra', 'tf_serving_warmup_requests')
ServiceError = errors.ServiceError
_TF_CODES = {getattr(tf.errors, name): name for name in errors.HTTP_STATUS if name != 'OK'}


def find_version_dir(model_dir: str) -> tuple[str, int]:
  """(SavedModel directory, version): `model_dir` itself, or its highest complete numeric
  subdirectory, as TF Serving picks it. The version is the directory's name (what TF Serving
  reports); a version directory that is not named by a number (`--model_dir=<one copy>`)
  has the version its polyvit_export.json records (polyvit_tf/versions.py)."""
  try:
    version_dir = versions.latest_version_dir(model_dir)
  except FileNotFoundError:
    raise FileNotFoundError(f'{model_dir}: neither a SavedModel nor a directory of numeric '
                            'SavedModel versions.') from None
  return version_dir, versions.version_of(version_dir)


def read_signature_defs(version_dir: str) -> dict[str, meta_graph_pb2.SignatureDef]:
  """The SignatureDefs of the `serve` MetaGraph (internal `__...` entries left out)."""
  sm = saved_model_pb2.SavedModel()
  with open(os.path.join(version_dir, 'saved_model.pb'), 'rb') as f:
    sm.ParseFromString(f.read())
  for graph in sm.meta_graphs:
    if 'serve' in graph.meta_info_def.tags:
      return {k: v for k, v in graph.signature_def.items() if not k.startswith('__')}
  raise ValueError(f'{version_dir}: no MetaGraph tagged "serve".')


@dataclasses.dataclass
class Stats:
  """Counters for the monitoring endpoint."""
  requests: dict = dataclasses.field(default_factory=dict)  # (signature, code) -> count
  latency_seconds: float = 0.0
  lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

  def record(self, signature: str, code: str, seconds: float) -> None:
    with self.lock:
      self.requests[(signature, code)] = self.requests.get((signature, code), 0) + 1
      self.latency_seconds += seconds


class ClientGate:
  """At most `max_inflight` requests of one client (a gRPC peer, a REST connection) run at
  a time, so that one client cannot take every worker thread."""

  def __init__(self, max_inflight: int):
    if max_inflight < 1:
      raise ValueError(f'max_client_inflight must be >= 1, got {max_inflight}.')
    self.max_inflight = int(max_inflight)
    self._inflight: collections.Counter = collections.Counter()
    self._lock = threading.Lock()

  @contextlib.contextmanager
  def enter(self, client: str):
    if not client:
      yield
      return
    with self._lock:
      if self._inflight[client] >= self.max_inflight:
        raise ServiceError('RESOURCE_EXHAUSTED', f'client {client} already has '
                           f'{self._inflight[client]} requests in flight (limit '
                           f'{self.max_inflight}, max_client_inflight); retry later.')
      self._inflight[client] += 1
    try:
      yield
    finally:
      with self._lock:
        self._inflight[client] -= 1
        if not self._inflight[client]:
          del self._inflight[client]


class ModelService:
  """One model (the latest version under `model_dir`) and its signatures."""

  def __init__(self, model_dir: str, *, model_name: str = 'polyvit',
               batching_parameters: batching.BatchingParameters | None = None,
               limits: limits_lib.Limits | None = None,
               max_request_bytes: int | None = None,
               max_client_inflight: int = DEFAULT_MAX_CLIENT_INFLIGHT,
               admission: batching.Admission | None = None, warmup: bool = True):
    self.version_dir, self.version = find_version_dir(model_dir)
    self.model_name = model_name
    limits = limits or limits_lib.Limits()
    if max_request_bytes is not None:
      limits = dataclasses.replace(limits, max_request_bytes=int(max_request_bytes))
    self.limits = limits
    self.signature_defs = read_signature_defs(self.version_dir)
    self._loaded = tf.saved_model.load(self.version_dir)
    self._functions = {name: self._loaded.signatures[name] for name in self.signature_defs}
    self.stats = Stats()
    self.gate = ClientGate(max_client_inflight)
    self._batcher = (batching.Batcher(self._run, batching_parameters, admission)
                     if batching_parameters else None)
    if warmup:
      self.replay_warmup()

  @property
  def max_request_bytes(self) -> int:
    return self.limits.max_request_bytes

  @property
  def batcher(self) -> batching.Batcher | None:
    return self._batcher

  def close(self) -> None:
    if self._batcher:
      self._batcher.close()

  # -------------------------------------------------------------------------------- lookup
  def check_model(self, name: str, version: int | None) -> None:
    if name != self.model_name:
      raise ServiceError('NOT_FOUND', f'Servable not found for request: model {name!r} '
                         f'(this server serves {self.model_name!r}).')
    if version not in (None, 0, self.version):
      raise ServiceError('NOT_FOUND', f'Servable not found for request: model {name!r} '
                         f'version {version} (loaded version: {self.version}).')

  def signature_def(self, signature: str) -> meta_graph_pb2.SignatureDef:
    signature = signature or 'serving_default'
    if signature not in self.signature_defs:
      raise ServiceError('FAILED_PRECONDITION', f'Serving signature key "{signature}" not '
                         f'found; the model has {sorted(self.signature_defs)}.')
    return self.signature_defs[signature]

  def input_dtypes(self, signature: str) -> dict[str, tf.dtypes.DType]:
    return {n: tf.dtypes.as_dtype(i.dtype)
            for n, i in self.signature_def(signature).inputs.items()}

  # ------------------------------------------------------------------------------- predict
  def validate(self, signature: str, inputs: Mapping[str, np.ndarray]) -> None:
    """Raises ServiceError(INVALID_ARGUMENT) naming the first problem of `inputs`."""
    sig = self.signature_def(signature)
    expected, got = set(sig.inputs), set(inputs)
    if expected != got:
      problems = ([f'missing input(s) {sorted(expected - got)}'] if expected - got else []) + (
          [f'unexpected input(s) {sorted(got - expected)}'] if got - expected else [])
      raise ServiceError('INVALID_ARGUMENT', f'signature {signature!r}: '
                         f'{"; ".join(problems)}; it takes {sorted(expected)}.')
    batch = set()
    for name, info in sig.inputs.items():
      x = inputs[name]
      if x.ndim:
        limits_lib.check_dims(name, list(x.shape), self.limits)
      if x.ndim == 0 or x.shape[0] == 0:
        raise ServiceError('INVALID_ARGUMENT', f'signature {signature!r} input {name!r}: '
                           f'empty batch (shape {tuple(x.shape)}); send at least one example.')
      want = tf.dtypes.as_dtype(info.dtype)
      have = _tf_dtype(x)
      if have != want:
        raise ServiceError('INVALID_ARGUMENT', f'signature {signature!r} input {name!r}: '
                           f'expects {want.name}, got {have.name if have else x.dtype}.')
      dims = [d.size for d in info.tensor_shape.dim]
      if not info.tensor_shape.unknown_rank and (
          len(dims) != x.ndim or any(d not in (-1, s) for d, s in zip(dims, x.shape))):
        shape = tuple(None if d == -1 else d for d in dims)
        raise ServiceError('INVALID_ARGUMENT', f'signature {signature!r} input {name!r}: '
                           f'expects shape {shape}, got {tuple(x.shape)}.')
      batch.add(x.shape[0])
    if len(batch) > 1:
      raise ServiceError('INVALID_ARGUMENT', f'signature {signature!r}: inputs have different '
                         f'batch sizes {sorted(batch)}.')

  def check_request_bytes(self, request_bytes: int) -> None:
    if request_bytes > self.max_request_bytes:
      raise ServiceError('INVALID_ARGUMENT', f'request of {request_bytes} bytes exceeds the '
                         f'server limit of {self.max_request_bytes} bytes (max_request_bytes);'
                         ' send fewer examples per request.')

  def predict(self, signature: str, inputs: Mapping[str, np.ndarray], *,
              output_filter: Sequence[str] = (), request_bytes: int = 0, client: str = ''
              ) -> dict[str, np.ndarray]:
    """Validates and runs one request; returns the (filtered) outputs as numpy. `client`
    (a gRPC peer or REST connection) is what the in-flight and queue shares count."""
    signature = signature or 'serving_default'
    start = time.perf_counter()
    code = 'OK'
    try:
      with self.gate.enter(client):
        self.check_request_bytes(request_bytes)
        self.validate(signature, inputs)
        sig = self.signature_defs[signature]
        unknown = [k for k in output_filter if k not in sig.outputs]
        if unknown:
          raise ServiceError('INVALID_ARGUMENT', f'output tensor alias not found in signature '
                             f'{signature!r}: {unknown}; outputs are {sorted(sig.outputs)}.')
        if len(set(output_filter)) != len(output_filter):
          raise ServiceError('INVALID_ARGUMENT', f'duplicate output tensor alias in '
                             f'output_filter {list(output_filter)}.')
        if self._batcher:
          try:
            outputs = self._batcher.submit(signature, inputs, client=client,
                                           nbytes=request_bytes or _nbytes(inputs))
          except batching.QueueFullError as e:
            raise ServiceError('UNAVAILABLE', str(e)) from e
        else:
          outputs = self._run(signature, inputs)
      if output_filter:
        outputs = {k: outputs[k] for k in output_filter}
      return outputs
    except ServiceError as e:
      code = e.code
      raise
    finally:
      self.stats.record(signature, code, time.perf_counter() - start)

  def _run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    try:
      outputs = self._functions[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    except tf.errors.OpError as e:
      raise ServiceError(_TF_CODES.get(e.error_code, 'UNKNOWN'),
                         f'signature {signature!r}: {errors.op_error_message(e)}') from e
    except (ValueError, TypeError) as e:
      raise ServiceError('INVALID_ARGUMENT', f'signature {signature!r} could not run on the '
                         f'inputs: {errors.op_error_message(e)}') from e
    return {k: v.numpy() for k, v in outputs.items()}

  def replay_warmup(self) -> int:
    """Runs the PredictLogs of assets.extra/tf_serving_warmup_requests (as TF Serving does)."""
    # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import prediction_log_pb2
    path = os.path.join(self.version_dir, WARMUP_FILE)
    if not os.path.exists(path):
      return 0
    n = 0
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
      log = prediction_log_pb2.PredictionLog.FromString(record)
      request = log.predict_log.request
      self._run(request.model_spec.signature_name or 'serving_default',
                {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
      n += 1
    return n


def metadata_response(service: ModelService):
  """The GetModelMetadataResponse (signature_def) of `service`'s model."""
  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import get_model_metadata_pb2
  response = get_model_metadata_pb2.GetModelMetadataResponse()
  response.model_spec.name = service.model_name
  response.model_spec.version.value = service.version
  defs = get_model_metadata_pb2.SignatureDefMap()
  for name, sig in service.signature_defs.items():
    defs.signature_def[name].CopyFrom(sig)
  response.metadata['signature_def'].Pack(defs)
  return response


def _nbytes(inputs: Mapping[str, np.ndarray]) -> int:
  """Bytes of a request's arrays (strings: their lengths plus 8 per element)."""
  total = 0
  for x in inputs.values():
    if x.dtype.kind == 'O':
      total += sum(len(v) for v in x.reshape(-1)) + 8 * x.size
    else:
      total += x.nbytes
  return total


def _tf_dtype(x: np.ndarray) -> tf.dtypes.DType | None:
  if x.dtype.kind in 'OSU':
    return tf.string
  try:
    return tf.as_dtype(x.dtype)
  except TypeError:
    return None
