"""Small PolyViT configs and work directories for the checkpoint tests (D=32, 2 layers)."""

from __future__ import annotations

import ml_collections
import numpy as np
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.configs import base
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights

D, LAYERS, HEADS, MLP = 32, 2, 2, 64
_KW = dict(train_steps=1, learning_rate=0.1, warmup_steps=0, batch_size=2)


def config(*, num_adapt_layers: int = 0, image_size=(32, 32), image_classes: int = 7,
           audio_channels: int = 1, modalities=('image', 'audio', 'video'),
           patch=(8, 8), **init) -> ml_collections.ConfigDict:
  """Image 32x32 (the checkpoints' source resolution), audio 48x16, video 4x32x32 (2x8x8)."""
  model = base.model_config('Ti', num_adapt_layers, hidden_size=D, num_layers=LAYERS,
                            num_heads=HEADS, mlp_dim=MLP)
  mods = ml_collections.ConfigDict(dict(
      image=base.modality_config(image_size, patch, 3),
      audio=base.modality_config((48, 16), patch, audio_channels),
      video=base.modality_config((4, 32, 32), (2,) + tuple(patch), 3)))
  tasks = {}
  if 'image' in modalities:
    tasks['img'] = base.task_config('image', image_classes, **_KW)
  if 'audio' in modalities:
    tasks['aud'] = base.task_config('audio', 5, multilabel=True, **_KW)
  if 'video' in modalities:
    tasks['vid'] = base.task_config('video', 4, **_KW)
  cfg = base.assemble(model, mods, tasks, name='small')
  cfg.init.update(init)
  return cfg


def randomize(model: PolyViT, seed: int) -> None:
  """Random values everywhere (zero heads and CLS tokens would hide mapping errors)."""
  rng = np.random.default_rng(seed)
  for v in model.trainable_variables:
    v.assign(rng.normal(0.0, 0.2, v.shape).astype('float32')
             + (1.0 if 'gamma' in v.path else 0.0))


def save_workdir(model: PolyViT, path: str) -> str:
  """A work directory as training leaves it: config.json and checkpoints/ckpt-<n>."""
  workdir_lib.save_config(path, model.config)
  step = tf.Variable(7, dtype=tf.int64)
  ckpt = tf.train.Checkpoint(model=weights.checkpoint(model), step=step)
  return tf.train.CheckpointManager(ckpt, workdir_lib.checkpoint_dir(path), 2).save(7)
