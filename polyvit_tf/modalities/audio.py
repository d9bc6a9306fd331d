"""The audio modality: log-mel spectrograms (frames, mel_bins, C), 2D patches.

tf.Example payload (one of two forms):
  audio/pcm16        bytes   mono little-endian int16 samples
  audio/encoded      bytes   a WAV or FLAC file (`audio/format` 'wav' | 'flac')
  audio/sample_rate  int64   Hz of audio/pcm16 and FLAC (a WAV carries its own); default 16000
Canonical payload: {'waveform': float32 (samples,) in [-1, 1], 'sample_rate': int32}.
Training: a random window of `frames` frames, SpecAugment (`data.specaugment_*`);
evaluation and serving: `tasks.<t>.eval_views` windows evenly spaced over the clip; both
normalised with `data.audio_norm_mean` / `audio_norm_std` (AudioSet's by default, as AST).
Raw-input signature `<task>_raw`: `wav` string (batch,), WAV bytes. The front end itself is
polyvit_tf/data/audio.py (resampling, Kaldi filterbank).
"""

from __future__ import annotations

import wave
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from polyvit_tf.data import audio as audio_lib
from polyvit_tf.data import errors
from polyvit_tf.data import features
from polyvit_tf.data import filterbank
from polyvit_tf.data import media
from polyvit_tf.data.options import AudioOptions
from polyvit_tf.modalities import base

PCM16 = 'audio/pcm16'
ENCODED = 'audio/encoded'
FORMAT = 'audio/format'
SAMPLE_RATE = 'audio/sample_rate'
DEFAULT_SAMPLE_RATE = 16_000


def example(example_id: str, labels: int | Sequence[int], *,
            waveform: np.ndarray | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE,
            encoded: bytes | None = None, audio_format: str = 'wav') -> tf.train.Example:
  """An audio example from a mono waveform in [-1, 1] (stored as int16 PCM) or a WAV/FLAC file."""
  if (waveform is None) == (encoded is None):
    raise ValueError('give exactly one of waveform and encoded')
  if waveform is not None:
    payload = _pcm_features(waveform, sample_rate)
  else:
    payload = {SAMPLE_RATE: features.int64_feature([sample_rate]),
               ENCODED: features.bytes_feature([encoded]),
               FORMAT: features.bytes_feature([audio_format.encode()])}
  return features.example(example_id, labels, payload)


def _pcm_features(waveform: np.ndarray, sample_rate: int) -> dict:
  """A waveform in [-1, 1] as int16 PCM features."""
  pcm = np.clip(np.round(np.asarray(waveform, np.float64) * 32768.0), -32768, 32767)
  return {SAMPLE_RATE: features.int64_feature([sample_rate]),
          PCM16: features.bytes_feature([pcm.astype('<i2').tobytes()])}


def decode_payload(pcm16: tf.Tensor, encoded: tf.Tensor, audio_format: tf.Tensor,
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


def views_of_waveform(waveform: tf.Tensor, sample_rate: tf.Tensor | int,
                      opts: AudioOptions) -> tf.Tensor:
  """Mono float waveform (samples,) in [-1, 1] at `sample_rate` Hz -> float32
  (num_views, frames, mel_bins, C): resampled to 16 kHz, Kaldi log-mel, `num_views` windows
  evenly spaced over the clip (one: centred), (x - mean) / (2 std)."""
  spectrogram = audio_lib.log_mel(tf.convert_to_tensor(waveform, tf.float32), sample_rate,
                                  opts)
  return audio_lib.eval_views(spectrogram, opts)


def views_of_wav(wav_bytes: tf.Tensor, opts: AudioOptions) -> tf.Tensor:
  """WAV file bytes (16-bit PCM, any rate, channels averaged) -> views, as views_of_waveform."""
  samples, rate = tf.audio.decode_wav(wav_bytes)
  return views_of_waveform(tf.reduce_mean(samples, axis=-1), rate, opts)


def _synthetic_wave(labels: Sequence[int], num_classes: int, frames: int, rng) -> np.ndarray:
  """Noise plus one tone per label, pitch rising with the class id; a little longer than
  the `frames` frames of the input window."""
  _, hop, _ = filterbank.frame_geometry()
  n = (frames + 20) * hop + 400
  t = np.arange(n) / filterbank.SAMPLE_RATE
  x = rng.normal(0, 0.01, n)
  for c in labels:
    freq = 200.0 * (7000.0 / 200.0) ** ((c + 0.5) / num_classes)
    x += 0.3 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3))
  return np.clip(x, -1, 1)


class AudioModality(base.Modality):
  """Audio as log-mel spectrograms (see the module docstring)."""

  name = 'audio'
  input_rank = 2
  input_axes = '(frames, mel_bins)'
  data_defaults = {
      'audio_norm_mean': -4.2677393,  # log-mel statistics (AudioSet, AST); compute yours
      'audio_norm_std': 4.5689974,  # with `python -m polyvit_tf.data.stats`
      'specaugment_freq_masks': 1,  # SpecAugment of MBT: 1 frequency mask up to 48 bins,
      'specaugment_freq_width': 48,
      'specaugment_time_masks': 4,  # 4 time masks up to 48 frames
      'specaugment_time_width': 48,
  }
  media_extensions = ('.wav', '.flac', '.mp3', '.ogg', '.m4a', '.aac', '.opus', '.webm')
  tfds_feature = 'Audio'

  def options(self, geometry, data: base.DataFields, eval_views: int) -> AudioOptions:
    frames, mel_bins = geometry.input_size
    return AudioOptions(
        frames=frames, mel_bins=mel_bins, channels=geometry.channels,
        norm_mean=data.range('audio_norm_mean'),
        norm_std=data.range('audio_norm_std', 0.0, low_open=True),
        augment=bool(data['augment']),
        freq_masks=data.range('specaugment_freq_masks', 0, integer=True),
        freq_mask_width=data.range('specaugment_freq_width', 0, integer=True),
        time_masks=data.range('specaugment_time_masks', 0, integer=True),
        time_mask_width=data.range('specaugment_time_width', 0, integer=True),
        num_views=eval_views)

  # ------------------------------------------------------------------------ tf.Example
  def feature_spec(self) -> dict:
    return {
        PCM16: tf.io.FixedLenFeature([], tf.string, default_value=''),
        ENCODED: tf.io.FixedLenFeature([], tf.string, default_value=''),
        FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=''),
        SAMPLE_RATE: tf.io.FixedLenFeature([], tf.int64, default_value=DEFAULT_SAMPLE_RATE),
    }

  def payload_spec(self) -> dict:
    return {'waveform': tf.TensorSpec([None], tf.float32),
            'sample_rate': tf.TensorSpec([], tf.int32)}

  def parse(self, parsed: dict) -> dict:
    waveform, rate = decode_payload(parsed[PCM16], parsed[ENCODED], parsed[FORMAT],
                                    parsed[SAMPLE_RATE])
    return {'waveform': waveform, 'sample_rate': rate}

  def payload_features(self, payload: Mapping[str, np.ndarray]) -> dict:
    return _pcm_features(payload['waveform'], int(payload['sample_rate']))

  def schema_features(self) -> list:
    # PCM or a file: neither payload is required on its own.
    return [(PCM16, 'bytes', False), (ENCODED, 'bytes', False), (FORMAT, 'bytes', False),
            (SAMPLE_RATE, 'int', False)]

  # ------------------------------------------------------------------------- pipelines
  def train_inputs(self, payload, opts, seed):
    status = audio_lib.check_waveform(payload['waveform'], payload['sample_rate'], opts)
    spectrogram = tf.cond(
        tf.equal(status, errors.OK),
        lambda: audio_lib.log_mel(payload['waveform'], payload['sample_rate'], opts),
        lambda: tf.zeros([opts.frames, opts.mel_bins]))
    return audio_lib.train_clip(spectrogram, opts, seed), status

  def eval_inputs(self, payload, opts):
    status = audio_lib.check_waveform(payload['waveform'], payload['sample_rate'], opts)
    views = tf.cond(
        tf.equal(status, errors.OK),
        lambda: views_of_waveform(payload['waveform'], payload['sample_rate'], opts),
        lambda: tf.zeros([opts.num_views, opts.frames, opts.mel_bins, opts.channels]))
    return views, status

  # --------------------------------------------------------------------------- serving
  def raw_inputs(self, opts):
    return [base.RawInput('raw', tf.TensorSpec((None,), tf.string, name='wav'),
                          lambda wav: views_of_wav(wav, opts))]

  def client_inputs(self):
    return [base.ClientInput('raw', 'wav', ('.wav',), base.read_files)]

  # ----------------------------------------------------------------------- media files
  def convert_file(self, path, opts):
    waveform = media.audio_waveform(path, opts.sample_rate)
    return self.payload_features({'waveform': waveform, 'sample_rate': opts.sample_rate})

  def write_media_file(self, payload, stem):
    path = stem + '.wav'
    pcm = np.clip(np.round(np.asarray(payload['waveform']) * 32768.0), -32768,
                  32767).astype('<i2')
    with wave.open(path, 'wb') as w:
      w.setnchannels(1)
      w.setsampwidth(2)
      w.setframerate(int(payload['sample_rate']))
      w.writeframes(pcm.tobytes())
    return path

  def synthetic_payload(self, labels, num_classes, geometry, opts, rng):
    del opts
    wave_ = _synthetic_wave(labels, num_classes, geometry.input_size[0], rng)
    return self.payload_features({'waveform': wave_, 'sample_rate': DEFAULT_SAMPLE_RATE})

  def tfds_payload(self, value, feature):
    waveform = tf.cast(value, tf.float32)
    if value.dtype == tf.int16:
      waveform = waveform / 32768.0
    elif value.dtype == tf.int32:
      waveform = waveform / 2147483648.0
    if waveform.shape.rank == 2:
      waveform = tf.reduce_mean(waveform, axis=-1)
    rate = int(getattr(feature, 'sample_rate', None) or DEFAULT_SAMPLE_RATE)
    return {'waveform': waveform, 'sample_rate': tf.constant(rate, tf.int32)}

  def normalisation_stats(self, source, split, opts, max_examples):
    """{'mean', 'std', 'num_examples', 'num_frames', 'skipped'} of the log-mel frames of
    whole clips (every frame counts; no cropping, no augmentation), computed with the
    pipeline's own decoding, resampling and filterbank."""

    @tf.autograph.experimental.do_not_convert
    def moments(fallback_id, raw):
      del fallback_id
      ex = source.parse(raw)
      status = audio_lib.check_waveform(ex['waveform'], ex['sample_rate'], opts)
      mel = tf.cond(tf.equal(status, errors.OK),
                    lambda: audio_lib.log_mel(ex['waveform'], ex['sample_rate'], opts),
                    lambda: tf.zeros([0, opts.mel_bins]))
      mel = tf.cast(mel, tf.float64)
      return (tf.reduce_sum(mel), tf.reduce_sum(tf.square(mel)),
              tf.cast(tf.size(mel), tf.float64), tf.cast(tf.shape(mel)[0], tf.int64),
              tf.equal(status, errors.OK))

    ds = source.epoch_records(split).map(moments, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors(log_warning=True)
    if max_examples > 0:
      ds = ds.take(max_examples)
    total = total_sq = count = 0.0
    frames = examples = skipped = 0
    for s, sq, n, f, ok in ds.as_numpy_iterator():
      if not ok:
        skipped += 1
        continue
      total, total_sq, count = total + s, total_sq + sq, count + n
      frames, examples = frames + int(f), examples + 1
    if not count:
      return {'num_examples': 0, 'skipped': skipped}
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
    return {'mean': float(mean), 'std': std, 'num_examples': examples, 'num_frames': frames,
            'skipped': skipped}

  def normalisation_fields(self, stats: dict) -> dict:
    return {'audio_norm_mean': stats['mean'], 'audio_norm_std': stats['std']}


MODALITY = AudioModality()
