"""Makers of broken files for the fault tests: corrupted copies, forged WAV headers, special
files, symlink loops and a video with a timestamp jump (all built in the test's tmp dir)."""

from __future__ import annotations

import fractions
import os
import struct

import numpy as np


def truncate(path, keep: int) -> None:
  with open(path, 'r+b') as f:
    f.truncate(keep)


def zero(path) -> None:
  size = os.path.getsize(path)
  with open(path, 'wb') as f:
    f.write(b'\0' * size)


def flip_bit(path, offset: int, bit: int = 4) -> None:
  with open(path, 'r+b') as f:
    f.seek(offset)
    byte = f.read(1)[0]
    f.seek(offset)
    f.write(bytes([byte ^ (1 << bit)]))


def tone(samples: int, rate: int = 16_000) -> bytes:
  """int16 little-endian samples of a 440 Hz tone."""
  t = np.arange(samples) / rate
  return (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype('<i2').tobytes()


def wav(path, pcm: bytes, *, rate: int = 16_000, channels: int = 1, bits: int = 16,
        data_size: int | None = None) -> None:
  """A PCM WAV whose header may lie: `data_size` overrides the data chunk's declared size."""
  align = channels * bits // 8
  fmt = struct.pack('<HHIIHH', 1, channels, rate, rate * align, align, bits)
  size = len(pcm) if data_size is None else data_size
  body = (b'WAVE' + b'fmt ' + struct.pack('<I', len(fmt)) + fmt + b'data' +
          struct.pack('<I', size) + pcm)
  with open(path, 'wb') as f:
    f.write(b'RIFF' + struct.pack('<I', len(body)) + body)


def timestamp_jump_mp4(path, jump_seconds: float = 4000.0, fps: int = 25) -> None:
  """Two 16x16 frames: at 0 s and at `jump_seconds` (under 1 KB)."""
  import av  # pylint: disable=g-import-not-at-top
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('mpeg4', rate=fps)
    stream.width, stream.height, stream.pix_fmt = 16, 16, 'yuv420p'
    stream.codec_context.time_base = fractions.Fraction(1, fps)
    for i, pts in enumerate((0, int(jump_seconds * fps))):
      frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 90 * i, np.uint8), format='rgb24')
      frame.pts = pts
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode(None):
      container.mux(packet)


def short_mp4(path, frames: int = 10, fps: int = 5) -> None:
  """A regular 16x16 clip of `frames` frames."""
  import av  # pylint: disable=g-import-not-at-top
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('mpeg4', rate=fps)
    stream.width, stream.height, stream.pix_fmt = 16, 16, 'yuv420p'
    for i in range(frames):
      frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 20 * i, np.uint8), format='rgb24')
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode(None):
      container.mux(packet)
