"""Media files as the inputs of a task's serving signatures (the client side).

A file is decoded exactly as the converter (polyvit_tf.data.convert) decodes it for training,
by the task's modality module (polyvit_tf/modalities/<m>.py, `client_file`), so that anything
the converter ingests can be classified and the server sees what training saw:

  image task   any image PIL reads (JPEG, PNG, GIF, BMP, WebP, TIFF, ...) -> `<task>_raw`:
               JPEG / PNG bytes as stored, anything else re-encoded as PNG
  audio task   what media.audio_waveform reads (WAV, FLAC, MP3, OGG, ... via PyAV) ->
               `<task>_raw`: a 16-bit PCM WAV of the mono clip resampled to 16 kHz
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
import os

import numpy as np

from polyvit_tf import modalities
from polyvit_tf.data import media
from polyvit_tf.modalities import video as video_modality

MediaError = media.MediaError
DEFAULT_VIDEO_FPS = video_modality.DEFAULT_CLIENT_FPS  # the converter's --video_fps
DEFAULT_VIDEO_SHORT_SIDE = video_modality.DEFAULT_CLIENT_SHORT_SIDE  # --video_short_side


@dataclasses.dataclass
class Prepared:
  """One file's input: `value` is the raw signature's input of one example (bytes for an
  image or a WAV, a list of frame bytes for a video) or an array of preprocessed examples
  (`tensor`)."""
  path: str
  kind: str  # 'raw' | 'tensor'
  value: object


def prepare(path: str, modality: str, *, video_fps: float = DEFAULT_VIDEO_FPS,
            video_short_side: int = DEFAULT_VIDEO_SHORT_SIDE) -> Prepared:
  """`path` as the input of a `modality` task (see the module docstring); MediaError when
  it cannot be used."""
  try:
    if not os.path.isdir(path) and not os.path.isfile(path):
      raise MediaError('file not found')
    if os.path.isfile(path) and path.lower().endswith('.npy'):
      return Prepared(path, 'tensor', np.load(path, allow_pickle=False).astype(np.float32))
    impl = modalities.get(modality)
    settings = {'video_fps': video_fps, 'video_short_side': video_short_side}
    return Prepared(path, 'raw', impl.client_file(path, settings))
  except MediaError:
    raise
  except (OSError, ValueError) as e:  # an unknown modality is a ConfigError (a ValueError)
    raise MediaError(f'{type(e).__name__}: {str(e)[:200]}') from None
