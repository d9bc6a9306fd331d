r"""Client of a PolyViT model served by TF Serving (or serving/local_server.py).

  python -m serving.client --server=HOST:8500 --task=<task> FILE...       # gRPC Predict
  python -m serving.client --server=HOST:8501 --rest --task=<task> FILE... # REST :predict
  python -m serving.client --server=HOST:8500 --list                       # signatures

FILE kinds and the signature each one is sent to: a `.npy` file (a preprocessed example, or a
batch of them) goes to the tensor signature `<task>`; any other file to the raw-input
signature of the task's modality that reads it, as the modality module says
(polyvit_tf/modalities/<m>.py, `client_inputs`; signatures: polyvit_tf/export/signatures.py):
  .jpg .jpeg .png .gif .bmp      <task>_raw    encoded image bytes          (image)
  .wav                           <task>_raw    WAV bytes                    (audio)
  a directory of .jpg/.jpeg/.png <task>_raw    one video, its frames in file-name order
  .mp4 .avi .mov .mkv .webm      <task>_frames one video decoded to uint8 RGB frames (PyAV)
Files of one kind go in one request (videos of different shapes in separate ones). Prints the
top-k class names and scores per file.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Iterable, Mapping, Sequence

import numpy as np

MAX_MESSAGE_BYTES = 256 << 20


class ClientError(Exception):
  """The server rejected a request; `code` is the gRPC status name (or HTTP status)."""

  def __init__(self, code: str, message: str):
    super().__init__(f'{code}: {message}')
    self.code = code
    self.message = message


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
  name: str
  inputs: dict[str, tuple[str, tuple[int | None, ...]]]   # name -> (dtype, shape)
  outputs: dict[str, tuple[str, tuple[int | None, ...]]]


def _tensor_infos(infos) -> dict[str, tuple[str, tuple[int | None, ...]]]:
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  out = {}
  for name, info in infos.items():
    dims = tuple(None if d.size == -1 else int(d.size) for d in info.tensor_shape.dim)
    out[name] = (tf.dtypes.as_dtype(info.dtype).name, dims)
  return out


def _signature_infos(signature_def_map) -> dict[str, SignatureInfo]:
  return {name: SignatureInfo(name, _tensor_infos(sig.inputs), _tensor_infos(sig.outputs))
          for name, sig in sorted(signature_def_map.items()) if not name.startswith('__')}


class GrpcClient:
  """PredictionService over gRPC (TF Serving's port 8500)."""

  def __init__(self, server: str, *, model_name: str = 'polyvit', version: int | None = None,
               timeout: float = 60.0):
    # pylint: disable=import-outside-toplevel
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    self._grpc = grpc
    self.model_name, self.version, self.timeout = model_name, version, timeout
    self._channel = grpc.insecure_channel(server, options=[
        ('grpc.max_send_message_length', MAX_MESSAGE_BYTES),
        ('grpc.max_receive_message_length', MAX_MESSAGE_BYTES)])
    self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

  def close(self) -> None:
    self._channel.close()

  def _spec(self, spec, signature: str = '') -> None:
    spec.name = self.model_name
    if self.version is not None:
      spec.version.value = self.version
    if signature:
      spec.signature_name = signature

  def _call(self, method, request):
    try:
      return method(request, timeout=self.timeout)
    except self._grpc.RpcError as e:
      raise ClientError(e.code().name, e.details()) from e

  def signatures(self) -> dict[str, SignatureInfo]:
    # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import get_model_metadata_pb2
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
    self._spec(request.model_spec)
    response = self._call(self._stub.GetModelMetadata, request)
    defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata['signature_def'].Unpack(defs)
    return _signature_infos(defs.signature_def)

  def predict(self, signature: str, inputs: Mapping[str, np.ndarray], *,
              output_filter: Sequence[str] = ()) -> dict[str, np.ndarray]:
    # pylint: disable=import-outside-toplevel
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    self._spec(request.model_spec, signature)
    for name, value in inputs.items():
      request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    response = self._call(self._stub.Predict, request)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


class RestClient:
  """TF Serving's REST API (port 8501), columnar "inputs" format; bytes as {"b64": ...}."""

  def __init__(self, server: str, *, model_name: str = 'polyvit', version: int | None = None,
               timeout: float = 60.0):
    base = server if server.startswith('http') else f'http://{server}'
    self.url = f'{base}/v1/models/{model_name}' + (f'/versions/{version}' if version else '')
    self.timeout = timeout

  def close(self) -> None:
    pass

  def _request(self, url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method='GET' if data is None else 'POST',
                                 headers={'Content-Type': 'application/json'})
    try:
      with urllib.request.urlopen(req, timeout=self.timeout) as r:
        return json.loads(r.read())
    except urllib.error.HTTPError as e:
      payload = e.read().decode('utf-8', 'replace')
      try:
        message = json.loads(payload).get('error', payload)
      except json.JSONDecodeError:
        message = payload
      code = {400: 'INVALID_ARGUMENT', 404: 'NOT_FOUND', 503: 'UNAVAILABLE'}.get(
          e.code, f'HTTP_{e.code}')
      raise ClientError(code, message) from e

  def signatures(self) -> dict[str, SignatureInfo]:
    # pylint: disable=import-outside-toplevel
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    json_format.ParseDict(self._request(self.url + '/metadata'), response,
                          ignore_unknown_fields=True)
    defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata['signature_def'].Unpack(defs)
    return _signature_infos(defs.signature_def)

  def predict(self, signature: str, inputs: Mapping[str, np.ndarray], *,
              output_filter: Sequence[str] = ()) -> dict[str, np.ndarray]:
    body = {'signature_name': signature,
            'inputs': {k: _json_value(np.asarray(v)) for k, v in inputs.items()}}
    outputs = self._request(self.url + ':predict', body)['outputs']
    if not isinstance(outputs, dict):  # a single-output signature returns the bare value
      outputs = {'output': outputs}
    result = {k: np.asarray(v) for k, v in outputs.items()}
    return {k: result[k] for k in output_filter} if output_filter else result


def _json_value(x: np.ndarray):
  if x.dtype.kind in 'OS':
    return np.vectorize(lambda b: {'b64': base64.b64encode(b).decode('ascii')},
                        otypes=[object])(x).tolist()
  return x.tolist()


def make_client(server: str, *, rest: bool = False, model_name: str = 'polyvit',
                version: int | None = None, timeout: float = 60.0):
  cls = RestClient if rest else GrpcClient
  return cls(server, model_name=model_name, version=version, timeout=timeout)


# --------------------------------------------------------------------------- media to inputs
@dataclasses.dataclass
class Request:
  signature: str
  inputs: dict[str, np.ndarray]
  files: list[str]  # one per row of the batch (a .npy batch repeats its name)


def _client_inputs() -> list:
  """Every registered modality's ClientInputs (polyvit_tf.modalities)."""
  from polyvit_tf import modalities  # pylint: disable=import-outside-toplevel
  return [c for name in modalities.names() for c in modalities.get(name).client_inputs()]


def _reader(task: str, path: str, signatures: Mapping[str, SignatureInfo]):
  """The ClientInput that sends `path` to one of `task`'s signatures on the server."""
  candidates = [c for c in _client_inputs() if c.accepts(path)]
  if not candidates:
    kinds = sorted({e for c in _client_inputs() for e in c.extensions if e != '/'})
    raise ValueError(f'{path}: unsupported file type; expected .npy, a directory of frames '
                     f'or one of {kinds}.')
  for c in candidates:
    sig = signatures.get(f'{task}_{c.suffix}')
    if sig is not None and c.input_name in sig.inputs:
      return c
  names = ' or '.join(repr(f'{task}_{c.suffix}') for c in candidates)
  raise ValueError(f'the server has no signature {names} (task {task!r}) that reads {path}; '
                   f'it has {sorted(signatures)}.')


def build_requests(task: str, files: Sequence[str],
                   signatures: Mapping[str, SignatureInfo]) -> list[Request]:
  """Groups `files` by kind into requests for `task`'s signatures (input names from metadata)."""
  requests, groups = [], {}
  tensors = [f for f in files if not os.path.isdir(f) and f.lower().endswith('.npy')]
  for f in files:
    if f in tensors:
      continue
    reader = _reader(task, f, signatures)
    if reader.per_file:
      requests.append(Request(f'{task}_{reader.suffix}', {reader.input_name: reader.read([f])},
                              [f]))
    else:
      groups.setdefault(id(reader), (reader, []))[1].append(f)
  for reader, paths in groups.values():
    requests.append(Request(f'{task}_{reader.suffix}', {reader.input_name: reader.read(paths)},
                            list(paths)))
  if tensors:
    if task not in signatures:
      raise ValueError(f'the server has no signature {task!r} (task {task!r}); it has '
                       f'{sorted(signatures)}.')
    (name,) = signatures[task].inputs
    expected = signatures[task].inputs[name][1][1:]
    arrays, names = [], []
    for p in tensors:
      x = np.load(p).astype(np.float32)
      x = x[np.newaxis] if x.shape == expected else x
      arrays.append(x)
      names += [p] * len(x)
    requests.append(Request(task, {name: np.concatenate(arrays)}, names))
  return requests


def format_predictions(files: Sequence[str], outputs: Mapping[str, np.ndarray]) -> list[str]:
  lines = []
  for i, f in enumerate(files):
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in outputs['top_k_names'][i]]
    scores = outputs['top_k_scores'][i]
    lines.append(f'{f}: ' + ', '.join(f'{n} {s:.3f}' for n, s in zip(names, scores)))
  return lines


def classify(client, task: str, files: Sequence[str]) -> list[str]:
  """Top-k lines for `files` (one per file, in the order given)."""
  signatures = client.signatures()
  lines = {}
  for request in build_requests(task, files, signatures):
    outputs = client.predict(request.signature, request.inputs)
    for f, line in zip(request.files, format_predictions(request.files, outputs)):
      lines.setdefault(f, []).append(line)
  return [line for f in dict.fromkeys(files) for line in lines.get(f, [])]


def format_signatures(signatures: Mapping[str, SignatureInfo]) -> Iterable[str]:
  for name, sig in signatures.items():
    ins = ', '.join(f'{k}: {d}{list(s)}' for k, (d, s) in sig.inputs.items())
    outs = ', '.join(f'{k}: {d}{list(s)}' for k, (d, s) in sorted(sig.outputs.items()))
    yield f'{name}({ins}) -> {outs}'


def _flag_values():
  # pylint: disable=import-outside-toplevel
  from absl import flags
  fv = flags.FlagValues()
  flags.DEFINE_string('server', 'localhost:8500', 'HOST:PORT (8500 gRPC, 8501 REST).',
                      flag_values=fv)
  flags.DEFINE_bool('rest', False, 'Use the REST API instead of gRPC.', flag_values=fv)
  flags.DEFINE_string('model_name', 'polyvit', 'Model name in the server.', flag_values=fv)
  flags.DEFINE_integer('version', None, 'Model version (default: the latest).',
                       flag_values=fv)
  flags.DEFINE_string('task', None, 'Task whose signatures to call.', flag_values=fv)
  flags.DEFINE_bool('list', False, 'Print the signatures from GetModelMetadata and exit.',
                    flag_values=fv)
  flags.DEFINE_float('timeout', 60.0, 'Seconds per call.', flag_values=fv)
  return fv


def main(argv: Sequence[str]) -> int:
  """The command line (argv[0] is the program name); returns the exit status."""
  f = _flag_values()
  try:
    files = f(list(argv))[1:]
  except Exception as e:  # pylint: disable=broad-except  (absl flags errors)
    print(f'error: {e}', file=sys.stderr)
    return 2
  client = make_client(f.server, rest=f.rest, model_name=f.model_name, version=f.version,
                       timeout=f.timeout)
  try:
    if f.list:
      for line in format_signatures(client.signatures()):
        print(line)
      return 0
    if not f.task or not files:
      print('usage: python -m serving.client --server=HOST:PORT --task=TASK FILE... '
            '(or --list)', file=sys.stderr)
      return 2
    for line in classify(client, f.task, files):
      print(line)
    return 0
  except (ClientError, ValueError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  finally:
    client.close()


if __name__ == '__main__':
  sys.exit(main(sys.argv))
