"""The layout of a run's work directory, shared by training, evaluation, export and TFX.

  <workdir>/config.json          the config the run used (polyvit_tf.configs.io)
  <workdir>/checkpoints/         tf.train.CheckpointManager directory; each checkpoint's
                                 `model` node is polyvit_tf.model.weights.checkpoint(model)
  <workdir>/tensorboard/<task>/  TensorBoard summaries per task
  <workdir>/eval/                evaluation reports (metrics.json, tables)
"""

from __future__ import annotations

import contextlib
import os

import ml_collections
import tensorflow as tf

from polyvit_tf.configs import io as config_io
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.model import PolyViT
from polyvit_tf.model import polyvit as polyvit_lib
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


def load_model(workdir: str, checkpoint: str | None = None, *,
               config: ml_collections.ConfigDict | None = None,
               strategy: tf.distribute.Strategy | None = None,
               training_precision: bool = False) -> tuple[ml_collections.ConfigDict, PolyViT]:
  """The config and a PolyViT holding the weights of `checkpoint` (default: the latest of
  `workdir`): the one way a trained model is loaded (evaluation, export, initialisation).

  `config` defaults to the run's config.json; the model is built under `strategy`'s scope
  when given, and computes in mixed precision when `training_precision` and the config's
  `train.mixed_precision` say so (evaluation as trained; export always loads float32). Only
  the `model` node is read (optimizer state and data positions are ignored); every model
  weight must be present in the checkpoint.
  """
  config = config if config is not None else load_config(workdir)
  mixed = training_precision and specs_lib.resolve(config).train.mixed_precision
  with strategy.scope() if strategy is not None else contextlib.nullcontext():
    model = polyvit_lib.build(config, mixed_precision=mixed)
  path = checkpoint or latest_checkpoint(workdir)
  status = tf.train.Checkpoint(model=weights.checkpoint(model)).read(path)
  status.expect_partial().assert_existing_objects_matched()
  return config, model
