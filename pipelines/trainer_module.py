"""The Trainer's run_fn: co-train with polyvit_tf.train, then export the serving SavedModel.

TFX calls `run_fn(fn_args)` with the GenericExecutor. `fn_args.custom_config['config']` is
the PolyViT config as JSON; the train/eval files are the splits of the one Examples artifact
(pipelines/examples.py), which every task's data source is pointed at. The run directory
(`fn_args.model_run_dir`, TFX's ModelRun artifact) is the polyvit_tf work dir: checkpoints,
TensorBoard logs per task, eval reports. The SavedModel (one signature per task) is written
to `fn_args.serving_model_dir`, where Pusher finds it.

Several replicas (pipeline.training='vertex' with workers: every replica of the CustomJob runs
this run_fn under MultiWorkerMirroredStrategy) train together; only the chief (the process
whose strategy checkpoints: the trainer's own rule) exports. TFX's GenericExecutor fails a
process whose run_fn leaves no serving model, so the other replicas wait, bounded, until the
chief's copy is complete (saved_model.pb is copied last).
"""

from __future__ import annotations

import os
import time

import tensorflow as tf
from absl import logging

from pipelines import examples as examples_lib
from polyvit_tf import train as train_lib
from polyvit_tf.configs import io as config_io
from polyvit_tf.export import savedmodel
from polyvit_tf.train import strategy as strategy_lib

CONFIG_KEY = 'config'
SAVED_MODEL = 'saved_model.pb'
CHIEF_EXPORT_TIMEOUT_SECONDS = 3600
_POLL_SECONDS = 10


def copy_tree(src: str, dst: str) -> None:
  """Recursive copy on any TF filesystem (local, GCS, ...); the top-level saved_model.pb is
  copied last, so a reader that sees it sees a complete model."""
  last = []
  for directory, _, files in tf.io.gfile.walk(src):
    target = os.path.join(dst, os.path.relpath(directory, src))
    tf.io.gfile.makedirs(target)
    for name in files:
      pair = (os.path.join(directory, name), os.path.join(target, name))
      if directory.rstrip('/') == src.rstrip('/') and name == SAVED_MODEL:
        last.append(pair)
        continue
      tf.io.gfile.copy(*pair, overwrite=True)
  for pair in last:
    tf.io.gfile.copy(*pair, overwrite=True)


def wait_for_chief_export(serving_model_dir: str,
                          timeout: float = CHIEF_EXPORT_TIMEOUT_SECONDS) -> None:
  """Returns when the chief's SavedModel is complete in `serving_model_dir`; raises
  TimeoutError (naming the path) after `timeout` seconds."""
  path = os.path.join(serving_model_dir, SAVED_MODEL)
  deadline = time.monotonic() + timeout
  while not tf.io.gfile.exists(path):
    if time.monotonic() > deadline:
      raise TimeoutError(f'run_fn: the chief wrote no {path} within {timeout:.0f} s')
    time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def run_fn(fn_args) -> None:
  """TFX Trainer entry point."""
  config = config_io.loads(fn_args.custom_config[CONFIG_KEY])
  uri = examples_lib.examples_uri_from_files(list(fn_args.train_files) +
                                             list(fn_args.eval_files))
  config = examples_lib.config_for_examples(config, uri)
  workdir = fn_args.model_run_dir
  metrics = train_lib.run(config, workdir)
  logging.info('run_fn: final eval metrics %s', metrics)
  # The strategy the run used (one per kind and process): export on its chief only.
  if not strategy_lib.from_config(config).extended.should_checkpoint:
    logging.info('run_fn: not the chief; waiting for its export in %s',
                 fn_args.serving_model_dir)
    wait_for_chief_export(fn_args.serving_model_dir)
    return
  version_dir = savedmodel.export_saved_model(workdir, os.path.join(workdir, 'export'))
  copy_tree(version_dir, fn_args.serving_model_dir)
