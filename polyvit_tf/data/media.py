"""Decoding media files for the converter (Python side; not used inside tf.data graphs).

  image_bytes(path)              JPEG/PNG bytes as stored; other formats re-encoded as PNG
  audio_waveform(path)           mono float32 waveform resampled to 16 kHz (tensorflow-io for
                                 WAV/FLAC/MP3/OGG, PyAV for anything else FFmpeg reads)
  video_frames(path, fps, short_side)   JPEG frames sampled at `fps`, short side resized

Each raises MediaError with a short reason when a file is empty, corrupt or unusable.
"""

from __future__ import annotations

import io
import os
import re

import numpy as np
from PIL import Image
import tensorflow as tf

from polyvit_tf.data import filterbank
from polyvit_tf.data import resample as resample_lib

TFIO_AUDIO = ('.wav', '.flac', '.mp3', '.ogg')


class MediaError(ValueError):
  """A media file cannot be converted; str() is the reason."""


def _short(e: Exception) -> str:
  """`Type: message` without TF's function-node and op decorations, at most 200 chars."""
  text = re.sub(r'\{\{function_node [^}]*\}\}\s*', '', str(e))
  text = re.sub(r'\s*\[Op:[^\]]*\].*$', '', text, flags=re.S)
  return f'{type(e).__name__}: {text.strip()[:200]}'


def _read(path: str) -> bytes:
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      data = f.read()
  except tf.errors.NotFoundError:
    raise MediaError('file not found') from None
  except (tf.errors.OpError, OSError) as e:
    raise MediaError(f'unreadable file ({type(e).__name__})') from None
  if not data:
    raise MediaError('empty file')
  return data


def image_bytes(path: str) -> bytes:
  """The image file's bytes if JPEG or PNG (after checking it decodes), else a PNG of it."""
  data = _read(path)
  try:
    with Image.open(io.BytesIO(data)) as img:
      img.load()
      fmt = img.format
      if fmt in ('JPEG', 'PNG'):
        return data
      buffer = io.BytesIO()
      img.convert('RGB').save(buffer, format='PNG')
      return buffer.getvalue()
  except Exception as e:  # pylint: disable=broad-except
    raise MediaError(f'undecodable image ({_short(e)})') from None


def _to_mono_float(samples: np.ndarray) -> np.ndarray:
  if samples.dtype == np.int16:
    samples = samples.astype(np.float32) / 32768.0
  elif samples.dtype == np.int32:
    samples = samples.astype(np.float32) / 2147483648.0
  elif samples.dtype == np.uint8:
    samples = (samples.astype(np.float32) - 128.0) / 128.0
  samples = samples.astype(np.float32)
  return samples.mean(axis=-1) if samples.ndim == 2 else samples


def _decode_tfio(path: str) -> tuple[np.ndarray, int]:
  import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top
  audio = tfio.audio.AudioIOTensor(path)
  return _to_mono_float(audio.to_tensor().numpy()), int(audio.rate.numpy())


def _decode_av(path: str) -> tuple[np.ndarray, int]:
  import av  # pylint: disable=g-import-not-at-top
  chunks, rate = [], None
  with av.open(path) as container:
    if not container.streams.audio:
      raise MediaError('no audio stream')
    stream = container.streams.audio[0]
    for frame in container.decode(stream):
      rate = frame.sample_rate
      chunks.append(frame.to_ndarray(format='fltp').mean(axis=0))  # planar float, mono
  if not chunks:
    raise MediaError('no decodable audio frames')
  return np.concatenate(chunks).astype(np.float32), int(rate)


def audio_waveform(path: str, sample_rate: int = filterbank.SAMPLE_RATE) -> np.ndarray:
  """Mono float32 waveform in [-1, 1] at `sample_rate` Hz."""
  _read(path)  # empty files fail here with a clear reason
  ext = os.path.splitext(path)[1].lower()
  try:
    if ext in TFIO_AUDIO:
      waveform, rate = _decode_tfio(path)
    else:
      waveform, rate = _decode_av(path)
  except MediaError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise MediaError(f'undecodable audio ({_short(e)})') from None
  if waveform.size == 0:
    raise MediaError('audio has no samples')
  out = resample_lib.resample(waveform, rate, sample_rate).numpy()
  window, _, _ = filterbank.frame_geometry(sample_rate)
  if out.size < window:
    raise MediaError(f'clip shorter than one analysis window ({out.size} samples < {window})')
  return np.clip(out, -1.0, 1.0)


def _resize_short_side(img: Image.Image, short_side: int) -> Image.Image:
  if short_side <= 0:
    return img
  w, h = img.size
  scale = short_side / min(w, h)
  return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)


def video_frames(path: str, fps: float, short_side: int = 0,
                 max_frames: int = 0, jpeg_quality: int = 90) -> list[bytes]:
  """JPEG frames sampled at `fps` (the frame shown at each instant k / fps), short side
  resized to `short_side` (0: as is); at most `max_frames` (0: all)."""
  import av  # pylint: disable=g-import-not-at-top
  _read(path)
  out: list[bytes] = []
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise MediaError('no video stream')
      stream = container.streams.video[0]
      next_time, step = 0.0, 1.0 / fps
      start = None
      for frame in container.decode(stream):
        t = frame.time if frame.time is not None else len(out) * step
        start = t if start is None else start
        t -= start
        if t + 1e-6 < next_time:
          continue
        img = _resize_short_side(frame.to_image().convert('RGB'), short_side)
        buffer = io.BytesIO()
        img.save(buffer, format='JPEG', quality=jpeg_quality)
        encoded = buffer.getvalue()
        while t + 1e-6 >= next_time:  # a slower source repeats its frame
          out.append(encoded)
          next_time += step
          if max_frames and len(out) >= max_frames:
            return out
  except MediaError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise MediaError(f'undecodable video ({_short(e)})') from None
  if not out:
    raise MediaError('no decodable video frames')
  return out
