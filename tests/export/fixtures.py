"""A trained-looking tiny run, exported once per test session, and media to feed it.

The work dir is made without training: a tiny PolyViT (polyvit_tf/configs/tiny.py, with two
evaluation views for audio and video so multi-view serving is exercised) whose heads are
randomised so that outputs differ between classes, saved as config.json plus a
CheckpointManager checkpoint whose `model` node is weights.checkpoint(model).
"""

from __future__ import annotations

import io
import os
import threading
import wave

import ml_collections
import numpy as np
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.configs import specs
from polyvit_tf.configs import tiny
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights

# Stated bounds per TFLite variant, relative to the SavedModel's largest |logit| on the same
# inputs (random-headed tiny model; the reports show the measured values).
QUANTIZED_BOUNDS = {  # quantization: (max |logit diff| / max |logit|, minimum top-1 agreement)
    'float16': (0.02, 0.9),
    'dynamic_int8': (0.1, 0.8),
    'int8': (0.6, 0.5),  # full int8 of an untrained transformer is coarse
}

_LOCK = threading.Lock()
_CACHE: dict[str, str] = {}


def raw_views(config: ml_collections.ConfigDict, task: str, suffix: str = 'raw'):
  """The raw-input preprocessing of `task` (its modality module's `raw_inputs`, what the
  signature `<task>_<suffix>` runs): one example -> float32 (V, *input_shape)."""
  spec = specs.resolve(config)
  raw_inputs = spec.modality_of(task).impl.raw_inputs(spec.data[task].options)
  return {r.suffix: r for r in raw_inputs}[suffix].views


def tiny_config() -> ml_collections.ConfigDict:
  config = tiny.get_config()
  config.tasks.audio_a.eval_views = 2
  config.tasks.video_a.eval_views = 2
  config.tasks.image_a.class_names = tuple(f'digit {i}' for i in range(10))
  return config


def make_workdir(path: str, config: ml_collections.ConfigDict | None = None,
                 seed: int = 3) -> tuple[ml_collections.ConfigDict, PolyViT]:
  """Writes config.json and one checkpoint of a tiny PolyViT with random heads to `path`."""
  config = config or tiny_config()
  model = PolyViT(config, seed=seed)
  rng = np.random.default_rng(seed)
  for head in model.heads.values():
    head.kernel.assign(rng.normal(0, 0.5, head.kernel.shape).astype(np.float32))
    head.bias.assign(rng.normal(0, 0.1, head.bias.shape).astype(np.float32))
  workdir_lib.save_config(path, config)
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(model=weights.checkpoint(model), step=tf.Variable(1)),
      workdir_lib.checkpoint_dir(path), max_to_keep=1)
  manager.save()
  return config, model


def exported(tmp_path_factory) -> str:
  """The base directory of one SavedModel export of the tiny run (made once per session)."""
  from polyvit_tf.export import export_saved_model  # pylint: disable=import-outside-toplevel
  with _LOCK:
    if 'base' not in _CACHE:
      root = str(tmp_path_factory.mktemp('export'))
      make_workdir(os.path.join(root, 'run'))
      export_saved_model(os.path.join(root, 'run'), os.path.join(root, 'models', 'polyvit'))
      _CACHE['base'] = os.path.join(root, 'models', 'polyvit')
      _CACHE['workdir'] = os.path.join(root, 'run')
  return _CACHE['base']


def workdir_of_export() -> str:
  return _CACHE['workdir']


# ------------------------------------------------------------------------------------- media
def image_bytes(seed: int, size=(40, 48), fmt: str = 'jpeg') -> bytes:
  """A seeded smooth colour image, encoded (a size that needs resizing to 32 x 32)."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:size[0], :size[1]] / max(size)
  img = np.stack([np.sin(6 * x + rng.uniform(0, 6)), np.cos(5 * y + rng.uniform(0, 6)),
                  np.sin(4 * (x + y) + rng.uniform(0, 6))], -1)
  pixels = tf.constant(((img + 1) * 127.5).astype(np.uint8))
  encode = tf.io.encode_jpeg if fmt == 'jpeg' else tf.io.encode_png
  return encode(pixels).numpy()


def wav_bytes(seed: int, seconds: float = 1.0, rate: int = 16000) -> bytes:
  """A seeded chirp plus noise, 16-bit PCM mono WAV."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * rate)) / rate
  f0 = rng.uniform(300, 3000)
  x = 0.5 * np.sin(2 * np.pi * (f0 + 500 * t) * t) + 0.05 * rng.normal(size=t.shape)
  buf = io.BytesIO()
  with wave.open(buf, 'wb') as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes((np.clip(x, -1, 1) * 32767).astype('<i2').tobytes())
  return buf.getvalue()


def video_frames(seed: int, num_frames: int = 12, size=(36, 44)) -> np.ndarray:
  """uint8 (T, H, W, 3): a bright square moving across a seeded background."""
  rng = np.random.default_rng(seed)
  frames = np.tile(rng.integers(0, 80, (1, 1, 1, 3), dtype=np.uint8),
                   (num_frames,) + tuple(size) + (1,))
  for t in range(num_frames):
    x = int(t * (size[1] - 10) / max(num_frames - 1, 1))
    frames[t, 10:20, x:x + 10] = 230
  return frames


def jpeg_frames(frames: np.ndarray) -> list[bytes]:
  return [tf.io.encode_jpeg(tf.constant(f)).numpy() for f in frames]
