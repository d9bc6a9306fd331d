"""Audio preprocessing: resample to 16 kHz, Kaldi log-mel, crop or pad, SpecAugment,
normalisation, channel tiling.

Order (AST / MBT): waveform -> resample -> filterbank of the whole clip (frames at 100/s)
-> a window of `frames` frames (train: random position; eval: `num_views` windows evenly
spaced over the clip, centred for one view) -> (x - mean) / (2 * std) -> SpecAugment (train)
-> tiled to the modality's channels. Clips shorter than the window are padded at the end
with silence (the filterbank's log floor); AST pads with zeros in the log domain, which is a
loud constant rather than silence, so we differ there on purpose. SpecAugment masks are set
to 0 after normalisation (the data mean); AST masks before normalising.
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


def check_waveform(waveform: tf.Tensor, sample_rate: tf.Tensor,
                   opts: AudioOptions) -> tf.Tensor:
  """Status: EMPTY (no samples), TOO_SHORT (under one 25 ms window after resampling), OK."""
  n = tf.shape(waveform)[0]
  window, _, _ = filterbank.frame_geometry(opts.sample_rate)
  resampled = resample_lib.resampled_length(n, tf.maximum(sample_rate, 1), opts.sample_rate)
  return tf.where(tf.equal(n, 0), errors.EMPTY,
                  tf.where((resampled < window) | (sample_rate <= 0), errors.TOO_SHORT,
                           errors.OK))


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
