"""Audio preprocessing: resample to 16 kHz, Kaldi log-mel, crop or pad, SpecAugment,
normalisation, channel tiling.

Order (AST / MBT): waveform -> resample -> filterbank of the whole clip (frames at 100/s)
-> a window of `frames` frames (train: random position; eval: `num_views` windows evenly
spaced over the clip, centred for one view) -> (x - mean) / (2 * std) -> SpecAugment (train)
-> tiled to the modality's channels. Clips shorter than the window are padded at the end
with silence (the filterbank's log floor); AST pads with zeros in the log domain, which is a
loud constant rather than silence, so we differ there on purpose. SpecAugment masks are set
to 0 after normalisation (the data mean); AST masks before normalising.

Budgets (AudioOptions: min/max_sample_rate, max_seconds) are checked before anything is
resampled: `wav_checks` reads a WAV's header fields at the offsets tf.audio.decode_wav
requires (16-bit PCM, channels, rate, the longest duration its size allows) before it is
decoded; `waveform_checks` a decoded clip (empty, rate, duration, shorter than one 25 ms
analysis window after resampling). `check_waveform` is their status (training skips the
example), `assert_wav` / `assert_waveform` their assertion (serving fails the request).
"""

from __future__ import annotations

import tensorflow as tf

from polyvit_tf.data import augment
from polyvit_tf.data import errors
from polyvit_tf.data import filterbank
from polyvit_tf.data import resample as resample_lib
from polyvit_tf.data.options import AudioOptions

NORM_STD_SCALE = 2.0  # (x - mean) / (NORM_STD_SCALE * std), as AST


def log_mel(waveform: tf.Tensor, sample_rate: tf.Tensor, opts: AudioOptions) -> tf.Tensor:
  """Mono waveform at any rate -> log-mel (clip frames, mel_bins) at opts.sample_rate."""
  x = resample_lib.resample(waveform, sample_rate, opts.sample_rate)
  return filterbank.log_mel_fbank(x, opts.sample_rate, opts.mel_bins)


WAV_HEADER_BYTES = 44  # RIFF, WAVE, a 16-byte fmt chunk and a data chunk header


def _rate_and_duration_checks(frames: tf.Tensor, sample_rate: tf.Tensor, opts: AudioOptions,
                              what: str) -> list:
  rate = tf.cast(sample_rate, tf.int64)
  seconds = tf.cast(frames, tf.float64) / tf.cast(tf.maximum(rate, 1), tf.float64)
  return [
      ((rate < opts.min_sample_rate) | (rate > opts.max_sample_rate), errors.OVER_BUDGET,
       errors.text(what, ': sample rate ', rate, ' Hz is outside [', str(opts.min_sample_rate),
                   ', ', str(opts.max_sample_rate), '] Hz (min_sample_rate, max_sample_rate)')),
      (seconds > opts.max_seconds, errors.OVER_BUDGET,
       errors.text(what, ': ', frames, ' samples at ', rate, ' Hz (',
                   tf.strings.as_string(seconds, precision=1), ' s) exceed the budget of ',
                   f'{opts.max_seconds:g} s (max_audio_seconds)')),
  ]


def wav_checks(wav_bytes: tf.Tensor, opts: AudioOptions) -> list:
  """errors.Check list of a WAV file from its header, before it is decoded."""
  head = tf.strings.substr(wav_bytes, 0, WAV_HEADER_BYTES)
  padded = tf.strings.substr(tf.strings.join([head, b'\0' * WAV_HEADER_BYTES]), 0,
                             WAV_HEADER_BYTES)
  b = tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)

  def le(offset, size):
    value = tf.constant(0, tf.int64)
    for i in reversed(range(size)):
      value = value * 256 + b[offset + i]
    return value

  def text_at(offset, magic):
    return tf.reduce_all(tf.equal(b[offset:offset + 4], list(magic)))

  length = tf.cast(tf.strings.length(wav_bytes), tf.int64)
  fmt_size, audio_format, channels = le(16, 4), le(20, 2), le(22, 2)
  bits = le(34, 2)
  # The longest clip the file's size allows (all bytes after the headers are samples).
  frames = tf.maximum(length - WAV_HEADER_BYTES, 0) // (2 * tf.maximum(channels, 1))
  riff = text_at(0, b'RIFF') & text_at(8, b'WAVE') & text_at(12, b'fmt ')
  return [
      (tf.equal(length, 0), errors.EMPTY, 'WAV is empty (0 bytes)'),
      ((length < WAV_HEADER_BYTES) | ~riff, errors.UNDECODABLE,
       'not a WAV file (expected a RIFF/WAVE header with its fmt chunk first)'),
      (((fmt_size != 16) & (fmt_size != 18)) | (audio_format != 1) | (bits != 16),
       errors.UNDECODABLE,
       errors.text('WAV is not 16-bit PCM (format ', audio_format, ', ', bits,
                   ' bits, fmt chunk of ', fmt_size, ' bytes)')),
      (channels < 1, errors.UNDECODABLE, 'WAV declares 0 channels'),
  ] + _rate_and_duration_checks(frames, le(24, 4), opts, 'WAV')


def waveform_checks(waveform: tf.Tensor, sample_rate: tf.Tensor, opts: AudioOptions) -> list:
  """errors.Check list of a decoded mono clip at `sample_rate` Hz, before resampling."""
  n = tf.shape(waveform, out_type=tf.int64)[0]
  window, _, _ = filterbank.frame_geometry(opts.sample_rate)
  rate = tf.clip_by_value(tf.cast(sample_rate, tf.int64), 1, opts.max_sample_rate)
  resampled = resample_lib.resampled_length(n, rate, opts.sample_rate)
  return [(tf.equal(n, 0), errors.EMPTY, 'audio clip has no samples')] + (
      _rate_and_duration_checks(n, sample_rate, opts, 'audio clip')) + [
      (resampled < window, errors.TOO_SHORT,
       errors.text('audio clip of ', n, ' samples at ', tf.cast(sample_rate, tf.int64),
                   ' Hz is shorter than one 25 ms analysis window')),
  ]


def check_waveform(waveform: tf.Tensor, sample_rate: tf.Tensor,
                   opts: AudioOptions) -> tf.Tensor:
  """Status: EMPTY (no samples), OVER_BUDGET (rate outside the limits, clip too long),
  TOO_SHORT (under one 25 ms window after resampling), OK."""
  return errors.check_status(waveform_checks(waveform, sample_rate, opts))


def assert_wav(wav_bytes: tf.Tensor, opts: AudioOptions) -> tf.Operation:
  """Fails (InvalidArgumentError naming the field and limit) unless the WAV header is safe
  to decode; run it before tf.audio.decode_wav."""
  return errors.assert_checks(wav_checks(wav_bytes, opts))


def assert_waveform(waveform: tf.Tensor, sample_rate: tf.Tensor,
                    opts: AudioOptions) -> tf.Operation:
  """Fails unless the decoded clip is safe to resample and long enough to analyse."""
  return errors.assert_checks(waveform_checks(waveform, sample_rate, opts))


def _window(spectrogram: tf.Tensor, start: tf.Tensor, frames: int) -> tf.Tensor:
  """`frames` frames from `start`, padded at the end with silence when the clip is short."""
  clip = spectrogram[start:start + frames]
  missing = frames - tf.shape(clip)[0]
  clip = tf.pad(clip, [[0, missing], [0, 0]], constant_values=filterbank.LOG_FLOOR_VALUE)
  return clip


def _finish(clip: tf.Tensor, opts: AudioOptions) -> tf.Tensor:
  clip = tf.ensure_shape(clip, (opts.frames, opts.mel_bins))
  return (clip - opts.norm_mean) / (NORM_STD_SCALE * opts.norm_std)


def _channels(clip: tf.Tensor, opts: AudioOptions) -> tf.Tensor:
  return tf.tile(clip[..., None], [1] * clip.shape.rank + [opts.channels])


def view_starts(total: tf.Tensor, length: int, num_views: int) -> tf.Tensor:
  """Start offsets of `num_views` windows of `length` spread evenly over `total` steps
  (one view: centred), int32 (num_views,)."""
  slack = tf.maximum(tf.cast(total, tf.int32) - length, 0)
  if num_views == 1:
    return tf.reshape(slack // 2, [1])
  positions = tf.linspace(0.0, tf.cast(slack, tf.float32), num_views)
  return tf.cast(tf.math.round(positions), tf.int32)


def eval_views(spectrogram: tf.Tensor, opts: AudioOptions) -> tf.Tensor:
  """Log-mel of a whole clip -> float32 (num_views, frames, mel_bins, channels)."""
  starts = view_starts(tf.shape(spectrogram)[0], opts.frames, opts.num_views)
  views = [_channels(_finish(_window(spectrogram, starts[v], opts.frames), opts), opts)
           for v in range(opts.num_views)]
  return tf.stack(views, axis=0)


def train_clip(spectrogram: tf.Tensor, opts: AudioOptions, seed: tf.Tensor) -> tf.Tensor:
  """Log-mel of a whole clip -> float32 (frames, mel_bins, channels), augmented."""
  crop_seed, mask_seed = augment.split(seed, 2)
  if opts.augment:
    start = augment.uniform_int(crop_seed, 0, tf.shape(spectrogram)[0] - opts.frames)
  else:
    start = view_starts(tf.shape(spectrogram)[0], opts.frames, 1)[0]
  clip = _finish(_window(spectrogram, start, opts.frames), opts)
  if opts.augment and (opts.freq_masks or opts.time_masks):
    clip = augment.spec_augment(clip, mask_seed, freq_masks=opts.freq_masks,
                                freq_mask_width=opts.freq_mask_width,
                                time_masks=opts.time_masks,
                                time_mask_width=opts.time_mask_width)
  return _channels(clip, opts)
