"""Decoding media files for the converter (Python side; not used inside tf.data graphs).

  image_bytes(path, limits)      JPEG/PNG bytes as stored; other formats re-encoded as PNG
  audio_waveform(path, rate, limits)   mono float32 waveform resampled to `rate` (16 kHz):
                                 PCM/float WAV read in Python (wav.py), anything else FFmpeg
                                 reads with PyAV
  video_frames(path, fps, short_side, max_frames, limits=...)   JPEG frames sampled at `fps`

Each raises MediaError with a short reason when a file is empty, corrupt, unusable or over
a budget of `media_checks.MediaLimits`; every declared size, rate and count is checked
(media_checks.py) before the decoder or a TF op is handed it, so no file can reach a fatal
native check.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
from PIL import Image
import tensorflow as tf

from polyvit_tf import error_text
from polyvit_tf.data import filterbank
from polyvit_tf.data import media_checks
from polyvit_tf.data import resample as resample_lib
from polyvit_tf.data import wav
from polyvit_tf.data.media_checks import MediaError, MediaLimits

__all__ = ['MediaError', 'MediaLimits', 'image_bytes', 'audio_waveform', 'video_frames']

DEFAULT_LIMITS = MediaLimits()


def _read(path: str, limits: MediaLimits) -> bytes:
  media_checks.check_file(path, limits)
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


def image_bytes(path: str, limits: MediaLimits = DEFAULT_LIMITS) -> bytes:
  """The image file's bytes if JPEG or PNG (after checking it decodes), else a PNG of it.
  The picture size in the header is checked against `limits.max_pixels` before decoding."""
  data = _read(path, limits)
  try:
    with Image.open(io.BytesIO(data)) as img:
      media_checks.check_pixels(*img.size, limits)
      img.load()
      fmt = img.format
      if fmt in ('JPEG', 'PNG'):
        return data
      buffer = io.BytesIO()
      img.convert('RGB').save(buffer, format='PNG')
      return buffer.getvalue()
  except MediaError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise MediaError(f'undecodable image ({error_text.short(e)})') from None


def _mono(samples: np.ndarray) -> np.ndarray:
  return samples.mean(axis=-1).astype(np.float32) if samples.ndim == 2 else samples


def _decode_wav(path: str, size: int, limits: MediaLimits) -> tuple[np.ndarray, int]:
  with tf.io.gfile.GFile(path, 'rb') as f:
    header = wav.read_header(f, size)
    media_checks.check_audio_length(header.frames, header.sample_rate, limits)
    return _mono(wav.decode(f, header)), header.sample_rate


def _decode_av(path: str, limits: MediaLimits) -> tuple[np.ndarray, int]:
  """Any audio FFmpeg reads: rate and channels checked before decoding, the duration budget
  while decoding (decoding stops as soon as it is exceeded)."""
  import av  # pylint: disable=g-import-not-at-top
  chunks, rate, total = [], None, 0
  planar = av.AudioResampler(format='fltp')  # same layout and rate, planar float
  with av.open(path) as container:
    if not container.streams.audio:
      raise MediaError('no audio stream')
    stream = container.streams.audio[0]
    media_checks.check_sample_rate(int(stream.codec_context.sample_rate or 0))
    media_checks.check_channels(int(stream.codec_context.channels or 0))
    for frame in container.decode(stream):
      if rate is None:
        rate = media_checks.check_sample_rate(int(frame.sample_rate or 0))
      elif frame.sample_rate != rate:
        raise MediaError(f'sample rate changes within the stream ({rate} -> '
                         f'{frame.sample_rate} Hz)')
      total += frame.samples
      if total / rate > limits.max_audio_seconds:
        media_checks.check_audio_length(total, rate, limits)
      for converted in planar.resample(frame):
        chunks.append(converted.to_ndarray().mean(axis=0))  # (channels, samples) -> mono
    for converted in planar.resample(None):
      chunks.append(converted.to_ndarray().mean(axis=0))
  if not chunks:
    raise MediaError('no decodable audio frames')
  out = np.concatenate(chunks).astype(np.float32)
  if not np.isfinite(out).all():
    raise MediaError('non-finite audio samples')
  return out, int(rate)


def audio_waveform(path: str, sample_rate: int = filterbank.SAMPLE_RATE,
                   limits: MediaLimits = DEFAULT_LIMITS) -> np.ndarray:
  """Mono float32 waveform in [-1, 1] at `sample_rate` Hz."""
  size = media_checks.check_file(path, limits)
  try:
    if os.path.splitext(path)[1].lower() == '.wav':
      waveform, rate = _decode_wav(path, size, limits)
    else:
      waveform, rate = _decode_av(path, limits)
  except MediaError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise MediaError(f'undecodable audio ({error_text.short(e)})') from None
  media_checks.check_audio_length(waveform.size, rate, limits)
  window, _, _ = filterbank.frame_geometry(sample_rate)
  media_checks.check_resampled_length(waveform.size, rate, sample_rate, window)
  out = resample_lib.resample(waveform, rate, sample_rate).numpy()
  return np.clip(out, -1.0, 1.0)


def _resize_short_side(img: Image.Image, short_side: int) -> Image.Image:
  if short_side <= 0:
    return img
  w, h = img.size
  scale = short_side / min(w, h)
  return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)


def video_frames(path: str, fps: float, short_side: int = 0, max_frames: int = 0,
                 jpeg_quality: int = 90, limits: MediaLimits = DEFAULT_LIMITS) -> list[bytes]:
  """JPEG frames sampled at `fps` (the frame shown at each instant k / fps), short side
  resized to `short_side` (0: as is); at most `max_frames` (0: all) are kept. Over
  `limits.max_video_frames` stored frames (e.g. a timestamp jump a slower source would fill
  by repeating a frame), 20x that many decoded frames or `limits.max_pixels` per frame the
  file is refused."""
  import av  # pylint: disable=g-import-not-at-top
  if not (fps > 0 and math.isfinite(fps)):
    raise ValueError(f'fps must be a positive number, got {fps!r}')
  media_checks.check_file(path, limits)
  out: list[bytes] = []
  step = 1.0 / fps
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise MediaError('no video stream')
      stream = container.streams.video[0]
      if stream.codec_context.width or stream.codec_context.height:
        media_checks.check_pixels(stream.codec_context.width, stream.codec_context.height,
                                  limits)
      next_time, start, decoded = 0.0, None, 0
      for frame in container.decode(stream):
        decoded += 1
        if decoded > 20 * limits.max_video_frames:
          raise MediaError(f'more than {20 * limits.max_video_frames} decoded frames '
                           '(20 x --max_frames_per_video)')
        t = frame.time
        if t is None or not math.isfinite(t):
          t = len(out) * step
        start = t if start is None else start
        t -= start
        if t + 1e-6 < next_time:
          continue
        repeats = int(math.floor((t + 1e-6 - next_time) / step)) + 1  # a slower source
        wanted = len(out) + repeats                                  # repeats its frame
        if max_frames and wanted >= max_frames:
          repeats = max_frames - len(out)
        else:
          media_checks.check_frame_count(wanted, fps, t, limits)
        media_checks.check_pixels(frame.width, frame.height, limits)
        img = _resize_short_side(frame.to_image().convert('RGB'), short_side)
        buffer = io.BytesIO()
        img.save(buffer, format='JPEG', quality=jpeg_quality)
        out.extend([buffer.getvalue()] * repeats)
        next_time += repeats * step
        if max_frames and len(out) >= max_frames:
          return out
  except MediaError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise MediaError(f'undecodable video ({error_text.short(e)})') from None
  if not out:
    raise MediaError('no decodable video frames')
  return out
