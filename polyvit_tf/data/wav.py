"""WAV (RIFF) files: the header checked against the file's real size, then PCM decoded.

tensorflow-io's WAV reader trusts the header: a data size larger than the file, or a
negative one once read as int32, reaches a fatal shape check (the process aborts); a zero
block alignment divides by zero; a negative chunk size walks backwards forever. So the
converter never gives it a file: `read_header` walks the chunks in Python, checking every
declared size against the bytes that are really there, and the rates and counts against
media_checks' limits; `decode` turns the validated data chunk into float32 samples (numpy).

  with open(path, 'rb') as f:
    header = wav.read_header(f, file_size)      # WavHeader or MediaError
    samples = wav.decode(f, header)             # float32 (frames, channels) in [-1, 1]
"""

from __future__ import annotations

import dataclasses
import struct
from typing import BinaryIO

import numpy as np

from polyvit_tf.data import media_checks
from polyvit_tf.data.media_checks import MediaError

PCM = 1
IEEE_FLOAT = 3
EXTENSIBLE = 0xFFFE
MAX_CHUNKS = 1_000
_FMT_SIZES = range(16, 1025)
_BITS = {PCM: (8, 16, 24, 32), IEEE_FLOAT: (32, 64)}


@dataclasses.dataclass(frozen=True)
class WavHeader:
  encoding: int  # PCM or IEEE_FLOAT
  channels: int
  sample_rate: int
  bits: int
  data_offset: int
  data_bytes: int

  @property
  def block_align(self) -> int:
    return self.channels * self.bits // 8

  @property
  def frames(self) -> int:
    return self.data_bytes // self.block_align


def _bad(reason: str) -> MediaError:
  return MediaError(f'undecodable WAV: {reason}')


def _read(f: BinaryIO, offset: int, n: int) -> bytes:
  f.seek(offset)
  data = f.read(n)
  if len(data) != n:
    raise _bad(f'{n} bytes expected at offset {offset}, {len(data)} there')
  return data


def _parse_fmt(body: bytes) -> tuple[int, int, int, int, int]:
  tag, channels, rate, _, block_align, bits = struct.unpack_from('<HHIIHH', body)
  if tag == EXTENSIBLE:
    if len(body) < 40:
      raise _bad(f'extensible fmt chunk of {len(body)} bytes (< 40)')
    tag = struct.unpack_from('<H', body, 24)[0]  # the sub-format GUID's first two bytes
  if tag not in _BITS:
    raise _bad(f'unsupported encoding (format tag {tag:#06x}; PCM and IEEE float '
                     'are read)')
  return tag, channels, rate, block_align, bits


def read_header(f: BinaryIO, file_size: int) -> WavHeader:
  """The header of the WAV file `f` (`file_size` bytes); MediaError naming the field."""
  head = _read(f, 0, 12) if file_size >= 12 else b''
  if len(head) < 12 or head[:4] != b'RIFF' or head[8:12] != b'WAVE':
    raise _bad('not a RIFF/WAVE file' + (' (RF64 is not supported)'
                                                if head[:4] == b'RF64' else ''))
  riff_size = struct.unpack_from('<I', head, 4)[0]
  if riff_size + 8 > file_size + 1:  # one missing pad byte is tolerated
    raise _bad(f'RIFF header declares {riff_size + 8} bytes, the file has '
                     f'{file_size} (truncated?)')
  end = min(riff_size + 8, file_size)
  offset, fmt = 12, None
  for _ in range(MAX_CHUNKS):
    if offset + 8 > end:
      raise _bad('no data chunk' if fmt else 'no fmt chunk')
    chunk_id, size = struct.unpack('<4sI', _read(f, offset, 8))
    body_at = offset + 8
    if chunk_id == b'data':
      if fmt is None:
        raise _bad('data chunk before the fmt chunk')
      if size > end - body_at:
        raise _bad(f'data chunk declares {size} bytes, {end - body_at} follow '
                         '(truncated or forged header)')
      tag, channels, rate, block_align, bits = fmt
      media_checks.check_channels(channels)
      media_checks.check_sample_rate(rate)
      if bits not in _BITS[tag]:
        raise _bad(f'{bits} bits per sample unsupported for format tag {tag}')
      if block_align != channels * bits // 8:
        raise _bad(f'block align {block_align} != {channels} channels x '
                         f'{bits // 8} bytes')
      if size % block_align:
        raise _bad(f'data chunk of {size} bytes is not a whole number of '
                         f'{block_align}-byte frames')
      return WavHeader(tag, channels, rate, bits, body_at, size)
    if size > end - body_at:
      raise _bad(f'{chunk_id!r} chunk declares {size} bytes, {end - body_at} follow')
    if chunk_id == b'fmt ':
      if size not in _FMT_SIZES:
        raise _bad(f'fmt chunk of {size} bytes (expected 16 to 1024)')
      fmt = _parse_fmt(_read(f, body_at, size))
    offset = body_at + size + (size & 1)
  raise _bad(f'more than {MAX_CHUNKS} chunks before the data')


def decode(f: BinaryIO, header: WavHeader) -> np.ndarray:
  """The data chunk as float32 (frames, channels) in [-1, 1]; MediaError on NaN/inf."""
  raw = _read(f, header.data_offset, header.data_bytes)
  n = header.frames * header.channels
  if header.encoding == IEEE_FLOAT:
    x = np.frombuffer(raw, f'<f{header.bits // 8}', n).astype(np.float32)
    if not np.isfinite(x).all():
      raise _bad('non-finite float samples')
  elif header.bits == 8:
    x = (np.frombuffer(raw, np.uint8, n).astype(np.float32) - 128.0) / 128.0
  elif header.bits == 24:
    b = np.frombuffer(raw, np.uint8, 3 * n).reshape(n, 3).astype(np.int32)
    x = ((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8).astype(np.float32) / 8388608.0
  else:
    x = np.frombuffer(raw, f'<i{header.bits // 8}', n).astype(np.float32) / float(
        2 ** (header.bits - 1))
  return x.reshape(header.frames, header.channels)
