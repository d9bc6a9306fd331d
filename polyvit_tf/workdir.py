"""The layout of a run's work directory, shared by training, evaluation, export and TFX.

  <workdir>/config.json          the config the run used (polyvit_tf.configs.io)
  <workdir>/checkpoints/         tf.train.CheckpointManager directory; each checkpoint's
                                 `model` node is polyvit_tf.model.weights.checkpoint(model)
  <workdir>/tensorboard/<task>/  TensorBoard summaries per task
  <workdir>/eval/                evaluation reports (metrics.json, tables)
"""

from __future__ import annotations

import os

import ml_collections
import tensorflow as tf

from polyvit_tf.configs import io as config_io
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights

CONFIG = 'config.json'
CHECKPOINTS = 'checkpoints'
TENSORBOARD = 'tensorboard'
EVAL = 'eval'


def config_path(workdir: str) -> str:
  return os.path.join(workdir, CONFIG)


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(workdir, CHECKPOINTS)


def save_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  tf.io.gfile.makedirs(workdir)
  config_io.save(config, config_path(workdir))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = config_path(workdir)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'{path}: no config; is {workdir!r} a polyvit_tf work directory?')
  return config_io.load(path)


def latest_checkpoint(workdir: str) -> str:
  """Path prefix of the newest checkpoint; FileNotFoundError if there is none."""
  path = tf.train.latest_checkpoint(checkpoint_dir(workdir))
  if path is None:
    raise FileNotFoundError(f'{checkpoint_dir(workdir)}: no checkpoint found.')
  return path


def load_model(workdir: str, checkpoint: str | None = None) -> tuple[ml_collections.ConfigDict,
                                                                     PolyViT]:
  """The run's config and a PolyViT holding the weights of `checkpoint` (default: latest).

  Only the `model` node is read (optimizer state and data positions are ignored); every
  model weight must be present in the checkpoint.
  """
  config = load_config(workdir)
  model = PolyViT(config)
  path = checkpoint or latest_checkpoint(workdir)
  status = tf.train.Checkpoint(model=weights.checkpoint(model)).read(path)
  status.expect_partial().assert_existing_objects_matched()
  return config, model
