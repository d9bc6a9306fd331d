"""The audio modality: log-mel spectrograms (frames, mel_bins, C), 2D patches.

tf.Example payload (one of two forms):
  audio/pcm16        bytes   mono little-endian int16 samples
  audio/encoded      bytes   a WAV or FLAC file (`audio/format` 'wav' | 'flac')
  audio/sample_rate  int64   Hz of audio/pcm16 and FLAC (a WAV carries its own); default 16000
Canonical payload: {'waveform': float32 (samples,) in [-1, 1], 'sample_rate': int32}.
Training: a random window of `frames` frames, SpecAugment (`data.specaugment_*`);
evaluation and serving: `tasks.<t>.eval_views` windows evenly spaced over the clip; both
normalised with `data.audio_norm_mean` / `audio_norm_std` (AudioSet's by default, as AST).
Raw-input signature `<task>_raw`: `wav` string (batch,), WAV bytes; the serving client sends
what the converter reads (WAV, FLAC, MP3, OGG, ... via PyAV) as a 16 kHz 16-bit PCM WAV. The
front end itself is polyvit_tf/data/audio.py (resampling, Kaldi filterbank).
"""

from __future__ import annotations

import io
import os
import struct
import wave
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from polyvit_tf.data import audio as audio_lib
from polyvit_tf.data import errors
from polyvit_tf.data import features
from polyvit_tf.data import filterbank
from polyvit_tf.data import media
from polyvit_tf.data import options as options_lib
from polyvit_tf.data import resample as resample_lib
from polyvit_tf.data.options import AudioOptions
from polyvit_tf.modalities import base
from polyvit_tf.modalities import describe

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
                   sample_rate: tf.Tensor, *, flac: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
  """(waveform float32 (samples,) in [-1, 1], sample rate int32) from the audio features.

  Multi-channel audio is averaged to mono. FLAC needs tensorflow-io (imported only when a
  graph with a FLAC branch is built); WAV and PCM use core TF ops. `flac=False` builds no
  FLAC branch (core ops only, what the TF Serving binary can load): a FLAC example then
  fails with an InvalidArgumentError saying so.
  """
  sample_rate = tf.cast(sample_rate, tf.int32)

  def from_pcm():
    return tf.cast(tf.io.decode_raw(pcm16, tf.int16, little_endian=True),
                   tf.float32) / 32768.0, sample_rate

  def from_wav():
    audio, rate = tf.audio.decode_wav(encoded)
    return tf.reduce_mean(audio, axis=-1), tf.cast(rate, tf.int32)

  def from_flac():
    if not flac:
      check = tf.debugging.Assert(False, [
          'FLAC audio (audio/format flac) needs tensorflow-io, whose ops TF Serving does not '
          'have; store the clip as 16-bit PCM (audio/pcm16) or WAV'])
      return errors.gated(tf.zeros([0]), check), sample_rate
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
  evenly spaced over the clip (one: centred), (x - mean) / (2 std). The sample rate,
  duration and the one-window minimum are checked first (an InvalidArgumentError naming the
  limit; the decode budgets of polyvit_tf.data.options)."""
  waveform = tf.convert_to_tensor(waveform, tf.float32)
  check = audio_lib.assert_waveform(waveform, sample_rate, opts)
  spectrogram = audio_lib.log_mel(errors.gated(waveform, check), sample_rate, opts)
  return audio_lib.eval_views(spectrogram, opts)


def views_of_wav(wav_bytes: tf.Tensor, opts: AudioOptions) -> tf.Tensor:
  """WAV file bytes (16-bit PCM, any rate, channels averaged) -> views, as views_of_waveform;
  the WAV header is checked against the budgets before the file is decoded."""
  check = audio_lib.assert_wav(wav_bytes, opts)
  samples, rate = tf.audio.decode_wav(errors.gated(wav_bytes, check))
  return views_of_waveform(tf.reduce_mean(samples, axis=-1), rate, opts)


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


def _check_rate_and_duration(rate: float, seconds: float | None) -> None:
  if not options_lib.MIN_SAMPLE_RATE <= rate <= options_lib.MAX_SAMPLE_RATE:
    raise media.MediaError(f'sample rate {rate:g} Hz is outside [{options_lib.MIN_SAMPLE_RATE}, '
                           f'{options_lib.MAX_SAMPLE_RATE}] Hz')
  if seconds is not None and seconds > options_lib.MAX_AUDIO_SECONDS:
    raise media.MediaError(f'{seconds:.1f} s of audio exceed the budget of '
                           f'{options_lib.MAX_AUDIO_SECONDS:g} s (max_audio_seconds)')


def check_audio_file(path: str) -> None:
  """The clip's sample rate and duration (from the WAV header, or FFmpeg's stream
  parameters) are within the decode budgets, before anything is decoded or resampled."""
  with open(path, 'rb') as f:
    head = f.read(1 << 16)
  header = wav_header(head)
  if header is not None:
    channels, rate, bits, _ = header
    frames = (os.path.getsize(path) - 44) // max(1, channels * max(bits, 8) // 8)
    _check_rate_and_duration(rate, frames / max(rate, 1))
    return
  import av  # pylint: disable=import-outside-toplevel
  try:
    with av.open(path) as container:
      if not container.streams.audio:
        raise media.MediaError('no audio stream')
      stream = container.streams.audio[0]
      seconds = (float(stream.duration * stream.time_base) if stream.duration
                 else (container.duration / 1e6 if container.duration else None))
      _check_rate_and_duration(stream.rate or 0, seconds)
  except media.MediaError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise media.MediaError(f'undecodable audio ({type(e).__name__}: {str(e)[:160]})') from None


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
  crossmodal_rank = 2

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

  def serving_parse(self, parsed: dict) -> dict:
    """`parse` without the FLAC branch (tensorflow-io ops): PCM and WAV examples."""
    waveform, rate = decode_payload(parsed[PCM16], parsed[ENCODED], parsed[FORMAT],
                                    parsed[SAMPLE_RATE], flac=False)
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

  def eval_checks(self, payload, opts):
    return audio_lib.waveform_checks(payload['waveform'], payload['sample_rate'], opts)

  def eval_inputs(self, payload, opts):
    status = errors.check_status(self.eval_checks(payload, opts))
    views = tf.cond(
        tf.equal(status, errors.OK),
        lambda: views_of_waveform(payload['waveform'], payload['sample_rate'], opts),
        lambda: tf.zeros([opts.num_views, opts.frames, opts.mel_bins, opts.channels]))
    return views, status

  # --------------------------------------------------------------------------- serving
  def raw_inputs(self, opts):
    return [base.RawInput('raw', tf.TensorSpec((None,), tf.string, name='wav'),
                          lambda wav: views_of_wav(wav, opts))]

  def preprocessing_spec(self, opts: options_lib.AudioOptions) -> dict:
    """Eval / serving preprocessing of an audio task (data/audio.py log_mel + eval_views)."""
    window, hop, fft_length = filterbank.frame_geometry(opts.sample_rate)
    high_freq = filterbank.HIGH_FREQ
    return {
        'modality': 'audio',
        'input': 'mono float waveform in [-1, 1] at any sample rate (the raw signature reads '
                 '16-bit PCM WAV: samples / 32768, channels averaged)',
        'wav': {'sample_width_bytes': 2, 'scale': 1.0 / 32768, 'channels': 'mean'},
        'resample': {'method': 'fft', 'to': opts.sample_rate,
                     'compute_dtype': resample_lib.COMPUTE_DTYPE.name,
                     'doc': 'scipy.signal.resample: rfft, keep the bins below both Nyquist '
                            'frequencies (an even common length doubles (down) or halves (up) '
                            'its Nyquist bin), irfft at round_half_even(n * to / rate), times '
                            'new length / old length; skipped when the rate is already `to`'},
        'log_mel': {
            'sample_rate': opts.sample_rate,
            'subtract_mean': filterbank.SUBTRACT_MEAN,
            'frame_length': window, 'frame_shift': hop,
            'frame_length_ms': filterbank.FRAME_LENGTH_MS,
            'frame_shift_ms': filterbank.FRAME_SHIFT_MS,
            'fft_length': fft_length,
            'preemphasis': filterbank.PREEMPHASIS,
            'window': filterbank.WINDOW,
            'mel_bins': opts.mel_bins,
            'low_freq': filterbank.LOW_FREQ,
            'high_freq': high_freq if high_freq > 0 else 0.5 * opts.sample_rate + high_freq,
            'log_floor': filterbank.LOG_FLOOR,
            'compute_dtype': filterbank.COMPUTE_DTYPE.name,
            'doc': 'Kaldi fbank (torchaudio.compliance.kaldi.fbank, htk_compat, no dither, no '
                   'energy): clip mean removed; whole frames only (snip_edges); per-frame DC '
                   'removal; pre-emphasis x[i] - p x[i-1] (x[-1] = x[0]); window; zero-padded '
                   'rfft; power |X|^2; Kaldi mel filters 1127 ln(1 + f / 700), triangles in '
                   'mel space, Nyquist row zero; ln(max(mel, log_floor))',
        },
        'frames': opts.frames,
        'pad_value': filterbank.LOG_FLOOR_VALUE,
        'normalization': {'mean': opts.norm_mean, 'std': opts.norm_std,
                          'std_scale': audio_lib.NORM_STD_SCALE,
                          'doc': '(x - mean) / (std_scale * std)'},
        'channels': opts.channels,
        'views': {'count': opts.num_views, 'length': opts.frames,
                  'placement': describe.EVENLY_SPACED,
                  'doc': 'each view: `frames` log-mel frames from its start, padded at the end '
                         'with pad_value, normalised, tiled to `channels`'},
        'limits': {'sample_rate': [opts.min_sample_rate, opts.max_sample_rate],
                   'max_seconds': opts.max_seconds, 'min_resampled_samples': window,
                   'doc': 'refused like the raw signature: a rate outside `sample_rate`, a clip '
                          'longer than max_seconds, or under one analysis window (frame_length '
                          'samples) once resampled (round_half_even(n * to / rate))'},
    }

  def warmup_input(self, suffix, geometry):
    """One second of a 440 Hz tone as a 16 kHz WAV."""
    del suffix, geometry
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000).astype(np.float32)
    return np.array([tf.audio.encode_wav(tone[:, None], 16_000).numpy()], dtype=object)

  def client_file(self, path, settings):
    """What media.audio_waveform reads, as a 16-bit PCM WAV of the mono clip resampled to
    16 kHz (what the converter stores)."""
    del settings
    if os.path.isdir(path):
      raise media.MediaError('a directory of frames is a video, but the task is audio')
    check_audio_file(path)
    rate = filterbank.SAMPLE_RATE
    return wav_bytes(media.audio_waveform(path, rate), rate)

  # ----------------------------------------------------------------------- media files
  def convert_file(self, path, opts):
    waveform = media.audio_waveform(path, opts.sample_rate, opts.limits)
    return self.payload_features({'waveform': waveform, 'sample_rate': opts.sample_rate})

  def write_media_file(self, payload, stem):
    path = stem + '.wav'
    with open(path, 'wb') as f:
      f.write(wav_bytes(payload['waveform'], int(payload['sample_rate'])))
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
