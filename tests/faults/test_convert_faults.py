"""The converter never aborts on a file: forged WAV headers, rates out of range, budgets,
special files, symlink loops, a video with a timestamp jump, a forged PNG size, manifests
with bad lines or paths outside their folder. Each lands in <split>.report.json with a
reason naming it; the other files are converted."""

from __future__ import annotations

import io
import json
import os
import pathlib
import struct
import subprocess
import sys
import types
import zlib

import numpy as np
from PIL import Image
import pytest

from polyvit_tf.data import convert
from polyvit_tf.data import media
from polyvit_tf.data import media_checks
from polyvit_tf.data import records
from tests.faults import corrupt

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'TF_CPP_MIN_LOG_LEVEL': '2',
       'CUDA_VISIBLE_DEVICES': ''}


def _audio_folder(root: pathlib.Path) -> pathlib.Path:
  """a/good.wav and, in b/, one file per way a WAV used to abort, hang or blow up the run."""
  (root / 'a').mkdir(parents=True)
  (root / 'b').mkdir()
  corrupt.wav(root / 'a/good.wav', corrupt.tone(16_000))
  # data size 0xFFFFFFFE: tensorflow-io aborted (negative shape dimension), exit 134
  corrupt.wav(root / 'b/huge_size.wav', corrupt.tone(500), data_size=0xFFFF_FFFE)
  # one sample at 44.1 kHz resamples to 0 samples: the FFT's fatal check, exit 134
  corrupt.wav(root / 'b/one_sample.wav', corrupt.tone(1), rate=44_100)
  corrupt.wav(root / 'b/rate_0.wav', corrupt.tone(16_000), rate=0)  # exit 1, file not named
  corrupt.wav(root / 'b/rate_2.wav', corrupt.tone(16_000), rate=2)  # 32 KB -> a 256 MB record
  corrupt.wav(root / 'b/long.wav', corrupt.tone(16_000 * 6))  # 6 s > --max_audio_seconds=5
  os.mkfifo(root / 'b/fifo.wav')  # opening it blocked the run forever
  os.symlink('..', root / 'b/loop')  # b/loop/b/loop/...: walked ~40 levels deep
  return root


REASONS = {
    'b/huge_size.wav': 'data chunk declares 4294967294 bytes, 1000 follow',
    'b/one_sample.wav': 'clip shorter than one analysis window (1 samples at 44100 Hz',
    'b/rate_0.wav': 'sample rate 0 Hz outside [1000, 192000] Hz',
    'b/rate_2.wav': 'sample rate 2 Hz outside [1000, 192000] Hz',
    'b/long.wav': '6.0 s of audio (96000 samples at 16000 Hz) exceeds 5 s (--max_audio_seconds)',
    'b/fifo.wav': 'not a regular file (a FIFO)',
    'b/loop': 'symlink loop',
}


@pytest.mark.slow
def test_audio_cli_goes_on_past_every_bad_wav(tmp_path):
  folder = _audio_folder(tmp_path / 'in')
  out = tmp_path / 'out'
  proc = subprocess.run(
      [sys.executable, '-m', 'polyvit_tf.data.convert', '--modality=audio', f'--input={folder}',
       f'--output={out}', '--max_audio_seconds=5'],
      cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'1 of {1 + len(REASONS)} files converted' in proc.stdout
  report = json.loads((out / 'train.report.json').read_text())
  bad = {b['id']: b['reason'] for b in report['bad']}
  assert sorted(bad) == sorted(REASONS)
  for name, reason in REASONS.items():
    assert reason in bad[name], (name, bad[name])
    assert f'{folder / name}: ' in proc.stdout  # named in the summary too
  assert report['converted'] == 1
  assert not list(out.glob('beam-temp*')) and not list(out.glob('.train.bad*'))
  assert os.path.getsize(out / 'train-00000-of-00001.tfrecord') < 40_000  # 1 s of int16


def test_timestamp_jump_video_is_refused_not_a_64_mb_record(tmp_path):
  jump, short = tmp_path / 'jump.mp4', tmp_path / 'short.mp4'
  corrupt.timestamp_jump_mp4(jump)  # frames at 0 s and 4000 s: 100,001 frames at 25 fps
  corrupt.short_mp4(short)
  assert os.path.getsize(jump) < 1000
  with pytest.raises(media.MediaError, match=r'more than 10000 frames at 25 fps \(a frame at '
                     r'4000.0 s; --max_frames_per_video\)'):
    media.video_frames(str(jump), 25.0)
  assert len(media.video_frames(str(jump), 25.0, max_frames=30)) == 30  # truncation asked for
  assert len(media.video_frames(str(short), 5.0)) == 10
  small = media_checks.MediaLimits(max_video_frames=5)
  with pytest.raises(media.MediaError, match='more than 5 frames at 5 fps'):
    media.video_frames(str(short), 5.0, limits=small)
  with pytest.raises(media.MediaError, match=r'16x16 = 256 pixels exceeds 100'):
    media.video_frames(str(short), 5.0, limits=media_checks.MediaLimits(max_pixels=100))


def _png_declaring(width: int, height: int) -> bytes:
  """A 4x4 PNG whose IHDR (with a valid CRC) claims width x height."""
  buffer = io.BytesIO()
  Image.fromarray(np.zeros((4, 4), np.uint8)).save(buffer, format='PNG')
  data = bytearray(buffer.getvalue())
  ihdr = struct.pack('>II', width, height) + bytes(data[24:29])
  data[16:29] = ihdr
  data[29:33] = struct.pack('>I', zlib.crc32(b'IHDR' + ihdr))
  return bytes(data)


def test_pixel_budget_refuses_a_forged_png_before_decoding(tmp_path):
  bomb = tmp_path / 'bomb.png'
  bomb.write_bytes(_png_declaring(8000, 8000))  # 64 M pixels declared in 70 bytes
  with pytest.raises(media.MediaError, match=r'8000x8000 = 64000000 pixels exceeds '
                     r'50000000 \(--max_decoded_pixels\)'):
    media.image_bytes(str(bomb))
  bomb.write_bytes(_png_declaring(100_000, 100_000))  # PIL's own guard stops it at open
  with pytest.raises(media.MediaError, match=r'DecompressionBombError: Image size '
                     r'\(10000000000 pixels\)'):
    media.image_bytes(str(bomb))
  fine = tmp_path / 'fine.png'
  fine.write_bytes(_png_declaring(4, 4))
  assert media.image_bytes(str(fine)) == fine.read_bytes()


def test_special_files_and_sizes_are_checked_without_opening(tmp_path):
  os.mkfifo(tmp_path / 'pipe.jpg')
  with pytest.raises(media.MediaError, match=r'not a regular file \(a FIFO\)'):
    media.image_bytes(str(tmp_path / 'pipe.jpg'))
  with pytest.raises(media.MediaError, match=r'not a regular file \(a character device\)'):
    media.audio_waveform('/dev/zero')
  big = tmp_path / 'big.png'
  big.write_bytes(b'\0' * 2048)
  with pytest.raises(media.MediaError, match='file of 2048 bytes exceeds the limit of 1024'):
    media.image_bytes(str(big), media_checks.MediaLimits(max_file_bytes=1024))


def test_manifest_lines_and_paths_are_checked_and_the_run_goes_on(tmp_path):
  root = tmp_path / 'set'
  (root / 'img').mkdir(parents=True)
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / 'img/ok.png')
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'outside.png')
  os.symlink(tmp_path / 'outside.png', root / 'img/link_out.png')
  manifest = root / 'm.jsonl'
  manifest.write_text('\n'.join([
      json.dumps({'path': 'img/ok.png', 'label': 'cat'}),
      '{"path": "img/ok.png", "label": ',  # line 2: cut short
      '["img/ok.png", "cat"]',  # line 3: not an object
      json.dumps({'label': 'cat'}),  # line 4: no path
      json.dumps({'path': '../outside.png', 'label': 'cat', 'id': 'up'}),
      json.dumps({'path': str(tmp_path / 'outside.png'), 'label': 'cat', 'id': 'absolute'}),
      json.dumps({'path': 'img/link_out.png', 'label': 'cat', 'id': 'link'}),
  ]) + '\n')
  items = convert.items_from_manifest(str(manifest))
  report = convert.run(items, convert.ConvertOptions('image', ('cat',)), str(tmp_path / 'out'),
                       'train')
  bad = {b['id']: b['reason'] for b in report.bad}
  assert report.converted == 1
  assert bad[f'{manifest}:2'].startswith('manifest line 2: not valid JSON')
  assert bad[f'{manifest}:3'] == 'manifest line 3: a JSON list, not an object'
  assert bad[f'{manifest}:4'] == 'manifest line 4: no "path"'
  for line, name in ((5, 'up'), (6, 'absolute'), (7, 'link')):
    assert bad[name].startswith(f'manifest line {line}: path ')
    assert 'is outside the manifest\'s folder' in bad[name]
    assert '--allow_outside_paths' in bad[name]
  allowed = convert.items_from_manifest(str(manifest), allow_outside_paths=True)
  assert sum(not i.problem for i in allowed) == 4


def test_csv_manifest_rows_and_header(tmp_path):
  manifest = tmp_path / 'm.csv'
  manifest.write_text('path,label\nok.png,cat\n"a,b",cat,extra\n,cat\n')
  items = convert.items_from_manifest(str(manifest))
  assert [i.problem for i in items] == [
      '', 'manifest line 3: 3 fields, the header has 2', 'manifest line 4: no "path"']
  os.mkfifo(tmp_path / 'fifo.csv')
  with pytest.raises(convert.ConversionError, match=r'fifo.csv: not a regular file \(a FIFO\)'):
    convert.items_from_manifest(str(tmp_path / 'fifo.csv'))
  manifest.write_text('file,label\nok.png,cat\n')
  with pytest.raises(convert.ConversionError, match=r'm.csv: line 1: the CSV header '
                     r"\['file', 'label'\] has no \"path\" column"):
    convert.items_from_manifest(str(manifest))


def test_cli_main_reports_a_bad_manifest_without_a_traceback(tmp_path, monkeypatch, capsys):
  manifest = tmp_path / 'm.csv'
  manifest.write_bytes(b'path,label\nok.png,\xff\xfe\n')
  monkeypatch.setattr(convert, 'FLAGS', types.SimpleNamespace(
      input='', manifest=str(manifest), modality='image', allow_outside_paths=False,
      class_names=''))  # what app.run hands main(); the manifest fails before any other flag
  with pytest.raises(SystemExit) as e:
    convert.main(['convert'])
  assert e.value.code == 2 and e.value.__cause__ is None
  assert capsys.readouterr().err == f'error: {manifest}: line 2: not UTF-8 text\n'
