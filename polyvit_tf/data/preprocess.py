"""Evaluation / serving preprocessing of one example, per modality.

These functions are what `eval_dataset` applies and what the exported raw-input signatures
must import (no train/serve skew). Graph-mode core TF ops only (no py_function, no
tensorflow-io): safe inside SavedModel signatures.

  image_from_encoded(encoded, spec)                       -> float32 (H, W, C) in [-1, 1]
  audio_from_wav(wav_bytes, spec, *, num_views, norm_mean, norm_std)
                                                          -> float32 (V, frames, bins, C)
  audio_from_waveform(waveform, sample_rate, spec, *, num_views, norm_mean, norm_std)
                                                          -> float32 (V, frames, bins, C)
  video_from_frames(frames, spec, *, num_views, stride, short_side, spatial_views)
                                                          -> float32 (V, T, H, W, C)
  task_kwargs(config, task) -> the keyword arguments above that the config sets for a task

`spec` is the modality's polyvit_tf.model.spec.ModalitySpec (e.g. `PolyViT.modalities[m]`).

Each function checks its input against the decode budgets of polyvit_tf.data.options
(image pixels; WAV header, sample rate, duration and the 25 ms minimum; frames x pixels per
video) before decoding or resampling, and fails with an InvalidArgumentError naming the
limit: inside a SavedModel signature, hostile media cannot exhaust or abort the server.
"""

from __future__ import annotations

import ml_collections
import tensorflow as tf

from polyvit_tf.data import audio as audio_lib
from polyvit_tf.data import errors
from polyvit_tf.data import image as image_lib
from polyvit_tf.data import options as options_lib
from polyvit_tf.data import video as video_lib
from polyvit_tf.model import spec as spec_lib
from polyvit_tf.model.spec import ModalitySpec

DEFAULT_NORM_MEAN = -4.2677393  # AudioSet statistics used by AST
DEFAULT_NORM_STD = 4.5689974


def image_from_encoded(encoded: tf.Tensor, spec: ModalitySpec) -> tf.Tensor:
  """Encoded JPEG/PNG (scalar string) -> float32 (H, W, C) in [-1, 1], resized to the spec."""
  opts = options_lib.ImageOptions(size=spec.input_size, channels=spec.channels, augment=False)
  return image_lib.eval_image(image_lib.decode(encoded, spec.channels, opts.max_pixels), opts)


def _audio_options(spec: ModalitySpec, num_views: int, norm_mean: float,
                   norm_std: float) -> options_lib.AudioOptions:
  return options_lib.AudioOptions(frames=spec.input_size[0], mel_bins=spec.input_size[1],
                                  channels=spec.channels, norm_mean=norm_mean,
                                  norm_std=norm_std, augment=False, num_views=num_views)


def audio_from_waveform(waveform: tf.Tensor, sample_rate: tf.Tensor | int,
                        spec: ModalitySpec, *, num_views: int = 1,
                        norm_mean: float = DEFAULT_NORM_MEAN,
                        norm_std: float = DEFAULT_NORM_STD) -> tf.Tensor:
  """Mono float waveform (samples,) in [-1, 1] at `sample_rate` Hz
  -> float32 (num_views, frames, mel_bins, C): resampled to 16 kHz, Kaldi log-mel,
  `num_views` windows evenly spaced over the clip (one: centred), (x - mean) / (2 std)."""
  opts = _audio_options(spec, num_views, norm_mean, norm_std)
  waveform = tf.convert_to_tensor(waveform, tf.float32)
  check = audio_lib.assert_waveform(waveform, sample_rate, opts)
  spectrogram = audio_lib.log_mel(errors.gated(waveform, check), sample_rate, opts)
  return audio_lib.eval_views(spectrogram, opts)


def audio_from_wav(wav_bytes: tf.Tensor, spec: ModalitySpec, *, num_views: int = 1,
                   norm_mean: float = DEFAULT_NORM_MEAN,
                   norm_std: float = DEFAULT_NORM_STD) -> tf.Tensor:
  """WAV file bytes (scalar string; 16-bit PCM, any rate, channels averaged)
  -> float32 (num_views, frames, mel_bins, C), as `audio_from_waveform`."""
  check = audio_lib.assert_wav(wav_bytes, _audio_options(spec, num_views, norm_mean, norm_std))
  samples, rate = tf.audio.decode_wav(errors.gated(wav_bytes, check))
  return audio_from_waveform(tf.reduce_mean(samples, axis=-1), rate, spec,
                             num_views=num_views, norm_mean=norm_mean, norm_std=norm_std)


def video_from_frames(frames: tf.Tensor, spec: ModalitySpec, *, num_views: int = 1,
                      stride: int = 2, short_side: int = 0,
                      spatial_views: int = 0) -> tf.Tensor:
  """Frames, uint8 (n, h, w, 3) or encoded JPEG/PNG strings (n,), in time order
  -> float32 (num_views, T, H, W, C) in [-1, 1]: temporal x spatial views (spatial 3 when
  it divides num_views, unless `spatial_views` says otherwise), short side resized to
  `short_side` (0: crop * 256 / 224), centre / side crops."""
  temporal, spatial = options_lib.video_view_grid(num_views, spatial_views)
  opts = options_lib.VideoOptions(
      num_frames=spec.input_size[0], size=spec.input_size[1:], channels=spec.channels,
      stride=stride, short_side=short_side, augment=False, temporal_views=temporal,
      spatial_views=spatial)
  frames = tf.convert_to_tensor(frames)
  return video_lib.eval_views(errors.gated(frames, video_lib.assert_clip(frames, opts)), opts)


def task_kwargs(config: ml_collections.ConfigDict, task: str) -> dict:
  """Keyword arguments of this module's function for `task`'s modality, from the config."""
  opts = options_lib.for_task(config, task)
  if isinstance(opts, options_lib.AudioOptions):
    return dict(num_views=opts.num_views, norm_mean=opts.norm_mean, norm_std=opts.norm_std)
  if isinstance(opts, options_lib.VideoOptions):
    return dict(num_views=opts.num_views, stride=opts.stride, short_side=opts.short_side,
                spatial_views=opts.spatial_views)
  return {}


def modality_spec(config: ml_collections.ConfigDict, task: str) -> ModalitySpec:
  """The ModalitySpec of `task`'s modality."""
  return spec_lib.modality_spec(config, spec_lib.task_spec(config, task).modality)
