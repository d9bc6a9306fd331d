"""The tf.Example format of polyvit_tf TFRecords (what TFX ExampleGen reads and emits).

Every example has
  id                 bytes    example id or source path, used in error messages
  labels             int64[]  class ids: one for single-label tasks, any number for
                              multi-label tasks (a scalar `label` int64 is also accepted)
and one payload:
  image/encoded      bytes    JPEG or PNG, as stored
  audio/pcm16        bytes    mono little-endian int16 samples         } one of the two
  audio/encoded      bytes    a WAV or FLAC file (`audio/format`)      }
  audio/format       bytes    'wav' | 'flac' (only with audio/encoded)
  audio/sample_rate  int64    Hz of audio/pcm16 and FLAC (a WAV carries its own); default 16000
  video/frames       bytes[]  one JPEG (or PNG) per frame, in time order
  video/frame_rate   float    frames per second of video/frames

`parse(serialized, modality)` returns the modality's canonical dict (see
`canonical_structure`), the form every source (TFRecords, TFDS) is mapped to before decoding.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

ID = 'id'
LABELS = 'labels'
LABEL = 'label'
IMAGE_ENCODED = 'image/encoded'
AUDIO_PCM16 = 'audio/pcm16'
AUDIO_ENCODED = 'audio/encoded'
AUDIO_FORMAT = 'audio/format'
AUDIO_SAMPLE_RATE = 'audio/sample_rate'
VIDEO_FRAMES = 'video/frames'
VIDEO_FRAME_RATE = 'video/frame_rate'

DEFAULT_SAMPLE_RATE = 16_000


def _common_spec() -> dict:
  return {
      ID: tf.io.FixedLenFeature([], tf.string, default_value=''),
      LABELS: tf.io.VarLenFeature(tf.int64),
      LABEL: tf.io.VarLenFeature(tf.int64),
  }


def feature_spec(modality: str) -> dict:
  """tf.io.parse_single_example spec of one modality's examples."""
  spec = _common_spec()
  if modality == 'image':
    spec[IMAGE_ENCODED] = tf.io.FixedLenFeature([], tf.string, default_value='')
  elif modality == 'audio':
    spec[AUDIO_PCM16] = tf.io.FixedLenFeature([], tf.string, default_value='')
    spec[AUDIO_ENCODED] = tf.io.FixedLenFeature([], tf.string, default_value='')
    spec[AUDIO_FORMAT] = tf.io.FixedLenFeature([], tf.string, default_value='')
    spec[AUDIO_SAMPLE_RATE] = tf.io.FixedLenFeature([], tf.int64,
                                                    default_value=DEFAULT_SAMPLE_RATE)
  elif modality == 'video':
    spec[VIDEO_FRAMES] = tf.io.VarLenFeature(tf.string)
    spec[VIDEO_FRAME_RATE] = tf.io.FixedLenFeature([], tf.float32, default_value=0.0)
  else:
    raise ValueError(f'unknown modality {modality!r}')
  return spec


def canonical_structure(modality: str) -> dict:
  """TensorSpecs of the canonical dict every source maps its examples to.

  image: {'id', 'labels', 'image': encoded bytes}
  audio: {'id', 'labels', 'waveform': float32 (samples,) in [-1, 1], 'sample_rate': int32}
  video: {'id', 'labels', 'frames': encoded frames (T,), 'frame_rate': float32}
  """
  common = {'id': tf.TensorSpec([], tf.string), 'labels': tf.TensorSpec([None], tf.int64)}
  if modality == 'image':
    return {**common, 'image': tf.TensorSpec([], tf.string)}
  if modality == 'audio':
    return {**common, 'waveform': tf.TensorSpec([None], tf.float32),
            'sample_rate': tf.TensorSpec([], tf.int32)}
  return {**common, 'frames': tf.TensorSpec([None], tf.string),
          'frame_rate': tf.TensorSpec([], tf.float32)}


def decode_audio_payload(pcm16: tf.Tensor, encoded: tf.Tensor, audio_format: tf.Tensor,
                         sample_rate: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(waveform float32 (samples,) in [-1, 1], sample rate int32) from the audio features.

  Multi-channel audio is averaged to mono. FLAC needs tensorflow-io (imported only when a
  FLAC example is met); WAV and PCM use core TF ops.
  """
  sample_rate = tf.cast(sample_rate, tf.int32)

  def from_pcm():
    return tf.cast(tf.io.decode_raw(pcm16, tf.int16, little_endian=True),
                   tf.float32) / 32768.0, sample_rate

  def from_wav():
    audio, rate = tf.audio.decode_wav(encoded)
    return tf.reduce_mean(audio, axis=-1), tf.cast(rate, tf.int32)

  def from_flac():
    import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top
    audio = tfio.audio.decode_flac(encoded, dtype=tf.int16)
    return tf.reduce_mean(tf.cast(audio, tf.float32), axis=-1) / 32768.0, sample_rate

  is_flac = tf.equal(tf.strings.lower(audio_format), 'flac')
  return tf.cond(
      tf.strings.length(encoded) > 0, lambda: tf.cond(is_flac, from_flac, from_wav),
      from_pcm)


def parse(serialized: tf.Tensor, modality: str) -> dict:
  """One serialized tf.Example -> the modality's canonical dict (no media decoding)."""
  f = tf.io.parse_single_example(serialized, feature_spec(modality))
  labels = tf.concat([tf.sparse.to_dense(f[LABELS]), tf.sparse.to_dense(f[LABEL])], axis=0)
  out = {'id': f[ID], 'labels': labels}
  if modality == 'image':
    out['image'] = f[IMAGE_ENCODED]
  elif modality == 'audio':
    out['waveform'], out['sample_rate'] = decode_audio_payload(
        f[AUDIO_PCM16], f[AUDIO_ENCODED], f[AUDIO_FORMAT], f[AUDIO_SAMPLE_RATE])
  else:
    out['frames'] = tf.sparse.to_dense(f[VIDEO_FRAMES], default_value='')
    out['frame_rate'] = f[VIDEO_FRAME_RATE]
  return out


# ------------------------------------------------------------------ writing (Python side)
def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values: Sequence[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values: Sequence[float]) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _labels(labels: int | Sequence[int]) -> list[int]:
  return [int(labels)] if np.isscalar(labels) else [int(l) for l in labels]


def _example(example_id: str, labels, payload: dict) -> tf.train.Example:
  feats = {ID: _bytes([example_id.encode()]), LABELS: _ints(_labels(labels)), **payload}
  return tf.train.Example(features=tf.train.Features(feature=feats))


def image_example(example_id: str, labels: int | Sequence[int],
                  encoded: bytes) -> tf.train.Example:
  """An image example; `encoded` is a JPEG or PNG file's bytes."""
  return _example(example_id, labels, {IMAGE_ENCODED: _bytes([encoded])})


def audio_example(example_id: str, labels: int | Sequence[int], *,
                  waveform: np.ndarray | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE,
                  encoded: bytes | None = None, audio_format: str = 'wav') -> tf.train.Example:
  """An audio example from a mono waveform in [-1, 1] (stored as int16 PCM) or a WAV/FLAC file."""
  if (waveform is None) == (encoded is None):
    raise ValueError('give exactly one of waveform and encoded')
  payload = {AUDIO_SAMPLE_RATE: _ints([sample_rate])}
  if waveform is not None:
    pcm = np.clip(np.round(np.asarray(waveform, np.float64) * 32768.0), -32768, 32767)
    payload[AUDIO_PCM16] = _bytes([pcm.astype('<i2').tobytes()])
  else:
    payload[AUDIO_ENCODED] = _bytes([encoded])
    payload[AUDIO_FORMAT] = _bytes([audio_format.encode()])
  return _example(example_id, labels, payload)


def video_example(example_id: str, labels: int | Sequence[int], frames: Sequence[bytes],
                  frame_rate: float) -> tf.train.Example:
  """A video example from JPEG-encoded frames in time order."""
  return _example(example_id, labels, {VIDEO_FRAMES: _bytes(frames),
                                       VIDEO_FRAME_RATE: _floats([frame_rate])})
