"""The client against the local PredictionService on a free loopback port (gRPC and REST),
every malformed-request class, and the client CLI on media files."""

import os
import subprocess
import sys

import grpc
import numpy as np
import portpicker
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import client as client_lib
from serving import local_server
from tests.export import fixtures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_REQUEST_BYTES = 1 << 20


@pytest.fixture(scope='module')
def server(exported_base):
  srv = local_server.LocalServer(exported_base, port=portpicker.pick_unused_port(),
                                 rest_port=portpicker.pick_unused_port(),
                                 max_request_bytes=MAX_REQUEST_BYTES)
  srv.start()
  yield srv
  srv.stop()


@pytest.fixture(scope='module', params=['grpc', 'rest'])
def client(request, server):
  if request.param == 'grpc':
    c = client_lib.GrpcClient(f'127.0.0.1:{server.port}')
  else:
    c = client_lib.RestClient(f'127.0.0.1:{server.rest_port}')
  yield c
  c.close()


@pytest.fixture(scope='module')
def loaded(exported_dir):
  return tf.saved_model.load(exported_dir)


def test_bound_to_loopback(server):
  assert server.host == '127.0.0.1'


def test_metadata_lists_every_signature(client, loaded):
  sigs = client.signatures()
  assert set(sigs) == set(loaded.signatures)
  assert sigs['video_a'].inputs == {'video': ('float32', (None, 4, 32, 32, 3))}
  assert sigs['video_a_raw'].inputs == {'jpeg_frames': ('string', (None, None))}
  assert sigs['audio_a'].outputs['probabilities'] == ('float32', (None, 6))
  assert sigs['image_a_raw'].outputs['top_k_names'] == ('string', (None, 5))
  assert sigs['video_a_raw'].outputs['logits'] == ('float32', (None, 4))


def test_predict_tensor_and_raw(client, loaded):
  x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 16, 1)).astype(np.float32)
  out = client.predict('audio_a', {'audio': x})
  ref = loaded.signatures['audio_a'](audio=tf.constant(x))
  np.testing.assert_allclose(out['logits'], ref['logits'].numpy(), atol=1e-5)
  assert [n.decode() if isinstance(n, bytes) else n for n in out['top_k_names'][0]] == [
      n.decode() for n in ref['top_k_names'].numpy()[0]]
  images = np.array([fixtures.image_bytes(0), fixtures.image_bytes(1, fmt='png')],
                    dtype=object)
  out = client.predict('image_a_raw', {'encoded': images}, output_filter=['logits'])
  assert list(out) == ['logits']
  np.testing.assert_allclose(out['logits'], loaded.signatures['image_a_raw'](
      encoded=tf.constant(list(images)))['logits'].numpy(), atol=1e-5)


def test_serving_default_is_the_first_task(client, loaded):
  x = np.zeros((1, 64, 16, 1), np.float32)
  out = client.predict('', {'audio': x})
  np.testing.assert_allclose(out['logits'], loaded.signatures['audio_a'](
      audio=tf.constant(x))['logits'].numpy(), atol=1e-5)


def _grpc_error(server, request) -> grpc.RpcError:
  with grpc.insecure_channel(f'127.0.0.1:{server.port}', options=[
      ('grpc.max_send_message_length', 64 << 20)]) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as e:
      stub.Predict(request, timeout=30)
  return e.value


def _request(signature: str, model: str = 'polyvit', **inputs) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature
  for name, value in inputs.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
  return request


IMAGE = np.zeros((1, 32, 32, 3), np.float32)
MALFORMED = {  # class: (request, expected status, words the message must contain)
    'unknown signature': (lambda: _request('nope', image=IMAGE), 'FAILED_PRECONDITION',
                          ['"nope"', 'not found']),
    'unknown model': (lambda: _request('image_a', model='other', image=IMAGE), 'NOT_FOUND',
                      ["'other'"]),
    'wrong dtype': (lambda: _request('image_a', image=IMAGE.astype(np.float64)),
                    'INVALID_ARGUMENT', ['float32', 'float64']),
    'wrong shape': (lambda: _request('image_a', image=np.zeros((1, 16, 32, 3), np.float32)),
                    'INVALID_ARGUMENT', ['(None, 32, 32, 3)', '(1, 16, 32, 3)']),
    'wrong input name': (lambda: _request('image_a', audio=IMAGE), 'INVALID_ARGUMENT',
                         ["missing input(s) ['image']", "unexpected input(s) ['audio']"]),
    'empty batch': (lambda: _request('image_a', image=IMAGE[:0]), 'INVALID_ARGUMENT',
                    ['empty batch']),
    'undecodable bytes': (lambda: _request('image_a_raw', encoded=np.array(
        [b'not an image'], dtype=object)), 'INVALID_ARGUMENT', ["'image_a_raw'", 'image']),
    'undecodable wav': (lambda: _request('audio_a_raw', wav=np.array(
        [b'RIFF....garbage'], dtype=object)), 'INVALID_ARGUMENT', ["'audio_a_raw'"]),
    'oversized payload': (lambda: _request('image_a', image=np.zeros(
        (300, 32, 32, 3), np.float32)), 'RESOURCE_EXHAUSTED', [str(MAX_REQUEST_BYTES)]),
}


@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_malformed_requests_are_rejected_and_server_keeps_serving(server, loaded, case):
  make, code, words = MALFORMED[case]
  error = _grpc_error(server, make())
  assert error.code().name == code, error.details()
  for w in words:
    assert w in error.details(), (w, error.details())
  # Still serving.
  out = client_lib.GrpcClient(f'127.0.0.1:{server.port}').predict('image_b', {'image': IMAGE})
  assert out['logits'].shape == (1, 5)


def test_rest_errors(server):
  rest = client_lib.RestClient(f'127.0.0.1:{server.rest_port}')
  with pytest.raises(client_lib.ClientError) as e:
    rest.predict('nope', {'image': IMAGE})
  assert e.value.code == 'INVALID_ARGUMENT' and '"nope" not found' in e.value.message
  with pytest.raises(client_lib.ClientError) as e:
    rest.predict('image_a_raw', {'encoded': np.array([b'junk'], dtype=object)})
  assert e.value.code == 'INVALID_ARGUMENT'
  with pytest.raises(client_lib.ClientError) as e:
    rest.predict('image_a', {'image': np.zeros((0, 32, 32, 3))})
  assert e.value.code == 'INVALID_ARGUMENT' and 'empty batch' in e.value.message
  with pytest.raises(client_lib.ClientError) as e:
    client_lib.RestClient(f'127.0.0.1:{server.rest_port}', model_name='other').signatures()
  assert e.value.code == 'NOT_FOUND'
  metrics = rest._request(f'http://127.0.0.1:{server.rest_port}/v1/models/polyvit')
  assert metrics['model_version_status'][0]['state'] == 'AVAILABLE'


def test_client_cli_on_media_files(server, tmp_path, capsys):
  """The client command line reads images, WAVs, a frame directory, a video file, .npy."""
  (tmp_path / 'a.jpg').write_bytes(fixtures.image_bytes(0))
  (tmp_path / 'b.png').write_bytes(fixtures.image_bytes(1, fmt='png'))
  (tmp_path / 'c.wav').write_bytes(fixtures.wav_bytes(2))
  frames_dir = tmp_path / 'clip'
  frames_dir.mkdir()
  for i, jpeg in enumerate(fixtures.jpeg_frames(fixtures.video_frames(3))):
    (frames_dir / f'{i:03d}.jpg').write_bytes(jpeg)
  np.save(tmp_path / 'e.npy', np.zeros((32, 32, 3), np.float32))
  video = tmp_path / 'd.mp4'
  _write_mp4(str(video), fixtures.video_frames(4))
  address = f'--server=127.0.0.1:{server.port}'

  def cli(*args, status=0):
    assert client_lib.main(['client', address, *args]) == status
    out, err = capsys.readouterr()
    return out.strip().splitlines(), err

  listing, _ = cli('--list')
  assert 'video_a_raw(jpeg_frames: string[None, None]) -> logits: float32[None, 4], ' \
         'probabilities: float32[None, 4], top_k_ids: int32[None, 4], ' \
         'top_k_names: string[None, 4], top_k_scores: float32[None, 4]' in listing
  files = [str(tmp_path / n) for n in ('a.jpg', 'b.png', 'e.npy')]
  lines, _ = cli('--task=image_a', *files)
  assert [l.split(':')[0] for l in lines] == files
  assert all(len(l.split(', ')) == 5 and 'digit ' in l for l in lines)
  assert len(cli('--task=audio_a', str(tmp_path / 'c.wav'))[0]) == 1
  lines, _ = cli('--task=video_a', str(frames_dir), str(video))
  assert len(lines) == 2 and all('class_' in l for l in lines)
  _, err = cli('--task=nope', files[0], status=1)
  assert "no signature 'nope'" in err


@pytest.mark.slow
def test_client_module_over_rest(server, tmp_path):
  """`python -m serving.client --rest` in a subprocess prints what the gRPC path prints."""
  image = tmp_path / 'a.jpg'
  image.write_bytes(fixtures.image_bytes(0))
  grpc_lines = client_lib.classify(client_lib.GrpcClient(f'127.0.0.1:{server.port}'),
                                   'image_a', [str(image)])
  env = {**os.environ, 'PYTHONPATH': ROOT, 'TF_CPP_MIN_LOG_LEVEL': '2'}
  result = subprocess.run(
      [sys.executable, '-m', 'serving.client', f'--server=127.0.0.1:{server.rest_port}',
       '--rest', '--task=image_a', str(image)],
      capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip().splitlines() == grpc_lines


def _write_mp4(path: str, frames: np.ndarray, container_format: str | None = None) -> None:
  import av
  with av.open(path, 'w', format=container_format) as container:
    stream = container.add_stream('mpeg4', rate=25)
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = 'yuv420p'
    for f in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(f, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def _audio_file(path: str, fmt: str, codec: str, rate: int, seconds: float = 1.0) -> None:
  """A tone encoded by FFmpeg (PyAV), fed in frames of 1024 samples."""
  import av
  wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(
      np.float32)
  layout = 'stereo' if codec == 'vorbis' else 'mono'  # FFmpeg's vorbis encoder wants 2
  with av.open(path, 'w', format=fmt) as container:
    stream = container.add_stream(codec, rate=rate, options={'strict': 'experimental'})
    stream.layout = layout
    sample_format = stream.codec_context.format.name
    for start in range(0, len(wave), 1024):
      chunk = wave[start:start + 1024]
      chunk = np.stack([chunk] * (2 if layout == 'stereo' else 1))
      if sample_format.startswith('s16'):
        chunk = (chunk * 32767).astype(np.int16)
      elif sample_format.startswith('s32'):
        chunk = (chunk * 2147483647).astype(np.int32)
      if not sample_format.endswith('p'):
        chunk = chunk.reshape(1, -1)
      frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout=layout)
      frame.sample_rate = rate
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode(None):
      container.mux(packet)


@pytest.mark.slow
def test_client_takes_every_converter_format(server, tmp_path, capsys):
  """WebP, TIFF, GIF, BMP, FLAC, MP3, OGG, MKV, ... decoded on the client side as the
  converter decodes them; one line per file, a bad file's own error, exit status 1."""
  from PIL import Image
  from tests.serving import hostile
  pixels = tf.io.decode_jpeg(fixtures.image_bytes(5)).numpy()
  images = []
  for fmt, ext in (('WEBP', 'webp'), ('TIFF', 'tiff'), ('GIF', 'gif'), ('BMP', 'bmp')):
    images.append(str(tmp_path / f'i.{ext}'))
    Image.fromarray(pixels).save(images[-1], format=fmt)
  (tmp_path / 'corrupt.jpg').write_bytes(b'\xff\xd8\xff not a JPEG')
  images.insert(2, str(tmp_path / 'corrupt.jpg'))
  audio = [str(tmp_path / n) for n in ('a.flac', 'a.mp3', 'a.ogg')]
  _audio_file(audio[0], 'flac', 'flac', 22_050)
  _audio_file(audio[1], 'mp3', 'libmp3lame', 16_000)
  _audio_file(audio[2], 'ogg', 'vorbis', 44_100)
  (tmp_path / 'one_hertz.wav').write_bytes(hostile.wav(16_000, 1))
  audio.insert(1, str(tmp_path / 'one_hertz.wav'))
  video = str(tmp_path / 'clip.mkv')
  _write_mp4(video, fixtures.video_frames(8), container_format='matroska')
  address = f'--server=127.0.0.1:{server.port}'

  def cli(task, files, status):
    assert client_lib.main(['client', address, f'--task={task}', *files]) == status
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l.split(': ')[0] for l in lines] == files  # one line per file, in order
    return dict(zip(files, lines))

  lines = cli('image_a', images, 1)
  assert 'error: undecodable image' in lines[images[2]]
  assert all('digit ' in lines[f] for f in images if f != images[2])
  lines = cli('audio_a', audio, 1)
  assert 'error: sample rate 1 Hz is outside [1000, 384000] Hz' in lines[audio[1]]
  assert all('class_' in lines[f] for f in audio if f != audio[1])
  lines = cli('video_a', [video], 0)
  assert 'class_' in lines[video]
