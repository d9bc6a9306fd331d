"""Media files as the inputs of a task's serving signatures (the client side).

A file is decoded here exactly as the converter (polyvit_tf.data.convert) decodes it for
training, with its own functions (polyvit_tf.data.media), so that anything the converter
ingests can be classified and the server sees what training saw:

  image task   any image PIL reads (JPEG, PNG, GIF, BMP, WebP, TIFF, ...) -> `<task>_raw`:
               JPEG / PNG bytes as stored, anything else re-encoded as PNG
  audio task   what media.audio_waveform reads (WAV, FLAC, MP3, OGG via tensorflow-io, the
               rest via PyAV) -> `<task>_raw`: a 16-bit PCM WAV of the mono clip resampled
               to 16 kHz
  video task   any video FFmpeg reads (MP4, AVI, MKV, MOV, WebM, ...) -> `<task>_raw`:
               JPEG frames at `video_fps` with the short side resized to
               `video_short_side` (the converter's defaults); a directory of JPEG / PNG
               frames -> `<task>_raw` as they are, in file-name order
  any task     .npy, one preprocessed example or a batch of them -> `<task>`

Before decoding, a file's declared size is checked against the decode budgets of
polyvit_tf.data.options (read from its header: PIL's image size, the WAV fmt chunk,
FFmpeg's stream parameters), so one hostile file cannot exhaust the client either. Every
problem is a MediaError naming the file's problem; the caller goes on with the next file.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import wave

import numpy as np

from polyvit_tf.data import filterbank
from polyvit_tf.data import media
from polyvit_tf.data import options

MediaError = media.MediaError
FRAME_EXTS = ('.jpg', '.jpeg', '.png')
DEFAULT_VIDEO_FPS = 25.0        # the converter's --video_fps
DEFAULT_VIDEO_SHORT_SIDE = 256  # the converter's --video_short_side


@dataclasses.dataclass
class Prepared:
  """One file's input: `value` is bytes (image, audio), a list of frame bytes (video) or
  an array of preprocessed examples (`tensor`)."""
  path: str
  kind: str  # 'raw' | 'tensor'
  value: object


# --------------------------------------------------------------------- header checks
def _check_pixels(width: int, height: int) -> None:
  if width * height > options.MAX_IMAGE_PIXELS:
    raise MediaError(f'{width} x {height} pixels exceed the decode budget of '
                     f'{options.MAX_IMAGE_PIXELS} pixels (max_image_pixels)')


def _check_audio(rate: float, seconds: float | None) -> None:
  if not options.MIN_SAMPLE_RATE <= rate <= options.MAX_SAMPLE_RATE:
    raise MediaError(f'sample rate {rate:g} Hz is outside [{options.MIN_SAMPLE_RATE}, '
                     f'{options.MAX_SAMPLE_RATE}] Hz')
  if seconds is not None and seconds > options.MAX_AUDIO_SECONDS:
    raise MediaError(f'{seconds:.1f} s of audio exceed the budget of '
                     f'{options.MAX_AUDIO_SECONDS:g} s (max_audio_seconds)')


def check_image_file(path: str) -> None:
  """The image's header size is within budget (PIL reads only the header here)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(path) as img:
      width, height = img.size
  except Exception as e:  # pylint: disable=broad-except  (PIL raises many kinds)
    raise MediaError(f'undecodable image ({type(e).__name__}: {str(e)[:160]})') from None
  _check_pixels(width, height)


def wav_header(data: bytes) -> tuple[int, int, int, int] | None:
  """(channels, sample rate, bits per sample, data bytes) of a RIFF/WAVE file, or None."""
  if len(data) < 12 or data[:4] != b'RIFF' or data[8:12] != b'WAVE':
    return None
  offset, fmt, size = 12, None, None
  while offset + 8 <= len(data) and (fmt is None or size is None):
    chunk, length = data[offset:offset + 4], struct.unpack('<I', data[offset + 4:offset + 8])[0]
    if chunk == b'fmt ' and length >= 16:
      fmt = struct.unpack('<HHIIHH', data[offset + 8:offset + 24])
    elif chunk == b'data':
      size = min(length, len(data) - offset - 8)
    offset += 8 + length + (length & 1)
  if fmt is None:
    return None
  return fmt[1], fmt[2], fmt[5], size or 0


def check_audio_file(path: str) -> None:
  """The clip's sample rate and duration (from the WAV header, or FFmpeg's stream
  parameters) are within budget, before anything is decoded or resampled."""
  with open(path, 'rb') as f:
    head = f.read(1 << 16)
  header = wav_header(head)
  if header is not None:
    channels, rate, bits, _ = header
    frames = (os.path.getsize(path) - 44) // max(1, channels * max(bits, 8) // 8)
    _check_audio(rate, frames / max(rate, 1))
    return
  import av  # pylint: disable=import-outside-toplevel
  try:
    with av.open(path) as container:
      if not container.streams.audio:
        raise MediaError('no audio stream')
      stream = container.streams.audio[0]
      seconds = (float(stream.duration * stream.time_base) if stream.duration
                 else (container.duration / 1e6 if container.duration else None))
      _check_audio(stream.rate or 0, seconds)
  except MediaError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise MediaError(f'undecodable audio ({type(e).__name__}: {str(e)[:160]})') from None


def check_video_file(path: str) -> None:
  """The video's frame size (FFmpeg's stream parameters) is within budget."""
  import av  # pylint: disable=import-outside-toplevel
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise MediaError('no video stream')
      stream = container.streams.video[0]
      _check_pixels(stream.codec_context.width, stream.codec_context.height)
  except MediaError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise MediaError(f'undecodable video ({type(e).__name__}: {str(e)[:160]})') from None


# ------------------------------------------------------------------------- decoding
def wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
  """A mono float waveform in [-1, 1] as a 16-bit PCM WAV (what the converter stores)."""
  pcm = np.clip(np.round(np.asarray(waveform, np.float64) * 32768.0), -32768, 32767)
  buffer = io.BytesIO()
  with wave.open(buffer, 'wb') as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(int(sample_rate))
    w.writeframes(pcm.astype('<i2').tobytes())
  return buffer.getvalue()


def frame_files(directory: str) -> list[str]:
  files = sorted(f for f in os.listdir(directory) if f.lower().endswith(FRAME_EXTS))
  if not files:
    raise MediaError(f'no frame images ({", ".join(FRAME_EXTS)}) in the directory')
  return [os.path.join(directory, f) for f in files]


def _read(path: str) -> bytes:
  with open(path, 'rb') as f:
    return f.read()


def prepare(path: str, modality: str, *, video_fps: float = DEFAULT_VIDEO_FPS,
            video_short_side: int = DEFAULT_VIDEO_SHORT_SIDE) -> Prepared:
  """`path` as the input of a `modality` task (see the module docstring); MediaError when
  it cannot be used."""
  try:
    if os.path.isdir(path):
      if modality != 'video':
        raise MediaError(f'a directory of frames is a video, but the task is {modality}')
      frames = []
      for f in frame_files(path):
        check_image_file(f)
        frames.append(_read(f))
      return Prepared(path, 'raw', frames)
    if not os.path.isfile(path):
      raise MediaError('file not found')
    if path.lower().endswith('.npy'):
      return Prepared(path, 'tensor', np.load(path, allow_pickle=False).astype(np.float32))
    if modality == 'image':
      check_image_file(path)
      return Prepared(path, 'raw', media.image_bytes(path))
    if modality == 'audio':
      check_audio_file(path)
      rate = filterbank.SAMPLE_RATE
      return Prepared(path, 'raw', wav_bytes(media.audio_waveform(path, rate), rate))
    if modality == 'video':
      check_video_file(path)
      return Prepared(path, 'raw', media.video_frames(
          path, video_fps, video_short_side, max_frames=options.MAX_VIDEO_FRAMES))
  except MediaError:
    raise
  except (OSError, ValueError) as e:
    raise MediaError(f'{type(e).__name__}: {str(e)[:200]}') from None
  raise MediaError(f'unknown modality {modality!r}')
