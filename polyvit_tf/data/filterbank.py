"""Kaldi-compatible log-mel filterbank in tf.signal: the AST / MBT audio front end.

The same computation as `torchaudio.compliance.kaldi.fbank(waveform, htk_compat=True,
sample_frequency=16000, use_energy=False, window_type='hanning', num_mel_bins=128,
dither=0.0, frame_shift=10)` after subtracting the waveform's mean (AST's data loader):
25 ms frames every 10 ms (whole frames only, Kaldi's snip_edges), per-frame DC removal,
pre-emphasis 0.97 (the first sample of a frame uses itself as predecessor), symmetric Hann
window, zero-padded FFT (512 points at 16 kHz), power spectrum, triangular filters on the
Kaldi mel scale 1127 ln(1 + f/700) from 20 Hz to Nyquist (triangles in mel space), natural
log with a floor of float32 epsilon. Graph-mode TF ops only: usable inside tf.data and
SavedModel signatures.

Computed in float64 (COMPUTE_DTYPE), returned as float32: a float32 FFT leaves rounding noise
of about 1e-4 in the log of quiet bins (60 dB under the frame's peak, e.g. the lowest bins
after pre-emphasis, or above the Nyquist frequency of upsampled audio), so no other
implementation could agree with it there; in float64 the graph is the exact computation,
which the NumPy reference (polyvit_tf/edge) and any double-precision port reproduce to about
1e-6. `benchmarks/audio_front_end.py` measures the cost against float32.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from polyvit_tf.edge import reference_preprocess as reference

SAMPLE_RATE = 16_000
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
PREEMPHASIS = 0.97
LOW_FREQ = 20.0
HIGH_FREQ = 0.0  # <= 0: Nyquist + HIGH_FREQ (Kaldi's convention)
SUBTRACT_MEAN = True  # AST removes the clip's mean before the filterbank
WINDOW = 'hann_symmetric'
COMPUTE_DTYPE = tf.float64
LOG_FLOOR = 1.1920928955078125e-07  # float32 epsilon, Kaldi's energy floor
LOG_FLOOR_VALUE = float(np.log(np.float32(LOG_FLOOR)))  # log-mel of silence: -15.94


def frame_geometry(sample_rate: int = SAMPLE_RATE) -> tuple[int, int, int]:
  """(window length, hop, FFT length) in samples, as Kaldi derives them."""
  window = int(sample_rate * FRAME_LENGTH_MS / 1000)
  hop = int(sample_rate * FRAME_SHIFT_MS / 1000)
  fft_length = 1 << (window - 1).bit_length()  # Kaldi round_to_power_of_two
  return window, hop, fft_length


def num_frames(num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
  """Number of whole frames the filterbank produces for `num_samples` samples."""
  window, hop, _ = frame_geometry(sample_rate)
  return 0 if num_samples < window else 1 + (num_samples - window) // hop


@functools.lru_cache(maxsize=None)
def kaldi_mel_banks(num_mel_bins: int, fft_length: int, sample_rate: int,
                    low_freq: float = LOW_FREQ, high_freq: float = HIGH_FREQ) -> np.ndarray:
  """Kaldi's triangular mel filters, float32 (fft_length // 2 + 1, num_mel_bins).

  high_freq <= 0 means Nyquist + high_freq (Kaldi's convention). The Nyquist row is zero,
  as in torchaudio (Kaldi uses fft_length / 2 bins). The NumPy reference's matrix (one
  implementation for the graph and for edge apps).
  """
  return reference.mel_banks(num_mel_bins, fft_length, sample_rate, low_freq, high_freq)


@functools.lru_cache(maxsize=None)
def _window(length: int) -> np.ndarray:
  """The analysis window (WINDOW), float32 (length,)."""
  return reference.WINDOWS[WINDOW](length)


def log_mel_fbank(waveform: tf.Tensor, sample_rate: int = SAMPLE_RATE,
                  num_mel_bins: int = 128, *, subtract_mean: bool = SUBTRACT_MEAN,
                  low_freq: float = LOW_FREQ, high_freq: float = HIGH_FREQ,
                  dtype: tf.DType = COMPUTE_DTYPE) -> tf.Tensor:
  """Log-mel filterbank of a mono waveform (samples,) in [-1, 1] -> float32 (frames, bins).

  frames = 1 + (samples - 400) // 160 at 16 kHz (0 when shorter than one window).
  `subtract_mean` removes the clip's mean first, as AST does before calling Kaldi fbank.
  `dtype` is the precision of the computation (float32 only for benchmarks).
  """
  window, hop, fft_length = frame_geometry(sample_rate)
  x = tf.cast(tf.convert_to_tensor(waveform, tf.float32), dtype)
  if subtract_mean:
    x = x - tf.reduce_mean(x)
  frames = tf.signal.frame(x, window, hop, pad_end=False)  # (F, window)
  frames = frames - tf.reduce_mean(frames, axis=-1, keepdims=True)
  previous = tf.concat([frames[:, :1], frames[:, :-1]], axis=-1)
  frames = (frames - PREEMPHASIS * previous) * tf.cast(_window(window), dtype)
  frames = tf.pad(frames, [[0, 0], [0, fft_length - window]])  # zero-pad to the FFT size
  spectrum = tf.signal.rfft(frames, fft_length=[fft_length])
  power = tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))
  banks = kaldi_mel_banks(num_mel_bins, fft_length, sample_rate, low_freq, high_freq)
  mel = tf.linalg.matmul(power, tf.cast(banks, dtype))
  return tf.cast(tf.math.log(tf.math.maximum(mel, tf.cast(LOG_FLOOR, dtype))), tf.float32)
