"""Band-limited resampling in TF ops (the FFT method of scipy.signal.resample).

Used by the tf.data pipelines, the serving signatures and the converter alike, so a clip
is resampled the same way whichever path it takes. Works with a sample rate only known at
run time (e.g. read from a WAV header inside a SavedModel signature). Computed in float64
(COMPUTE_DTYPE; see filterbank.py for why), returned as float32.
"""

from __future__ import annotations

import tensorflow as tf

COMPUTE_DTYPE = tf.float64


def resampled_length(num_samples: tf.Tensor, in_rate: tf.Tensor, out_rate: int) -> tf.Tensor:
  """round(num_samples * out_rate / in_rate), int32."""
  n = tf.cast(num_samples, tf.float64)
  return tf.cast(tf.math.round(n * out_rate / tf.cast(in_rate, tf.float64)), tf.int32)


def resample(waveform: tf.Tensor, in_rate: tf.Tensor | int, out_rate: int, *,
             dtype: tf.DType = COMPUTE_DTYPE) -> tf.Tensor:
  """Resamples a mono float waveform (samples,) from `in_rate` to `out_rate` Hz.

  Fourier method: keep the spectrum below both Nyquist frequencies and invert at the new
  length (the signal is treated as periodic, as scipy.signal.resample does). Returns the
  waveform unchanged when the rates are equal, and an empty waveform when either length
  is 0 (TF's FFT ops abort the process on a zero FFT length, so they are never reached).
  `dtype`: the precision of the computation.
  """
  x = tf.convert_to_tensor(waveform, tf.float32)
  in_rate = tf.cast(in_rate, tf.int32)

  complex_dtype = tf.complex128 if dtype == tf.float64 else tf.complex64

  def _resample():
    n = tf.shape(x)[0]
    m = resampled_length(n, in_rate, out_rate)
    spectrum = tf.signal.rfft(tf.cast(x, dtype)[None, :], fft_length=[n])[0]  # n // 2 + 1
    common = tf.minimum(n, m)
    keep = common // 2 + 1
    # An even common length puts the Nyquist bin at common // 2: doubled when downsampling,
    # halved when upsampling (scipy.signal.resample's split/join of that component).
    nyquist_factor = tf.where(tf.equal(common % 2, 0),
                              tf.where(m < n, 2.0, tf.where(n < m, 0.5, 1.0)), 1.0)
    scale = tf.cast(tf.concat([tf.ones([keep - 1]), [nyquist_factor]], axis=0), dtype)
    kept = spectrum[:keep] * tf.complex(scale, tf.zeros_like(scale))
    padded = tf.concat([kept, tf.zeros([m // 2 + 1 - keep], complex_dtype)], axis=0)
    y = tf.signal.irfft(padded[None, :], fft_length=[m])[0]
    return tf.cast(y * (tf.cast(m, dtype) / tf.cast(n, dtype)), tf.float32)

  n = tf.shape(x)[0]
  empty = tf.equal(n, 0) | (resampled_length(n, tf.maximum(in_rate, 1), out_rate) < 1)
  return tf.cond(tf.equal(in_rate, out_rate), lambda: x,
                 lambda: tf.cond(empty, lambda: tf.zeros([0], tf.float32), _resample))
