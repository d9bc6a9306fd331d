"""Hostile requests for the fuzz suite: malformed TensorProtos, media bombs, bad REST bodies.

Each case is (name, transport, payload, expected): for 'grpc' the payload is a
PredictRequest and `expected` a set of grpc status names; for 'rest' it is the raw bytes
of an HTTP request and `expected` a set of HTTP statuses. `send_grpc` / `send_rest` send
one case over loopback and return what came back (a status and the message), never
raising for a refused request.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import wave

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from tests.export import fixtures

IMAGE = np.zeros((1, 32, 32, 3), np.float32)


# ----------------------------------------------------------------------------- builders
def request(signature: str, model: str = 'polyvit', version: int | None = None,
            output_filter=(), **inputs) -> predict_pb2.PredictRequest:
  r = predict_pb2.PredictRequest(output_filter=list(output_filter))
  r.model_spec.name = model
  r.model_spec.signature_name = signature
  if version is not None:
    r.model_spec.version.value = version
  for name, value in inputs.items():
    r.inputs[name].CopyFrom(value if isinstance(value, tensor_pb2.TensorProto)
                            else tf.make_tensor_proto(value))
  return r


def proto(dtype: int, dims, **fields) -> tensor_pb2.TensorProto:
  """A TensorProto declaring `dims` (None: unknown rank) with the given value fields."""
  p = tensor_pb2.TensorProto(dtype=dtype)
  if dims is None:
    p.tensor_shape.unknown_rank = True
  for d in dims or ():
    p.tensor_shape.dim.add().size = d
  for field, values in fields.items():
    if field == 'tensor_content':
      p.tensor_content = values
    else:
      getattr(p, field).extend(values)
  return p


def strings(*values: bytes) -> np.ndarray:
  return np.array(list(values), dtype=object)


def wav(frames: int, rate: int, channels: int = 1, bits: int = 16, audio_format: int = 1,
        sample: bytes = b'\x01\x00') -> bytes:
  """A WAV whose header says what the arguments say (forged fields included)."""
  data = sample * frames * channels
  block = channels * bits // 8
  return (b'RIFF' + struct.pack('<I', 36 + len(data)) + b'WAVE' + b'fmt ' +
          struct.pack('<IHHIIHH', 16, audio_format, channels, rate, (rate * block) & 0xFFFFFFFF,
                      block, bits)
          + b'data' + struct.pack('<I', len(data)) + data)


def png_with_size(height: int, width: int) -> bytes:
  """A small real PNG whose IHDR is rewritten to declare height x width."""
  data = bytearray(fixtures.image_bytes(0, fmt='png'))
  data[16:24] = struct.pack('>II', width, height)
  return bytes(data)


def jpeg_with_size(height: int, width: int) -> bytes:
  """A small real JPEG whose SOF0 marker is rewritten to declare height x width."""
  data = bytearray(fixtures.image_bytes(0))
  at = data.index(b'\xff\xc0')
  data[at + 5:at + 9] = struct.pack('>HH', height, width)
  return bytes(data)


def bmp_with_size(height: int, width: int) -> bytes:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  buffer = io.BytesIO()
  Image.new('RGB', (4, 4)).save(buffer, format='BMP')
  data = bytearray(buffer.getvalue())
  data[18:26] = struct.pack('<ii', width, height)
  return bytes(data)


def pil_bytes(fmt: str, size=(8, 8), **kwargs) -> bytes:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  buffer = io.BytesIO()
  Image.new('RGB', size, (200, 30, 40)).save(buffer, format=fmt, **kwargs)
  return buffer.getvalue()


def http(method: str, path: str, body: bytes = b'', headers: dict | None = None,
         length: bool = True) -> bytes:
  lines = [f'{method} {path} HTTP/1.1', 'Host: 127.0.0.1']
  for k, v in (headers or {}).items():
    lines.append(f'{k}: {v}')
  if length and not any(k.lower() == 'content-length' for k in headers or {}):
    lines.append(f'Content-Length: {len(body)}')
  return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body


def predict_body(body) -> bytes:
  data = body if isinstance(body, bytes) else json.dumps(body).encode()
  return http('POST', '/v1/models/polyvit:predict', data)


def b64(data: bytes) -> dict:
  return {'b64': base64.b64encode(data).decode()}


# -------------------------------------------------------------------------------- cases
INVALID = {'INVALID_ARGUMENT'}
TOO_BIG = {'RESOURCE_EXHAUSTED'}


def grpc_cases(max_request_bytes: int) -> list[tuple]:
  """(name, 'grpc', PredictRequest, expected codes) for the issue's cases and more."""
  S, U8, F = types_pb2.DT_STRING, types_pb2.DT_UINT8, types_pb2.DT_FLOAT
  frames = fixtures.jpeg_frames(fixtures.video_frames(0, num_frames=6))
  cases = [
      # Declared shapes that TF would allocate whole from a few bytes.
      ('string [1e9] from one string_val (52 bytes)', 'image_a_raw',
       dict(encoded=proto(S, [10**9], string_val=[b'x'])), INVALID),
      ('string [2e7] from one string_val', 'image_a_raw',
       dict(encoded=proto(S, [2 * 10**7], string_val=[b'x'])), INVALID),
      ('uint8 frames [1, 8, 8192, 8192, 3] from 65 bytes', 'video_a_frames',
       dict(frames=proto(U8, [1, 8, 8192, 8192, 3], int_val=[1])), INVALID),
      ('float [256, 32, 32, 3] from one float_val', 'image_a',
       dict(image=proto(F, [256, 32, 32, 3], float_val=[0.5])), INVALID),
      ('20,000 rows of one broadcast WAV', 'audio_a_raw',
       dict(wav=proto(S, [20_000], string_val=[fixtures.wav_bytes(0, 0.1)])), INVALID),
      ('200,000 frames of one broadcast JPEG', 'video_a_raw',
       dict(jpeg_frames=proto(S, [1, 200_000], string_val=[frames[0]])), INVALID),
      ('elements over the limit', 'video_a_raw',
       dict(jpeg_frames=proto(S, [2, 10**8], string_val=[b''] * 2)), INVALID),
      ('rows over the limit (real content)', 'image_a_raw',
       dict(encoded=strings(*[b'x'] * 300)), INVALID),
      ('dim -1', 'image_a', dict(image=proto(F, [-1, 32, 32, 3])), INVALID),
      ('dim -5 later', 'image_a', dict(image=proto(F, [1, 32, -5, 3])), INVALID),
      ('unknown rank', 'image_a', dict(image=proto(F, None, float_val=[0.0])), INVALID),
      ('scalar', 'image_a_raw', dict(encoded=proto(S, [], string_val=[b'x'])), INVALID),
      ('DT_INVALID', 'image_a', dict(image=proto(0, [1])), INVALID),
      ('unknown dtype 1234', 'image_a', dict(image=proto(1234, [1])), INVALID),
      ('DT_RESOURCE', 'image_a', dict(image=proto(types_pb2.DT_RESOURCE, [1])), INVALID),
      ('DT_VARIANT', 'image_a', dict(image=proto(types_pb2.DT_VARIANT, [1])), INVALID),
      ('ref dtype', 'image_a', dict(image=proto(101, [1])), INVALID),
      ('float64 for float32', 'image_a', dict(image=IMAGE.astype(np.float64)), INVALID),
      ('int32 for string', 'image_a_raw', dict(encoded=np.zeros((1,), np.int32)), INVALID),
      ('string_val count below shape', 'image_a_raw',
       dict(encoded=proto(S, [3], string_val=[b'a', b'b'])), INVALID),
      ('string_val count above shape', 'image_a_raw',
       dict(encoded=proto(S, [1], string_val=[b'a', b'b'])), INVALID),
      ('tensor_content too short', 'image_a',
       dict(image=proto(F, [1, 32, 32, 3], tensor_content=b'\0' * 100)), INVALID),
      ('tensor_content too long', 'image_a',
       dict(image=proto(F, [1, 32, 32, 3], tensor_content=b'\0' * (4 * 3072 + 4))), INVALID),
      ('tensor_content and float_val', 'image_a',
       dict(image=proto(F, [1, 32, 32, 3], tensor_content=b'\0' * 4 * 3072, float_val=[1.])),
       INVALID),
      ('tensor_content for strings', 'image_a_raw',
       dict(encoded=proto(S, [1], tensor_content=b'abcd')), INVALID),
      ('uint8 300', 'video_a_frames',
       dict(frames=proto(U8, [1, 2, 2, 2, 3], int_val=[300] + [0] * 23)), INVALID),
      ('uint8 -1', 'video_a_frames',
       dict(frames=proto(U8, [1, 2, 2, 2, 3], int_val=[-1] + [0] * 23)), INVALID),
      ('wrong shape', 'image_a',
       dict(image=np.full((1, 16, 32, 3), np.nan, np.float32)), INVALID),
      ('empty batch', 'image_a', dict(image=IMAGE[:0]), INVALID),
      ('missing input', 'image_a', {}, INVALID),
      ('wrong input name', 'image_a', dict(audio=IMAGE), INVALID),
      ('extra input', 'image_a', dict(image=IMAGE, other=IMAGE), INVALID),
      ('oversized message', 'image_a',
       dict(image=np.zeros((max_request_bytes // 12288 + 8, 32, 32, 3), np.float32)),
       TOO_BIG),
      # WAV bombs and broken WAVs (the raw audio signature's in-graph checks).
      ('46-byte WAV: one sample at 44.1 kHz', 'audio_a_raw',
       dict(wav=strings(wav(1, 44_100))), INVALID),
      ('WAV at 2^30 Hz', 'audio_a_raw', dict(wav=strings(wav(100, 1 << 30))), INVALID),
      ('WAV at 2^31-1 Hz', 'audio_a_raw', dict(wav=strings(wav(100, (1 << 31) - 1))), INVALID),
      ('WAV at 2^32-1 Hz', 'audio_a_raw', dict(wav=strings(wav(100, (1 << 32) - 1))), INVALID),
      ('32 KB WAV declaring 1 Hz', 'audio_a_raw', dict(wav=strings(wav(16_000, 1))), INVALID),
      ('WAV at 0 Hz', 'audio_a_raw', dict(wav=strings(wav(16_000, 0))), INVALID),
      ('WAV of 0 samples', 'audio_a_raw', dict(wav=strings(wav(0, 16_000))), INVALID),
      ('WAV of 100 samples (under 25 ms)', 'audio_a_raw',
       dict(wav=strings(wav(100, 16_000))), INVALID),
      ('WAV of 130 s at 1 kHz', 'audio_a_raw', dict(wav=strings(wav(130_000, 1_000))),
       INVALID),
      ('WAV with 0 channels', 'audio_a_raw', dict(wav=strings(wav(100, 16_000, channels=0))),
       INVALID),
      ('8-bit WAV', 'audio_a_raw', dict(wav=strings(wav(16_000, 16_000, bits=8))), INVALID),
      ('float WAV', 'audio_a_raw',
       dict(wav=strings(wav(16_000, 16_000, bits=32, audio_format=3))), INVALID),
      ('WAV header only', 'audio_a_raw', dict(wav=strings(wav(0, 16_000)[:36])), INVALID),
      ('RIFF garbage', 'audio_a_raw', dict(wav=strings(b'RIFF....garbage')), INVALID),
      ('empty WAV string', 'audio_a_raw', dict(wav=strings(b'')), INVALID),
      ('a bomb among good WAVs', 'audio_a_raw',
       dict(wav=strings(fixtures.wav_bytes(1), wav(1, 44_100))), INVALID),
      # Image bombs and undecodable images.
      ('PNG declaring 20000 x 20000', 'image_a_raw',
       dict(encoded=strings(png_with_size(20_000, 20_000))), INVALID),
      ('PNG declaring 2^31 x 2^31', 'image_a_raw',
       dict(encoded=strings(png_with_size(1 << 31, 1 << 31))), INVALID),
      ('PNG declaring 0 x 0', 'image_a_raw', dict(encoded=strings(png_with_size(0, 0))),
       INVALID),
      ('JPEG declaring 65000 x 65000', 'image_a_raw',
       dict(encoded=strings(jpeg_with_size(65_000, 65_000))), INVALID),
      ('BMP declaring 30000 x -30000', 'image_a_raw',
       dict(encoded=strings(bmp_with_size(-30_000, 30_000))), INVALID),
      ('GIF', 'image_a_raw', dict(encoded=strings(pil_bytes('GIF'))), INVALID),
      ('WebP', 'image_a_raw', dict(encoded=strings(pil_bytes('WEBP'))), INVALID),
      ('TIFF', 'image_a_raw', dict(encoded=strings(pil_bytes('TIFF'))), INVALID),
      ('truncated JPEG', 'image_a_raw', dict(encoded=strings(fixtures.image_bytes(0)[:30])),
       INVALID),
      ('truncated PNG', 'image_a_raw',
       dict(encoded=strings(fixtures.image_bytes(0, fmt='png')[:60])), INVALID),
      ('PNG magic only', 'image_a_raw', dict(encoded=strings(b'\x89PNG\r\n\x1a\n')), INVALID),
      ('empty image string', 'image_a_raw', dict(encoded=strings(b'')), INVALID),
      ('random bytes', 'image_a_raw',
       dict(encoded=strings(np.random.default_rng(0).bytes(512))), INVALID),
      ('a bomb among good images', 'image_b_raw',
       dict(encoded=strings(fixtures.image_bytes(2), png_with_size(20_000, 20_000))), INVALID),
      # Video bombs.
      ('frames of differing sizes', 'video_a_raw',
       dict(jpeg_frames=np.array([frames[:1] + [fixtures.image_bytes(0, size=(60, 70))] * 3],
                                 dtype=object)), INVALID),
      ('a frame declaring 20000 x 20000', 'video_a_raw',
       dict(jpeg_frames=np.array([[png_with_size(20_000, 20_000)] * 4], dtype=object)),
       INVALID),
      ('only padding frames', 'video_a_raw',
       dict(jpeg_frames=np.array([[b'', b'']], dtype=object)), INVALID),
      ('no frames at all', 'video_a_raw', dict(jpeg_frames=proto(S, [1, 0])), INVALID),
      ('GIF frames', 'video_a_raw',
       dict(jpeg_frames=np.array([[pil_bytes('GIF')] * 3], dtype=object)), INVALID),
      ('1 x 20000 frames (aspect-ratio bomb)', 'video_a_frames',
       dict(frames=np.zeros((1, 4, 1, 20_000, 3), np.uint8)), INVALID),
      ('0-pixel-wide frames', 'video_a_frames', dict(frames=np.zeros((1, 4, 8, 0, 3),
                                                                     np.uint8)), INVALID),
      ('0 frames of uint8', 'video_a_frames', dict(frames=np.zeros((1, 0, 8, 8, 3),
                                                                   np.uint8)), INVALID),
      ('undecodable frames', 'video_a_raw',
       dict(jpeg_frames=np.array([[b'junk', b'more junk']], dtype=object)), INVALID),
  ]
  # Every signature: a declared-shape bomb of its own dtype, and a negative dim.
  for sig, name, dtype, rank, value in [
      ('image_a', 'image', F, 4, dict(float_val=[0.0])),
      ('image_b', 'image', F, 4, dict(float_val=[0.0])),
      ('audio_a', 'audio', F, 4, dict(float_val=[0.0])),
      ('video_a', 'video', F, 5, dict(float_val=[0.0])),
      ('serving_default', 'audio', F, 4, dict(float_val=[0.0])),
      ('image_a_raw', 'encoded', S, 1, dict(string_val=[b'x'])),
      ('image_b_raw', 'encoded', S, 1, dict(string_val=[b'x'])),
      ('audio_a_raw', 'wav', S, 1, dict(string_val=[b'x'])),
      ('video_a_raw', 'jpeg_frames', S, 2, dict(string_val=[b'x'])),
      ('video_a_frames', 'frames', U8, 5, dict(int_val=[7]))]:
    cases.append((f'{sig}: shape [1e6, 1e3, ...] from one value', sig,
                  {name: proto(dtype, [10**6] + [1000] * (rank - 1), **value)}, INVALID))
    cases.append((f'{sig}: dim -1 in the middle', sig,
                  {name: proto(dtype, [1] + [-1] * (rank - 1), **value)}, INVALID))
  out = [(name, 'grpc', request(sig, **inputs), codes) for name, sig, inputs, codes in cases]
  out += [
      ('unknown signature', 'grpc', request('nope', image=IMAGE), {'FAILED_PRECONDITION'}),
      ('unknown model', 'grpc', request('image_a', model='other', image=IMAGE), {'NOT_FOUND'}),
      ('unknown version', 'grpc', request('image_a', version=99, image=IMAGE), {'NOT_FOUND'}),
      ('unknown output filter', 'grpc',
       request('image_a', output_filter=['nope'], image=IMAGE), INVALID),
      ('duplicate output filter', 'grpc',
       request('image_a', output_filter=['logits', 'logits'], image=IMAGE), INVALID),
  ]
  return out


def rest_cases(max_request_bytes: int) -> list[tuple]:
  """(name, 'rest', raw HTTP request, expected HTTP statuses)."""
  image = IMAGE.tolist()
  deep = b'[' * 3000 + b']' * 3000
  cases = [
      ('JSON list as body', predict_body(b'[1, 2]'), {400}),
      ('JSON number as body', predict_body(b'7'), {400}),
      ('JSON string as body', predict_body(b'"x"'), {400}),
      ('JSON null as body', predict_body(b'null'), {400}),
      ('JSON true as body', predict_body(b'true'), {400}),
      ('empty body', predict_body(b''), {400}),
      ('whitespace body', predict_body(b'  \n '), {400}),
      ('non-UTF-8 body', predict_body(b'\xff\xfe{"a": 1}'), {400}),
      ('UTF-16 body', predict_body('{"inputs": []}'.encode('utf-16')), {400}),
      ('truncated JSON', predict_body(b'{"inputs": [1, 2'), {400}),
      ('JSON with a trailing comma', predict_body(b'{"inputs": [1,],}'), {400}),
      ('signature_name as a list', predict_body({'signature_name': ['a'], 'inputs': image}),
       {400}),
      ('signature_name as a number', predict_body({'signature_name': 3, 'inputs': image}),
       {400}),
      ('signature_name as an object',
       predict_body({'signature_name': {'a': 1}, 'inputs': image}), {400}),
      ('nesting of 3000 lists', predict_body(deep), {400}),
      ('nesting of 3000 lists inside inputs',
       predict_body(b'{"signature_name": "image_a", "inputs": ' + deep + b'}'), {400}),
      ('nesting of 3000 objects', predict_body(b'{"a":' * 3000 + b'1' + b'}' * 3000), {400}),
      ('lists nested 40 deep', predict_body({'signature_name': 'image_a',
                                             'inputs': json.loads('[' * 40 + ']' * 40)}),
       {400}),
      ('both instances and inputs',
       predict_body({'signature_name': 'image_a', 'inputs': image, 'instances': image}), {400}),
      ('neither instances nor inputs', predict_body({'signature_name': 'image_a'}), {400}),
      ('instances not a list', predict_body({'signature_name': 'image_a', 'instances': 5}),
       {400}),
      ('empty instances', predict_body({'signature_name': 'image_a', 'instances': []}), {400}),
      ('ragged instances', predict_body({'signature_name': 'image_a',
                                         'instances': [[1, 2], [3]]}), {400}),
      ('instances of objects with wrong keys',
       predict_body({'signature_name': 'image_a', 'instances': [{'x': 1}]}), {400}),
      ('300 instances', predict_body({'signature_name': 'image_a_raw',
                                      'instances': ['x'] * 300}), {400}),
      ('strings for a float input', predict_body({'signature_name': 'image_a',
                                                  'inputs': [['a'] * 3]}), {400}),
      ('bools for a float input', predict_body({'signature_name': 'image_a',
                                                'inputs': [[True]]}), {400}),
      ('1e39 for float32', predict_body(b'{"signature_name": "image_a", "inputs": [[[[1e39, '
                                        b'0, 0]]]]}'), {400}),
      ('uint8 300 in JSON', predict_body({'signature_name': 'video_a_frames',
                                          'inputs': [[[[[300, 0, 0]]]]]}), {400}),
      ('uint8 1.5 in JSON', predict_body({'signature_name': 'video_a_frames',
                                          'inputs': [[[[[1.5, 0, 0]]]]]}), {400}),
      ('wrong shape', predict_body({'signature_name': 'image_a', 'inputs': [[[[0, 0]]]]}),
       {400}),
      ('bad base64', predict_body({'signature_name': 'image_a_raw',
                                   'inputs': [{'b64': '***'}]}), {400}),
      ('b64 object with another key', predict_body({'signature_name': 'image_a_raw',
                                                    'inputs': [{'b64': 'eA==', 'x': 1}]}),
       {400}),
      ('a number for a string input', predict_body({'signature_name': 'image_a_raw',
                                                    'inputs': [5]}), {400}),
      ('46-byte WAV over REST', predict_body({'signature_name': 'audio_a_raw',
                                              'inputs': [b64(wav(1, 44_100))]}), {400}),
      ('WAV at 2^31-1 Hz over REST',
       predict_body({'signature_name': 'audio_a_raw', 'inputs': [b64(wav(100, (1 << 31) - 1))]}),
       {400}),
      ('PNG bomb over REST', predict_body({'signature_name': 'image_a_raw',
                                           'inputs': [b64(png_with_size(20_000, 20_000))]}),
       {400}),
      ('unknown signature over REST', predict_body({'signature_name': 'nope', 'inputs': image}),
       {400}),
      ('unknown model over REST',
       http('POST', '/v1/models/other:predict', json.dumps({'inputs': image}).encode()), {404}),
      ('unknown version over REST',
       http('POST', '/v1/models/polyvit/versions/99:predict', b'{}'), {404}),
      ('unknown verb', http('POST', '/v1/models/polyvit:explode', b'{}'), {400}),
      ('path outside /v1', http('GET', '/etc/passwd'), {404}),
      ('path with ..', http('GET', '/v1/models/../../etc/passwd'), {400, 404}),
      ('GET predict', http('GET', '/v1/models/polyvit:predict'), {400}),
      ('PUT', http('PUT', '/v1/models/polyvit:predict', b'{}'), {400}),
      ('DELETE', http('DELETE', '/v1/models/polyvit'), {400}),
      ('Content-Length abc', http('POST', '/v1/models/polyvit:predict', b'{}',
                                  {'Content-Length': 'abc'}), {400}),
      ('Content-Length -1', http('POST', '/v1/models/polyvit:predict', b'{}',
                                 {'Content-Length': '-1'}), {400}),
      ('Content-Length +2', http('POST', '/v1/models/polyvit:predict', b'{}',
                                 {'Content-Length': '+2'}), {400}),
      ('Content-Length 1e3', http('POST', '/v1/models/polyvit:predict', b'{}',
                                  {'Content-Length': '1e3'}), {400}),
      ('two Content-Lengths', http('POST', '/v1/models/polyvit:predict', b'{}',
                                   {'Content-Length': '2', 'content-length': '3'}), {400}),
      ('Content-Length over the limit', http('POST', '/v1/models/polyvit:predict', b'{}',
                                             {'Content-Length': str(max_request_bytes + 1)}),
       {413}),
      ('Content-Length 10^30', http('POST', '/v1/models/polyvit:predict', b'{}',
                                    {'Content-Length': '1' + '0' * 30}), {400}),
      ('missing Content-Length', http('POST', '/v1/models/polyvit:predict', b'',
                                      length=False), {400}),
      ('chunked body', http('POST', '/v1/models/polyvit:predict', b'2\r\n{}\r\n0\r\n\r\n',
                            {'Transfer-Encoding': 'chunked'}, length=False), {411}),
      ('101 headers', http('GET', '/v1/models/polyvit',
                           headers={f'X-H{i}': 'v' for i in range(101)}), {431}),
      ('request line of 70 KB', http('GET', '/v1/models/' + 'a' * 70_000), {414}),
      ('not HTTP at all', b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + b'\0' * 40 + b'\r\n\r\n',
       {400}),
      ('HTTP/2 preface', b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', {400, 505}),
  ]
  return [(name, 'rest', data, codes) for name, data, codes in cases]


def slow_rest_cases() -> list[tuple]:
  """Requests that stop half-way: answered 408 once the REST deadline passes."""
  return [
      ('body shorter than its Content-Length', 'rest',
       http('POST', '/v1/models/polyvit:predict', b'{"sig', {'Content-Length': '100'}), {408}),
      ('headers never finished', 'rest', b'POST /v1/models/polyvit:predict HTTP/1.1\r\nHo',
       {408}),
      ('request line never finished', 'rest', b'POST /v1/models/polyv', {408}),
  ]


# ------------------------------------------------------------------------------ senders
def send_grpc(stub, req, timeout: float = 60.0) -> tuple[str, str]:
  try:
    stub.Predict(req, timeout=timeout)
    return 'OK', ''
  except grpc.RpcError as e:
    return e.code().name, e.details() or ''


def send_rest(port: int, data: bytes, timeout: float = 30.0) -> tuple[int, str]:
  """(HTTP status, body) of one raw request on a fresh connection; (0, why) when the
  server closed the connection without a response."""
  with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
    try:
      s.sendall(data)
    except OSError:
      pass  # the server may refuse before reading everything; its answer is still there
    received = b''
    try:
      while True:
        chunk = s.recv(1 << 16)
        if not chunk:
          break
        received += chunk
        head, sep, body = received.partition(b'\r\n\r\n')
        if sep:
          lengths = [int(l.split(b':', 1)[1]) for l in head.split(b'\r\n')
                     if l.lower().startswith(b'content-length:')]
          if lengths and len(body) >= lengths[0]:
            break
    except (socket.timeout, ConnectionResetError) as e:
      if not received:
        return 0, f'no response ({type(e).__name__})'
  if not received.startswith(b'HTTP/1.'):
    return 0, f'no response ({received[:60]!r})'
  status = int(received.split(b' ', 2)[1])
  return status, received.partition(b'\r\n\r\n')[2].decode('utf-8', 'replace')
