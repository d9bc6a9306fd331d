"""Limits on media files and the checks that apply them before anything is decoded.

Every size, count and rate a file declares is checked here against a stated limit, in Python,
before a native decoder or a TF op can see it (a fatal check inside tensorflow-io or a TF
kernel aborts the whole process). Each check raises MediaError whose message names the value
and the limit (and the converter flag that sets it).

  check_file(path, limits)                     a regular file, not empty, not too large
  check_sample_rate(rate)                      MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE
  check_channels(channels)                     1 <= channels <= MAX_CHANNELS
  check_audio_length(samples, rate, limits)    0 < samples, samples / rate <= max seconds
  check_resampled_length(samples, rate, out_rate, min_samples)   the resampler's output fits
  check_pixels(width, height, limits)          0 < width x height <= max pixels
  check_frame_count(frames, fps, at, limits)   stored frames of a video within budget
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat

import tensorflow as tf

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 64


class MediaError(ValueError):
  """A media file cannot be converted; str() is the reason."""


@dataclasses.dataclass(frozen=True)
class MediaLimits:
  """Budgets per file (converter flags in brackets)."""
  max_file_bytes: int = 2 << 30          # --max_file_mb (2048)
  max_audio_seconds: float = 600.0       # --max_audio_seconds
  max_video_frames: int = 10_000         # --max_frames_per_video (stored frames)
  max_pixels: int = 50_000_000           # --max_decoded_pixels (per image or frame)

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if not value > 0:
        raise ValueError(f'MediaLimits.{field.name} must be > 0, got {value!r}')


_KINDS = ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO'),
          (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
          (stat.S_ISSOCK, 'a socket'))


def file_kind(mode: int) -> str:
  for test, name in _KINDS:
    if test(mode):
      return name
  return 'not a regular file'


def check_file(path: str, limits: MediaLimits = MediaLimits()) -> int:
  """The file's size in bytes; MediaError unless it is a non-empty regular file within
  `limits.max_file_bytes` (symlinks are followed; nothing is opened)."""
  if '://' in path:
    try:
      info = tf.io.gfile.stat(path)
    except tf.errors.NotFoundError:
      raise MediaError('file not found') from None
    if info.is_directory:
      raise MediaError('not a regular file (a directory)')
    size = int(info.length)
  else:
    try:
      st = os.stat(path)
    except FileNotFoundError:
      raise MediaError('file not found') from None
    except OSError as e:
      raise MediaError(f'cannot stat the file ({e.strerror})') from None
    if not stat.S_ISREG(st.st_mode):
      raise MediaError(f'not a regular file ({file_kind(st.st_mode)}); skipped without '
                       'opening it')
    size = int(st.st_size)
  if size == 0:
    raise MediaError('empty file')
  if size > limits.max_file_bytes:
    raise MediaError(f'file of {size} bytes exceeds the limit of {limits.max_file_bytes} '
                     'bytes (--max_file_mb)')
  return size


def check_sample_rate(rate) -> int:
  if not isinstance(rate, int) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
    raise MediaError(f'sample rate {rate} Hz outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz')
  return rate


def check_channels(channels) -> int:
  if not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS:
    raise MediaError(f'{channels} audio channels outside [1, {MAX_CHANNELS}]')
  return channels


def check_audio_length(samples: int, rate: int, limits: MediaLimits = MediaLimits()) -> float:
  """Duration in seconds of `samples` at `rate`; MediaError when empty or over budget."""
  if samples <= 0:
    raise MediaError('audio has no samples')
  seconds = samples / rate
  if seconds > limits.max_audio_seconds:
    raise MediaError(f'{seconds:.1f} s of audio ({samples} samples at {rate} Hz) exceeds '
                     f'{limits.max_audio_seconds:g} s (--max_audio_seconds)')
  return seconds


def check_resampled_length(samples: int, rate: int, out_rate: int, min_samples: int) -> int:
  """round(samples * out_rate / rate) (what resample.py makes); MediaError when under
  `min_samples` (the resampler must never be asked for fewer than one output sample)."""
  out = int(round(samples * out_rate / rate))
  if out < max(1, min_samples):
    raise MediaError(f'clip shorter than one analysis window ({samples} samples at {rate} Hz '
                     f'make {out} at {out_rate} Hz < {min_samples})')
  return out


def check_pixels(width, height, limits: MediaLimits = MediaLimits()) -> int:
  if not (isinstance(width, int) and isinstance(height, int)) or width <= 0 or height <= 0:
    raise MediaError(f'invalid picture size {width}x{height}')
  if width * height > limits.max_pixels:
    raise MediaError(f'{width}x{height} = {width * height} pixels exceeds '
                     f'{limits.max_pixels} (--max_decoded_pixels)')
  return width * height


def check_frame_count(frames: int, fps: float, at_seconds: float,
                      limits: MediaLimits = MediaLimits()) -> None:
  """MediaError when a video would store more than `limits.max_video_frames` frames."""
  if frames > limits.max_video_frames:
    at = f'{at_seconds:.1f} s' if math.isfinite(at_seconds) else str(at_seconds)
    raise MediaError(f'more than {limits.max_video_frames} frames at {fps:g} fps (a frame '
                     f'at {at}; --max_frames_per_video)')
