"""The Trainer's run_fn: co-train with polyvit_tf.train, then export the serving SavedModel.

TFX calls `run_fn(fn_args)` with the GenericExecutor. `fn_args.custom_config['config']` is
the PolyViT config as JSON; the train/eval files are the splits of the one Examples artifact
(pipelines/examples.py), which every task's data source is pointed at. The run directory
(`fn_args.model_run_dir`, TFX's ModelRun artifact) is the polyvit_tf work dir: checkpoints,
TensorBoard logs per task, eval reports. The SavedModel (one signature per task) is written
to `fn_args.serving_model_dir`, where Pusher finds it.
"""

from __future__ import annotations

import os

import tensorflow as tf
from absl import logging

from pipelines import examples as examples_lib
from polyvit_tf import train as train_lib
from polyvit_tf.configs import io as config_io
from polyvit_tf.export import savedmodel

CONFIG_KEY = 'config'


def copy_tree(src: str, dst: str) -> None:
  """Recursive copy on any TF filesystem (local, GCS, ...)."""
  for directory, _, files in tf.io.gfile.walk(src):
    target = os.path.join(dst, os.path.relpath(directory, src))
    tf.io.gfile.makedirs(target)
    for name in files:
      tf.io.gfile.copy(os.path.join(directory, name), os.path.join(target, name),
                       overwrite=True)


def run_fn(fn_args) -> None:
  """TFX Trainer entry point."""
  config = config_io.loads(fn_args.custom_config[CONFIG_KEY])
  uri = examples_lib.examples_uri_from_files(list(fn_args.train_files) +
                                             list(fn_args.eval_files))
  config = examples_lib.config_for_examples(config, uri)
  workdir = fn_args.model_run_dir
  metrics = train_lib.run(config, workdir)
  logging.info('run_fn: final eval metrics %s', metrics)
  version_dir = savedmodel.export_saved_model(workdir, os.path.join(workdir, 'export'))
  copy_tree(version_dir, fn_args.serving_model_dir)
