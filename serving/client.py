r"""Client of a PolyViT model served by TF Serving (or serving/local_server.py).

  python -m serving.client --server=HOST:8500 --task=<task> FILE...       # gRPC Predict
  python -m serving.client --server=HOST:8501 --rest --task=<task> FILE... # REST :predict
  python -m serving.client --server=HOST:8500 --list                       # signatures

FILEs are decoded on the client side as the converter decodes them for training
(serving/media_files.py): for an image task any image PIL reads, for an audio task what
the converter's media.audio_waveform reads, for a video task any video FFmpeg reads or a
directory of JPEG / PNG frames, all sent to `<task>_raw`; .npy files (preprocessed
examples) go to `<task>`. Prints one line per file (per example of a .npy batch): its
top-k class names and scores, or that file's error; exits with status 1 when any file
failed, and one bad file never loses the others' results.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
import urllib.error
import urllib.request
from typing import Iterable, Mapping, Sequence

import numpy as np

from polyvit_tf import quiet
from serving import errors as errors_lib
from serving import media_files

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
        ('grpc.max_receive_message_length', MAX_MESSAGE_BYTES),
        ('grpc.use_local_subchannel_pool', 1)])  # a connection of its own per client
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


# HTTP status -> the gRPC code TF Serving maps to it (the first, for 400: INVALID_ARGUMENT).
_HTTP_CODES = {}
for _code, _status in errors_lib.HTTP_STATUS.items():
  _HTTP_CODES.setdefault(_status, _code)


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
      raise ClientError(_HTTP_CODES.get(e.code, f'HTTP_{e.code}'), message) from e

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
MAX_ROWS_PER_REQUEST = 32


@dataclasses.dataclass
class FileResult:
  """What became of one file: `lines` (one per example) or `error`."""
  path: str
  lines: list[str] = dataclasses.field(default_factory=list)
  error: str = ''

  def output(self) -> list[str]:
    return [f'{self.path}: error: {self.error}'] if self.error else self.lines


def task_modality(task: str, signatures: Mapping[str, SignatureInfo]) -> str:
  """The task's modality: its tensor signature's input name (image, audio or video)."""
  if task not in signatures:
    tasks = sorted(n for n in signatures if f'{n}_raw' in signatures)
    raise ValueError(f'the server has no signature {task!r} (task {task!r}); its tasks are '
                     f'{tasks}.')
  (name,) = signatures[task].inputs
  return name


def _input_name(signature: str, signatures: Mapping[str, SignatureInfo]) -> str:
  if signature not in signatures:
    raise ValueError(f'the server has no signature {signature!r}.')
  (name,) = signatures[signature].inputs
  return name


def format_predictions(files: Sequence[str], outputs: Mapping[str, np.ndarray]) -> list[str]:
  lines = []
  for i, f in enumerate(files):
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in outputs['top_k_names'][i]]
    scores = outputs['top_k_scores'][i]
    lines.append(f'{f}: ' + ', '.join(f'{n} {s:.3f}' for n, s in zip(names, scores)))
  return lines


def _rows(prepared: media_files.Prepared, expected: tuple) -> np.ndarray | list:
  """The request rows of one prepared file (several for a .npy batch)."""
  if prepared.kind == 'raw':
    return [prepared.value]
  x = prepared.value
  if x.shape == expected:
    return x[np.newaxis]
  if x.shape[1:] != expected:
    raise media_files.MediaError(f'array of shape {x.shape}; the task takes '
                                 f'{expected} or a batch of them')
  return x


def _inputs(signature_kind: str, rows: list) -> np.ndarray:
  if signature_kind == 'tensor':
    return np.stack(rows)
  if rows and isinstance(rows[0], list):  # videos: frames padded with b'' (dropped)
    length = max(len(r) for r in rows)
    return np.array([r + [b''] * (length - len(r)) for r in rows], dtype=object)
  return np.array(rows, dtype=object)


def classify_files(client, task: str, files: Sequence[str], *,
                   video_fps: float = media_files.DEFAULT_VIDEO_FPS,
                   video_short_side: int = media_files.DEFAULT_VIDEO_SHORT_SIDE,
                   max_rows: int = MAX_ROWS_PER_REQUEST) -> list[FileResult]:
  """One FileResult per file, in order: its top-k lines, or its own error. Files of one
  signature go in requests of at most `max_rows` examples; when a request fails, its
  files are sent one by one so that each gets its own result or error."""
  signatures = client.signatures()
  modality = task_modality(task, signatures)
  results = [FileResult(f) for f in files]
  groups: dict[str, list] = {}
  for result in results:
    try:
      prepared = media_files.prepare(result.path, modality, video_fps=video_fps,
                                     video_short_side=video_short_side)
      signature = task if prepared.kind == 'tensor' else f'{task}_raw'
      name = _input_name(signature, signatures)
      rows = _rows(prepared, signatures[signature].inputs[name][1][1:])
    except (media_files.MediaError, ValueError) as e:
      result.error = str(e)
      continue
    groups.setdefault(signature, []).append((result, rows))

  def send(signature: str, items: list) -> None:
    kind = 'tensor' if signature == task else 'raw'
    rows = [r for _, file_rows in items for r in file_rows]
    try:
      outputs = client.predict(signature, {_input_name(signature, signatures):
                                           _inputs(kind, rows)})
    except ClientError as e:
      if len(items) == 1:
        items[0][0].error = str(e)
      else:
        for item in items:
          send(signature, [item])
      return
    names = [result.path for result, file_rows in items for _ in file_rows]
    lines = format_predictions(names, outputs)
    start = 0
    for result, file_rows in items:
      result.lines = lines[start:start + len(file_rows)]
      start += len(file_rows)

  for signature, items in groups.items():
    for i in range(0, len(items), max_rows):
      send(signature, items[i:i + max_rows])
  return results


def classify(client, task: str, files: Sequence[str], **kwargs) -> list[str]:
  """Output lines for `files`, in order: top-k per example, or `<file>: error: ...`."""
  return [line for r in classify_files(client, task, files, **kwargs) for line in r.output()]


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
  flags.DEFINE_float('video_fps', media_files.DEFAULT_VIDEO_FPS,
                     'Frames per second taken from video files (the converter\'s default).',
                     flag_values=fv)
  flags.DEFINE_integer('video_short_side', media_files.DEFAULT_VIDEO_SHORT_SIDE,
                       'Short side of the frames sent for video files (the converter\'s '
                       'default).', flag_values=fv)
  quiet.define_flag(fv)
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
    results = classify_files(client, f.task, files, video_fps=f.video_fps,
                             video_short_side=f.video_short_side)
    for result in results:
      for line in result.output():
        print(line, flush=True)
    return 1 if any(r.error for r in results) else 0
  except (ClientError, ValueError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  finally:
    client.close()


if __name__ == '__main__':
  sys.exit(main(sys.argv))
