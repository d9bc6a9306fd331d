"""NumPy-only reference of the serving preprocessing, driven by the TFLite manifest alone.

An app that ships `<stem>.tflite` ports this file: every number it uses comes from the task's
entry of the manifest (`<stem>.json` beside the model, or the copy embedded in the .tflite,
`read_embedded_manifest`), which polyvit_tf/export/preprocessing_spec.py derives from the
training config and the TensorFlow preprocessing (the modality modules' `preprocessing_spec`
describing their `raw_inputs`, what the SavedModel's `<task>_raw` / `<task>_frames` signatures
run). It agrees with those to 1e-5
(tests/export/test_reference_preprocess.py, tests/export/test_litert_env.py).

Inputs are decoded media (decoding JPEG / PNG / video needs a codec: use the platform's):
  image   uint8 (height, width, 3) RGB pixels, any size
  audio   float waveform in [-1, 1], (samples,) mono or (samples, channels), and its rate;
          `read_wav` reads 16-bit PCM WAV files (stdlib `wave`), as tf.audio.decode_wav
  video   uint8 (n, height, width, 3) RGB frames in time order, any size and length

  task = manifest['tasks']['tones']
  views = preprocess(task, waveform, sample_rate=44_100)   # float32 (V, *input shape)
  view_logits = [runner(**{task['input']: v[None]})['logits'][0] for v in views]
  logits, probabilities = combine_views(np.stack(view_logits), task)

Imports nothing but NumPy and the standard library (no TensorFlow, no polyvit_tf module).
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import wave
from typing import Any

import numpy as np

METADATA_NAME = 'polyvit_manifest'  # name of the TFLite Model.metadata entry holding it
_F32 = np.float32
# Limits checked before anything is allocated (an app should keep its own at least as tight).
SAMPLE_RATE_RANGE = (1_000, 384_000)  # Hz
MAX_AUDIO_SECONDS = 600.0
MAX_IMAGE_PIXELS = 1 << 26  # height x width of one image or frame
MAX_VIDEO_FRAMES = 10_000


# ----------------------------------------------------------------------------------- manifest
def load_manifest(path: str) -> dict:
  """The manifest of a model: `<stem>.json` beside `<stem>.tflite`, else the embedded copy."""
  stem = path[:-len('.tflite')] if path.endswith('.tflite') else path
  if os.path.exists(stem + '.json'):
    with open(stem + '.json', encoding='utf-8') as f:
      return json.load(f)
  return read_embedded_manifest(stem + '.tflite')


def _u32(buf: bytes, pos: int) -> int:
  return struct.unpack_from('<I', buf, pos)[0]


def _field(buf: bytes, table: int, index: int) -> int | None:
  """Absolute position of field `index` of the flatbuffer table at `table` (None: absent)."""
  vtable = table - struct.unpack_from('<i', buf, table)[0]
  entry = 4 + 2 * index
  if entry >= struct.unpack_from('<H', buf, vtable)[0]:
    return None
  offset = struct.unpack_from('<H', buf, vtable + entry)[0]
  return table + offset if offset else None


def _vector(buf: bytes, pos: int) -> tuple[int, int]:
  """(start, length) of the vector referenced at `pos`."""
  start = pos + _u32(buf, pos)
  return start + 4, _u32(buf, start)


def read_embedded_manifest(tflite: str | bytes) -> dict:
  """The manifest stored in the .tflite's `Model.metadata` entry `polyvit_manifest`.

  Reads the flatbuffer directly (TFLite schema: Model.buffers = field 4, Model.metadata =
  field 6; Metadata.name = 0, .buffer = 1; Buffer.data = 0, or .offset / .size = 1 / 2).
  """
  if isinstance(tflite, (str, os.PathLike)):
    with open(tflite, 'rb') as f:
      tflite = f.read()
  buf = bytes(tflite)
  if buf[4:8] != b'TFL3':
    raise ValueError('not a TFLite flatbuffer (file identifier is not TFL3).')
  model = _u32(buf, 0)
  metadata, buffers = _field(buf, model, 6), _field(buf, model, 4)
  if metadata is None or buffers is None:
    raise KeyError(f'the model has no metadata entry {METADATA_NAME!r}.')
  start, count = _vector(buf, metadata)
  for i in range(count):
    entry = start + 4 * i + _u32(buf, start + 4 * i)
    name_start, name_len = _vector(buf, _field(buf, entry, 0))
    if buf[name_start:name_start + name_len].decode() != METADATA_NAME:
      continue
    index_pos = _field(buf, entry, 1)
    index = _u32(buf, index_pos) if index_pos is not None else 0
    b_start, _ = _vector(buf, buffers)
    table = b_start + 4 * index + _u32(buf, b_start + 4 * index)
    data = _field(buf, table, 0)
    if data is not None:
      d_start, d_len = _vector(buf, data)
    else:  # large models keep buffers after the flatbuffer (offset from the file start)
      d_start = struct.unpack_from('<Q', buf, _field(buf, table, 1))[0]
      d_len = struct.unpack_from('<Q', buf, _field(buf, table, 2))[0]
    return json.loads(buf[d_start:d_start + d_len].decode('utf-8'))
  raise KeyError(f'the model has no metadata entry {METADATA_NAME!r}.')


# ---------------------------------------------------------------------------- shared helpers
def view_starts(total: int, length: int, count: int) -> np.ndarray:
  """Starts of `count` windows of `length` evenly spread over `total` steps, int (count,):
  one view centred (slack // 2); else round-half-even(linspace(0, slack, count)) in float32,
  first and last exactly 0 and slack."""
  slack = max(int(total) - int(length), 0)
  if count == 1:
    return np.array([slack // 2])
  delta = _F32(slack) / _F32(count - 1)
  positions = np.arange(count, dtype=_F32) * delta
  positions[0], positions[-1] = 0.0, slack
  return np.round(positions).astype(np.int64)


def _interpolation(in_size: int, out_size: int):
  """Half-pixel-centre bilinear sample positions (TF's resize, no antialiasing), float32."""
  scale = _F32(in_size) / _F32(out_size)
  pos = (np.arange(out_size, dtype=_F32) + _F32(0.5)) * scale - _F32(0.5)
  floor = np.floor(pos)
  lower = np.maximum(floor.astype(np.int64), 0)
  upper = np.minimum(np.ceil(pos).astype(np.int64), in_size - 1)
  return lower, upper, (pos - floor).astype(_F32)


def resize_bilinear(x: np.ndarray, size) -> np.ndarray:
  """(..., h, w, C) -> float32 (..., H, W, C): bilinear with half-pixel centres and no
  antialiasing (tf.image.resize(method='bilinear'))."""
  x = np.asarray(x, _F32)
  y0, y1, ly = _interpolation(x.shape[-3], int(size[0]))
  x0, x1, lx = _interpolation(x.shape[-2], int(size[1]))
  lx = lx[:, None]
  rows0, rows1 = x[..., y0, :, :], x[..., y1, :, :]
  top = rows0[..., x0, :] + (rows0[..., x1, :] - rows0[..., x0, :]) * lx
  bottom = rows1[..., x0, :] + (rows1[..., x1, :] - rows1[..., x0, :]) * lx
  return (top + (bottom - top) * ly[:, None, None]).astype(_F32)


def _scale_values(x: np.ndarray, scaling: dict) -> np.ndarray:
  return (x / _F32(scaling['divisor']) + _F32(scaling['offset'])).astype(_F32)


def _grayscale(pixels: np.ndarray, spec: dict | None) -> np.ndarray:
  """uint8 RGB -> uint8 one channel, as tf.image.rgb_to_grayscale (None: keep RGB)."""
  if not spec:
    return pixels
  x = pixels.astype(_F32) * _F32(1.0 / spec['max_value'])
  w = [_F32(v) for v in spec['weights']]
  gray = x[..., 0] * w[0] + x[..., 1] * w[1] + x[..., 2] * w[2]
  return (gray * _F32(spec['max_value'] + 0.5)).astype(np.uint8)[..., None]


def _check_pixels(x: np.ndarray, rank: int, what: str, limits: dict | None) -> np.ndarray:
  """uint8 RGB of `rank`, within the manifest's `limits` (the module's when it has none)."""
  limits = limits or {}
  max_pixels = limits.get('max_pixels') or limits.get('max_frame_pixels') or MAX_IMAGE_PIXELS
  max_frames = limits.get('max_frames') or MAX_VIDEO_FRAMES
  x = np.asarray(x)
  if x.dtype != np.uint8 or x.ndim != rank or x.shape[-1] != 3:
    raise ValueError(f'{what}: expected uint8 RGB of rank {rank} (..., 3), got {x.dtype} '
                     f'{x.shape}.')
  if not 0 < x.shape[-3] * x.shape[-2] <= max_pixels:
    raise ValueError(f'{what}: {x.shape[-3]} x {x.shape[-2]} pixels, the limit is '
                     f'1 to {max_pixels} (max pixels).')
  if rank == 4 and not 0 < x.shape[0] <= max_frames:
    raise ValueError(f'{what}: {x.shape[0]} frames, the limit is 1 to {max_frames} '
                     '(max frames).')
  return x


# -------------------------------------------------------------------------------------- image
def image(pixels: np.ndarray, spec: dict) -> np.ndarray:
  """uint8 (h, w, 3) RGB -> float32 (1, H, W, C): whole image resized, scaled values."""
  x = _grayscale(_check_pixels(pixels, 3, 'image', spec.get('limits')), spec.get('grayscale'))
  x = resize_bilinear(x, spec['resize']['size'])
  return _scale_values(x, spec['value_scaling'])[None]


# -------------------------------------------------------------------------------------- audio
def read_wav(source: str | bytes) -> tuple[np.ndarray, int]:
  """16-bit PCM WAV (path or bytes) -> (float32 (samples, channels) / 32768, sample rate)."""
  with wave.open(io.BytesIO(source) if isinstance(source, bytes) else source, 'rb') as w:
    if w.getsampwidth() != 2:
      raise ValueError(f'WAV: only 16-bit PCM is read, got {8 * w.getsampwidth()}-bit.')
    low, high = SAMPLE_RATE_RANGE
    if not low <= w.getframerate() <= high:
      raise ValueError(f'WAV: sample rate {w.getframerate()} Hz, the limit is {low} to {high} '
                       'Hz (SAMPLE_RATE_RANGE).')
    if w.getnframes() > MAX_AUDIO_SECONDS * w.getframerate():
      raise ValueError(f'WAV: {w.getnframes()} samples at {w.getframerate()} Hz, the limit is '
                       f'{MAX_AUDIO_SECONDS} s (MAX_AUDIO_SECONDS).')
    raw = w.readframes(w.getnframes())
    samples = np.frombuffer(raw, '<i2').reshape(-1, w.getnchannels())
    return samples.astype(_F32) / _F32(32768.0), w.getframerate()


def resample(waveform: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
  """Fourier resampling (scipy.signal.resample's method): the spectrum below both Nyquist
  frequencies at the new length round-half-even(n * out / in); Nyquist bin of an even common
  length doubled (down) or halved (up)."""
  x = np.asarray(waveform, np.float64)
  if int(in_rate) == int(out_rate):
    return x.astype(_F32)
  n = x.shape[0]
  m = int(np.round(n * float(out_rate) / float(in_rate)))
  spectrum = np.fft.rfft(x)
  common = min(n, m)
  keep = common // 2 + 1
  kept = spectrum[:keep].copy()
  if common % 2 == 0 and m != n:
    kept[keep - 1] *= 2.0 if m < n else 0.5
  padded = np.zeros(m // 2 + 1, np.complex128)
  padded[:keep] = kept
  return (np.fft.irfft(padded, n=m) * (m / n)).astype(_F32)


def _mel(freq):
  return 1127.0 * np.log1p(np.asarray(freq, np.float64) / 700.0)


def mel_banks(num_mel_bins: int, fft_length: int, sample_rate: int, low_freq: float,
              high_freq: float) -> np.ndarray:
  """Kaldi's triangular mel filters (triangles in mel space), float32 (fft // 2 + 1, bins).

  high_freq <= 0 means Nyquist + high_freq (Kaldi's convention). The Nyquist row is zero, as
  in torchaudio (Kaldi uses fft_length / 2 bins).
  """
  nyquist = 0.5 * sample_rate
  if high_freq <= 0.0:
    high_freq += nyquist
  mel_low, mel_high = _mel(low_freq), _mel(high_freq)
  delta = (mel_high - mel_low) / (num_mel_bins + 1)
  left = mel_low + delta * np.arange(num_mel_bins, dtype=np.float64)
  center, right = left + delta, left + 2.0 * delta
  bins = fft_length // 2
  mel = _mel(sample_rate / fft_length * np.arange(bins, dtype=np.float64))[:, None]
  up = (mel - left) / (center - left)
  down = (right - mel) / (right - center)
  weights = np.maximum(0.0, np.minimum(up, down))
  weights = np.concatenate([weights, np.zeros((1, num_mel_bins))], axis=0)
  return weights.astype(_F32)


def hann_window(length: int) -> np.ndarray:
  """Symmetric Hann window (torch.hann_window(periodic=False), Kaldi 'hanning'), float32."""
  n = np.arange(length, dtype=np.float64)
  return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / (length - 1))).astype(_F32)


WINDOWS = {'hann_symmetric': hann_window}  # manifest `log_mel.window` -> window function


@functools.lru_cache(maxsize=8)
def _front_end(fbank_json: str) -> tuple[np.ndarray, np.ndarray]:
  p = json.loads(fbank_json)
  return (WINDOWS[p['window']](p['frame_length']).astype(np.float64),
          mel_banks(p['mel_bins'], p['fft_length'], p['sample_rate'], p['low_freq'],
                    p['high_freq']).astype(np.float64))


def log_mel(waveform: np.ndarray, fbank: dict) -> np.ndarray:
  """Mono waveform at fbank['sample_rate'] -> float32 (frames, mel_bins) Kaldi log-mel:
  clip mean removed, whole frames every hop, per-frame DC removal, pre-emphasis (the first
  sample is its own predecessor), window, zero-padded FFT, power, mel filters,
  log(max(., floor)); in float64 (as the graph: polyvit_tf/data/filterbank.py)."""
  window, banks = _front_end(json.dumps(fbank, sort_keys=True))
  length, hop = fbank['frame_length'], fbank['frame_shift']
  x = np.asarray(waveform, np.float64)
  if fbank['subtract_mean'] and x.size:
    x = x - x.mean()
  count = 0 if x.shape[0] < length else 1 + (x.shape[0] - length) // hop
  frames = x[np.arange(count)[:, None] * hop + np.arange(length)[None, :]]
  frames = frames - frames.mean(axis=-1, keepdims=True)
  previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=-1)
  frames = (frames - fbank['preemphasis'] * previous) * window
  spectrum = np.fft.rfft(frames, n=fbank['fft_length'], axis=-1)
  power = spectrum.real ** 2 + spectrum.imag ** 2
  mel = power @ banks
  return np.log(np.maximum(mel, fbank['log_floor'])).astype(_F32)


def audio(waveform: np.ndarray, sample_rate: int, spec: dict) -> np.ndarray:
  """Waveform (samples,) or (samples, channels) at `sample_rate` -> float32
  (V, frames, mel_bins, C): channels averaged, resampled, log-mel, V windows, normalised."""
  x = np.asarray(waveform, _F32)
  limits = spec.get('limits') or {}
  low, high = limits.get('sample_rate') or SAMPLE_RATE_RANGE
  max_seconds = limits.get('max_seconds') or MAX_AUDIO_SECONDS
  if x.ndim not in (1, 2) or not low <= int(sample_rate) <= high:
    raise ValueError(f'audio: expected (samples,) or (samples, channels) at {low} to {high} '
                     f'Hz (sample rate limits), got {x.shape} at {sample_rate} Hz.')
  if x.shape[0] > max_seconds * int(sample_rate):
    raise ValueError(f'audio: {x.shape[0] / int(sample_rate):.1f} s, the limit is '
                     f'{max_seconds} s (max seconds).')
  resampled = int(np.round(np.float64(x.shape[0]) * spec['resample']['to'] / int(sample_rate)))
  if resampled < limits.get('min_resampled_samples', spec['log_mel']['frame_length']):
    raise ValueError(f'audio: a clip of {x.shape[0]} samples at {sample_rate} Hz is shorter '
                     'than one 25 ms analysis window.')
  if x.ndim == 2:
    x = x.mean(axis=-1, dtype=_F32)
  fbank = spec['log_mel']
  spectrogram = log_mel(resample(x, sample_rate, spec['resample']['to']), fbank)
  frames, norm = spec['frames'], spec['normalization']
  views = []
  for start in view_starts(spectrogram.shape[0], frames, spec['views']['count']):
    clip = spectrogram[start:start + frames]
    clip = np.concatenate([clip, np.full((frames - clip.shape[0], clip.shape[1]),
                                         _F32(spec['pad_value']))], axis=0)
    clip = (clip - _F32(norm['mean'])) / _F32(norm['std_scale'] * norm['std'])
    views.append(np.repeat(clip[..., None], spec['channels'], axis=-1))
  return np.stack(views).astype(_F32)


# -------------------------------------------------------------------------------------- video
def _resize_short_side(clip: np.ndarray, short_side: int) -> np.ndarray:
  h, w = _F32(clip.shape[1]), _F32(clip.shape[2])
  scale = _F32(short_side) / min(h, w)
  size = np.round(np.array([h * scale, w * scale], _F32)).astype(np.int64)
  return resize_bilinear(clip, size)


def _crop_offsets(h: int, w: int, size, count: int) -> list[tuple[int, int]]:
  """Crop corners: one centred; or `count` from start to end along the longer side."""
  height, width = size
  centre = ((h - height) // 2, (w - width) // 2)
  if count == 1:
    return [centre]
  out = []
  for i in range(count):
    frac = _F32(i / (count - 1))
    oh = int(np.round(frac * _F32(h - height)))
    ow = int(np.round(frac * _F32(w - width)))
    out.append((oh, centre[1]) if h > w else (centre[0], ow))
  return out


def video(frames: np.ndarray, spec: dict) -> np.ndarray:
  """uint8 (n, h, w, 3) RGB frames -> float32 (V, T, H, W, C), V = temporal x spatial views,
  temporal-major (view = t * spatial + s)."""
  frames = _check_pixels(frames, 4, 'video', spec.get('limits'))
  if frames.shape[0] < 1:
    raise ValueError('video: no frames.')
  views_spec, crop = spec['views'], spec['crop']['size']
  steps = np.arange(spec['frames']) * spec['stride']
  views = []
  for start in view_starts(frames.shape[0], views_spec['length'], views_spec['temporal']):
    clip = _grayscale(frames[(start + steps) % frames.shape[0]], spec.get('grayscale'))
    clip = _resize_short_side(clip, spec['resize']['short_side'])
    for oh, ow in _crop_offsets(clip.shape[1], clip.shape[2], crop, views_spec['spatial']):
      views.append(_scale_values(clip[:, oh:oh + crop[0], ow:ow + crop[1]],
                                 spec['value_scaling']))
  return np.stack(views).astype(_F32)


# ------------------------------------------------------------------------------ per task
def preprocess(task: dict, x: Any, *, sample_rate: int | None = None) -> np.ndarray:
  """The task's model inputs float32 (V, *input_shape) from decoded media (module doc)."""
  spec = task['preprocessing']
  modality = spec['modality']
  if modality == 'image':
    out = image(x, spec)
  elif modality == 'audio':
    if sample_rate is None:
      raise ValueError('audio: sample_rate is required.')
    out = audio(x, sample_rate, spec)
  elif modality == 'video':
    out = video(x, spec)
  else:
    raise ValueError(f'no reference preprocessing for modality {modality!r}.')
  expected = tuple(task['shape'][1:])
  if out.shape[1:] != expected:
    raise AssertionError(f'{modality}: made {out.shape[1:]}, the model takes {expected}.')
  return out


def activation(logits: np.ndarray, kind: str) -> np.ndarray:
  """'sigmoid' per class or 'softmax' over the last axis, float32."""
  x = np.asarray(logits, np.float64)
  if kind == 'sigmoid':
    return (1.0 / (1.0 + np.exp(-x))).astype(_F32)
  e = np.exp(x - x.max(axis=-1, keepdims=True))
  return (e / e.sum(axis=-1, keepdims=True)).astype(_F32)


def combine_views(view_logits: np.ndarray, task: dict) -> tuple[np.ndarray, np.ndarray]:
  """(logits, probabilities) of one example's (V, classes) view logits, combined as the
  evaluator and the raw signatures do: logits = view mean; probabilities = mean of the views'
  probabilities ('probs') or the activation of the mean logits ('logits')."""
  view_logits = np.asarray(view_logits, _F32)
  logits = view_logits.mean(axis=0)
  kind, mode = task['activation'], task['combine_views']['mode']
  if mode == 'probs':
    return logits, activation(view_logits, kind).mean(axis=0)
  if mode == 'logits':
    return logits, activation(logits, kind)
  raise ValueError(f'unknown combine_views mode {mode!r}.')


def top_k(probabilities: np.ndarray, task: dict) -> list[tuple[int, str, float]]:
  """(class id, class name, probability) of the task's top-k classes, best first."""
  k = min(int(task['top_k']), len(task['class_names']))
  ids = np.argsort(-np.asarray(probabilities), kind='stable')[:k]
  return [(int(i), task['class_names'][i], float(probabilities[i])) for i in ids]
