"""The tf.signal filterbank against the AST front end (Hugging Face's numpy implementation),
and the TF resampler against scipy.signal.resample."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf
from transformers import audio_utils
from transformers.utils import is_speech_available

from polyvit_tf.data import filterbank
from polyvit_tf.data import resample

SR = 16_000


def _reference(waveform: np.ndarray, num_mel_bins: int = 128) -> np.ndarray:
  """ASTFeatureExtractor's numpy path (used when torchaudio is absent), step for step."""
  mel = audio_utils.mel_filter_bank(
      num_frequency_bins=257, num_mel_filters=num_mel_bins, min_frequency=20,
      max_frequency=SR // 2, sampling_rate=SR, norm=None, mel_scale='kaldi',
      triangularize_in_mel_space=True)
  window = audio_utils.window_function(400, 'hann', periodic=False)
  return audio_utils.spectrogram(
      waveform, window, frame_length=400, hop_length=160, fft_length=512, power=2.0,
      center=False, preemphasis=0.97, mel_filters=mel, log_mel='log',
      mel_floor=1.192092955078125e-07, remove_dc_offset=True).T


def _signals() -> dict[str, np.ndarray]:
  rng = np.random.default_rng(0)
  out = {}
  # Lengths that are not a whole number of hops (and one that is).
  n = 16_037
  t = np.arange(n) / SR
  # Speech-like: a glottal pulse train with a moving pitch through two formant resonators,
  # syllable envelopes and pauses.
  pitch = 120 + 30 * np.sin(2 * np.pi * 1.5 * t)
  pulses = (np.diff(np.floor(np.cumsum(pitch) / SR), prepend=0) > 0).astype(float)
  voiced = pulses
  for f, bw in ((700, 80), (1200, 100), (2600, 150)):
    r = np.exp(-np.pi * bw / SR)
    voiced = scipy.signal.lfilter([1.0], [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r],
                                  voiced)
  envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
  out['speech_like'] = 0.3 * voiced / np.abs(voiced).max() * envelope
  out['tonal'] = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1320 * t)
  out['chirp'] = 0.4 * scipy.signal.chirp(t, f0=100, t1=t[-1], f1=7000, method='logarithmic')
  out['noise'] = 0.1 * rng.standard_normal(n)
  out['noise_whole_hops'] = 0.1 * rng.standard_normal(400 + 160 * 57)
  out['short_559'] = 0.3 * rng.standard_normal(559)
  out['tonal_silent_tail'] = np.concatenate([out['tonal'][:8000], np.zeros(4123)])
  return {k: (v - v.mean()).astype(np.float32) for k, v in out.items()}


def test_reference_is_the_numpy_path():
  # ASTFeatureExtractor uses its numpy implementation exactly when torchaudio is missing.
  assert not is_speech_available()


@pytest.mark.parametrize('name', sorted(_signals()))
def test_log_mel_matches_ast_front_end(name):
  x = _signals()[name]
  ref = _reference(x.astype(np.float64))
  ours = filterbank.log_mel_fbank(x, subtract_mean=False).numpy()
  assert ours.shape == ref.shape == (filterbank.num_frames(len(x)), 128)
  diff = np.abs(ours - ref)
  loud = ref > -10.0
  assert loud.any()
  assert diff[loud].max() <= 1e-3, (name, diff[loud].max())
  assert np.percentile(diff, 99) <= 2e-3, (name, np.percentile(diff, 99))


def test_mean_subtraction_is_applied():
  x = _signals()['tonal'] + 0.3
  with_mean = filterbank.log_mel_fbank(x).numpy()
  ref = _reference((x - x.mean()).astype(np.float64))
  assert np.abs(with_mean - ref)[ref > -10].max() <= 1e-3


def test_mel_banks_match_kaldi_reference():
  for bins in (64, 128):
    ref = audio_utils.mel_filter_bank(
        num_frequency_bins=257, num_mel_filters=bins, min_frequency=20, max_frequency=8000,
        sampling_rate=SR, norm=None, mel_scale='kaldi', triangularize_in_mel_space=True)
    np.testing.assert_allclose(filterbank.kaldi_mel_banks(bins, 512, SR), ref, atol=1e-6)


def test_frame_counts():
  assert filterbank.num_frames(399) == 0
  assert filterbank.num_frames(400) == 1
  assert filterbank.num_frames(16_000) == 98
  assert filterbank.log_mel_fbank(np.zeros(399, np.float32)).shape == (0, 128)


@pytest.mark.parametrize('rates', [(44_100, 16_000), (8_000, 16_000), (22_050, 16_000),
                                   (48_000, 16_000), (16_000, 16_000)])
def test_resample_matches_scipy(rates):
  in_rate, out_rate = rates
  rng = np.random.default_rng(1)
  for n in (in_rate, in_rate + 7):
    x = rng.standard_normal(n).astype(np.float32)
    ours = resample.resample(x, in_rate, out_rate).numpy()
    ref = scipy.signal.resample(x.astype(np.float64), int(round(n * out_rate / in_rate)))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_resample_keeps_a_tone():
  t = np.arange(44_100) / 44_100
  x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
  y = resample.resample(tf.constant(x), tf.constant(44_100), 16_000).numpy()
  expected = np.sin(2 * np.pi * 1000 * np.arange(16_000) / 16_000)
  assert np.abs(y - expected)[100:-100].max() < 1e-3


def report() -> str:
  """The parity table of docs/data.md: `python -m tests.data.test_filterbank`."""
  lines = ['| signal | samples | frames | max abs diff (ref > -10) | p99 abs diff (all bins) '
           '| max abs diff (all bins) |', '|---|---|---|---|---|---|']
  for name, x in sorted(_signals().items()):
    ref = _reference(x.astype(np.float64))
    diff = np.abs(filterbank.log_mel_fbank(x, subtract_mean=False).numpy() - ref)
    lines.append(f'| {name} | {len(x)} | {len(ref)} | {diff[ref > -10].max():.2e} | '
                 f'{np.percentile(diff, 99):.2e} | {diff.max():.2e} |')
  return '\n'.join(lines)


if __name__ == '__main__':
  print(report())
