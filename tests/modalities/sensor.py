"""A toy fourth modality, for tests only: multichannel sensor streams (T, C) with 1-D patches.

Everything the library needs from a modality is here, in one module, and it touches no other
file: importing it registers it (the registry line at the end), `get_config()` is its config.

tf.Example payload: `sensor/values` float[] (samples x channels, row-major) and
`sensor/channels` int64. Canonical payload: {'samples': float32 (n, C)}. Training: a random
window of T samples; evaluation and serving: `eval_views` windows evenly spaced (one:
centred); both divided by `data.sensor_scale`. Raw-input signature `<task>_raw`: `csv` string
(batch,), a CSV file's text (one row per sample, one column per channel), parsed in the graph.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np
import tensorflow as tf

from polyvit_tf import modalities
from polyvit_tf.configs import base
from polyvit_tf.data import augment
from polyvit_tf.data import errors
from polyvit_tf.data import features
from polyvit_tf.data.audio import view_starts
from polyvit_tf.data.media import MediaError

VALUES = 'sensor/values'
CHANNELS = 'sensor/channels'


@dataclasses.dataclass(frozen=True)
class SensorOptions:
  length: int
  channels: int
  scale: float
  augment: bool
  num_views: int


def _window(samples: tf.Tensor, start: tf.Tensor, opts: SensorOptions) -> tf.Tensor:
  """`length` samples from `start`, zero-padded at the end, scaled: float32 (T, C)."""
  clip = samples[start:start + opts.length]
  clip = tf.pad(clip, [[0, opts.length - tf.shape(clip)[0]], [0, 0]])
  return tf.ensure_shape(clip / opts.scale, (opts.length, opts.channels))


def _status(samples: tf.Tensor, opts: SensorOptions) -> tf.Tensor:
  return tf.where((tf.shape(samples)[0] == 0) | (tf.shape(samples)[1] != opts.channels),
                  errors.EMPTY, errors.OK)


def _views(samples: tf.Tensor, opts: SensorOptions) -> tf.Tensor:
  starts = view_starts(tf.shape(samples)[0], opts.length, opts.num_views)
  return tf.stack([_window(samples, starts[v], opts) for v in range(opts.num_views)])


def _from_csv(text: tf.Tensor) -> tf.Tensor:
  """A CSV file's text -> float32 (samples, channels)."""
  lines = tf.strings.split(tf.strings.strip(text), '\n')
  cells = tf.strings.split(tf.strings.strip(lines), ',')
  return tf.strings.to_number(cells, tf.float32).to_tensor()


def _features(samples: np.ndarray) -> dict:
  samples = np.asarray(samples, np.float32)
  return {VALUES: features.float_feature(samples.reshape(-1).tolist()),
          CHANNELS: features.int64_feature([samples.shape[1]])}


class SensorModality(modalities.Modality):
  """Sensor streams (see the module docstring)."""

  name = 'sensor'
  input_rank = 1
  input_axes = '(T,)'
  channels = (1, 2, 3, 4, 5, 6)
  data_defaults = {'sensor_scale': 1.0}  # samples are divided by it
  media_extensions = ('.csv',)

  def options(self, geometry, data, eval_views):
    return SensorOptions(length=geometry.input_size[0], channels=geometry.channels,
                         scale=data.range('sensor_scale', 0.0, low_open=True),
                         augment=bool(data['augment']), num_views=eval_views)

  def feature_spec(self):
    return {VALUES: tf.io.VarLenFeature(tf.float32),
            CHANNELS: tf.io.FixedLenFeature([], tf.int64, default_value=1)}

  def payload_spec(self):
    return {'samples': tf.TensorSpec([None, None], tf.float32)}

  def parse(self, parsed):
    values = tf.sparse.to_dense(parsed[VALUES])
    channels = tf.maximum(tf.cast(parsed[CHANNELS], tf.int32), 1)
    return {'samples': tf.reshape(values, [-1, channels])}

  def payload_features(self, payload):
    return _features(payload['samples'])

  def schema_features(self):
    return [(VALUES, 'float', True), (CHANNELS, 'int', True)]

  def train_inputs(self, payload, opts, seed):
    samples, status = payload['samples'], _status(payload['samples'], opts)
    if opts.augment:
      start = augment.uniform_int(seed, 0, tf.shape(samples)[0] - opts.length)
    else:
      start = view_starts(tf.shape(samples)[0], opts.length, 1)[0]
    clip = tf.cond(tf.equal(status, errors.OK), lambda: _window(samples, start, opts),
                   lambda: tf.zeros([opts.length, opts.channels]))
    return clip, status

  def eval_inputs(self, payload, opts):
    samples, status = payload['samples'], _status(payload['samples'], opts)
    views = tf.cond(tf.equal(status, errors.OK), lambda: _views(samples, opts),
                    lambda: tf.zeros([opts.num_views, opts.length, opts.channels]))
    return views, status

  def raw_inputs(self, opts):
    return [modalities.RawInput('raw', tf.TensorSpec((None,), tf.string, name='csv'),
                                lambda text: _views(_from_csv(text), opts))]

  def warmup_input(self, suffix, geometry):
    del suffix
    rows = np.zeros((geometry.input_size[0], geometry.channels))
    return np.array([('\n'.join(','.join('0' for _ in r) for r in rows)).encode()],
                    dtype=object)

  def client_file(self, path, settings):
    del settings
    self.convert_file(path, None)  # a readable CSV of samples, or MediaError
    with open(path, 'rb') as f:
      return f.read()

  def convert_file(self, path, opts):
    del opts
    try:
      samples = np.loadtxt(path, delimiter=',', ndmin=2, dtype=np.float32)
    except (OSError, ValueError) as e:
      raise MediaError(f'unreadable CSV ({e})') from None
    if not samples.size:
      raise MediaError('no samples')
    return _features(samples)

  def write_media_file(self, payload, stem):
    path = stem + '.csv'
    np.savetxt(path, np.asarray(payload['samples']), delimiter=',', fmt='%.6f')
    return path

  def synthetic_payload(self, labels, num_classes, geometry, opts, rng):
    """A sine per channel whose frequency grows with the (first) label, plus noise."""
    n = opts.length + 16
    t = np.arange(n)[:, None]
    phase = rng.uniform(0, 2 * np.pi, (1, opts.channels))
    freq = 0.05 + 0.35 * labels[0] / max(1, num_classes - 1)
    samples = np.sin(2 * np.pi * freq * t + phase) + rng.normal(0, 0.1, (n, opts.channels))
    return _features(samples)


MODALITY = modalities.register(SensorModality())  # the registry line


def get_config() -> ml_collections.ConfigDict:
  """A tiny PolyViT with one sensor task of 4 classes (32 samples x 3 channels, patches of 4)."""
  model = base.model_config('Ti', hidden_size=32, num_layers=2, num_heads=2, mlp_dim=64)
  mods = ml_collections.ConfigDict({'sensor': base.modality_config((32,), (4,), 3)})
  task = base.task_config('sensor', 4, train_steps=6, warmup_steps=1, learning_rate=0.1,
                          batch_size=8, eval_views=2,
                          class_names=('still', 'walk', 'run', 'shake'))
  return base.assemble(model, mods, {'gestures': task}, name='sensor_toy',
                       eval=dict(batch_size=8), train=dict(checkpoint_every_steps=0))

