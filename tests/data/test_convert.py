"""The Beam converter on small folders with one corrupt file per modality."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import av
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
import tensorflow_io as tfio

from polyvit_tf.data import convert
from polyvit_tf.data import features
from polyvit_tf.data import records

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _image_file(path, fmt, value):
  pixels = np.zeros((24, 30, 3), np.uint8)
  pixels[..., 0] = value
  Image.fromarray(pixels).save(path, format=fmt)


def _mp3(path, wave, rate):
  with av.open(path, 'w', format='mp3') as container:
    stream = container.add_stream('libmp3lame', rate=rate)
    stream.layout = 'mono'
    frame = av.AudioFrame.from_ndarray(wave.astype(np.float32)[None], format='flt',
                                       layout='mono')
    frame.sample_rate = rate
    for packet in stream.encode(frame):
      container.mux(packet)
    for packet in stream.encode(None):
      container.mux(packet)


def _mp4(path, frames, fps):
  with av.open(path, 'w') as container:
    stream = container.add_stream('mpeg4', rate=fps)
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], 'yuv420p'
    for f in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(f, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode(None):
      container.mux(packet)


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
  root = tmp_path_factory.mktemp('media')
  for d in ('image/cat', 'image/dog', 'audio/a', 'audio/b', 'video/left', 'video/right'):
    os.makedirs(root / d)
  _image_file(root / 'image/cat/1.png', 'PNG', 10)
  _image_file(root / 'image/cat/2.jpg', 'JPEG', 20)
  _image_file(root / 'image/dog/3.bmp', 'BMP', 30)
  good = io.BytesIO()
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(good, format='JPEG')
  (root / 'image/dog/corrupt.jpg').write_bytes(good.getvalue()[:40])
  t = np.arange(44_100) / 44_100
  wave = 0.3 * np.sin(2 * np.pi * 440 * t)
  tf.io.write_file(str(root / 'audio/a/tone.wav'),
                   tf.audio.encode_wav(tf.constant(wave[:, None], tf.float32), 44_100))
  pcm = (wave[::2] * 32767).astype(np.int16)[:, None]
  tf.io.write_file(str(root / 'audio/b/tone.flac'), tfio.audio.encode_flac(pcm, rate=22_050))
  _mp3(str(root / 'audio/b/tone.mp3'), wave[::2], 22_050)
  (root / 'audio/a/corrupt.wav').write_bytes(b'RIFF\x24\x00\x00\x00WAVEfmt garbage')
  rng = np.random.default_rng(0)
  _mp4(str(root / 'video/left/a.mp4'), rng.integers(0, 255, (20, 48, 64, 3), np.uint8), 10)
  _mp4(str(root / 'video/right/b.mp4'), rng.integers(0, 255, (10, 48, 64, 3), np.uint8), 5)
  (root / 'video/right/corrupt.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'\x01' * 64)
  return root


def _read_back(directory, modality):
  files = records.split_files(str(directory), 'train')
  out = {}
  for serialized in tf.data.TFRecordDataset(files):
    ex = tf.io.parse_single_example(serialized, features.feature_spec(modality))
    out[ex['id'].numpy().decode()] = ex
  return out


@pytest.mark.parametrize('modality,converted,corrupt', [
    ('image', {'cat/1.png', 'cat/2.jpg', 'dog/3.bmp'}, 'dog/corrupt.jpg'),
    ('audio', {'a/tone.wav', 'b/tone.flac', 'b/tone.mp3'}, 'a/corrupt.wav'),
    ('video', {'left/a.mp4', 'right/b.mp4'}, 'right/corrupt.mp4'),
])
def test_folder_with_a_corrupt_file(folders, tmp_path, modality, converted, corrupt):
  items, classes = convert.items_from_folder(str(folders / modality), modality)
  opts = convert.ConvertOptions(modality, classes, video_fps=5.0, video_short_side=24)
  report = convert.run(items, opts, str(tmp_path), 'train', num_shards=2)
  assert report.converted == len(converted)
  assert [b['id'] for b in report.bad] == [corrupt]
  assert 'undecodable' in report.bad[0]['reason']
  saved = json.loads((tmp_path / 'train.report.json').read_text())
  assert saved['converted'] == len(converted) and saved['bad'][0]['id'] == corrupt
  assert len(records.split_files(str(tmp_path), 'train')) == 2
  info = records.read_info(str(tmp_path))
  assert info['splits']['train']['num_examples'] == len(converted)
  assert info['class_names'] == list(classes)
  examples = _read_back(tmp_path, modality)
  assert set(examples) == converted
  for example_id, ex in examples.items():
    label = classes.index(example_id.split('/')[0])
    assert ex['labels'].values.numpy().tolist() == [label]
    if modality == 'image':
      raw = ex['image/encoded'].numpy()
      assert raw[:4] in (b'\x89PNG', b'\xff\xd8\xff\xe0', b'\xff\xd8\xff\xdb')
      if example_id.endswith(('.png', '.jpg')):  # JPEG / PNG kept byte for byte
        assert raw == (folders / modality / example_id).read_bytes()
    elif modality == 'audio':
      samples = np.frombuffer(ex['audio/pcm16'].numpy(), '<i2')
      assert ex['audio/sample_rate'].numpy() == 16_000
      assert abs(len(samples) - 16_000) <= 1200  # 1 s (MP3 adds encoder padding)
      spectrum = np.abs(np.fft.rfft(samples[2000:10000]))
      assert abs(np.argmax(spectrum) * 16_000 / 8000 - 440) < 5
    else:
      frames = tf.sparse.to_dense(ex['video/frames']).numpy()
      assert len(frames) == {'left/a.mp4': 10, 'right/b.mp4': 10}[example_id]  # 2 s at 5 fps
      first = tf.io.decode_jpeg(frames[0]).numpy()
      assert first.shape == (24, 32, 3)  # short side 24, aspect kept
      assert float(ex['video/frame_rate'].numpy()) == 5.0


def test_manifest_labels_outside_classes(folders, tmp_path):
  manifest = tmp_path / 'm.csv'
  image = folders / 'image'
  manifest.write_text('path,labels,id\n'
                      f'{image}/cat/1.png,cat,one\n'
                      f'{image}/cat/2.jpg,cat;dog,two\n'
                      f'{image}/dog/3.bmp,bird,three\n'
                      f'{image}/dog/corrupt.jpg,dog,four\n'
                      f'{image}/cat/missing.png,1,five\n')
  items = convert.items_from_manifest(str(manifest), allow_outside_paths=True)
  opts = convert.ConvertOptions('image', ('cat', 'dog'))
  report = convert.run(items, opts, str(tmp_path / 'out'), 'train')
  bad = {b['id']: b['reason'] for b in report.bad}
  assert report.converted == 2
  assert set(bad) == {'three', 'four', 'five'}
  assert 'bird' in bad['three'] and 'undecodable' in bad['four']
  assert bad['five'] == 'file not found'
  examples = _read_back(tmp_path / 'out', 'image')
  assert examples['two']['labels'].values.numpy().tolist() == [0, 1]


@pytest.mark.slow
def test_command_line(folders, tmp_path):
  out = tmp_path / 'cli'
  result = subprocess.run(
      [sys.executable, '-m', 'polyvit_tf.data.convert', '--modality=image',
       f'--input={folders / "image"}', f'--output={out}', '--split=train', '--',
       '--runner=DirectRunner'],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
  assert '3 of 4 files converted' in result.stdout
  assert 'dog/corrupt.jpg: undecodable image' in result.stdout
