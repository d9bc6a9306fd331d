r"""Runs the pipeline locally: LocalDagRunner, a sqlite ML Metadata store, Beam DirectRunner.

  python -m pipelines.run_local --config=polyvit_tf/configs/demo.py --root=runs/demo

Caching is on: a second run with the same config reuses every component's outputs. At the
end it prints the per-task metrics and blessing of this run (from ML Metadata), where the
pushed SavedModel and the TFLite file are, and (with --predict) a prediction for one eval
file of the first task, through the local gRPC server (serving/local_server.py) and client.
"""

from __future__ import annotations

import logging as std_logging
import os
import re
import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import tensorflow as tf
from tfx import v1 as tfx

from pipelines import layout
from pipelines import list_runs
from pipelines import pipeline as pipeline_lib
from polyvit_tf import quiet


_PROGRESS = re.compile(r'Component \S+ is (running|finished)|^step \d+/\d+|final eval')


class _ConsoleFilter(std_logging.Filter):
  """Passes warnings (but the known noise of every run, polyvit_tf/quiet.py), TFX component
  progress and polyvit_tf's own progress lines."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    if record.levelno >= std_logging.WARNING:
      return quiet.KnownNoise().filter(record)
    return bool(_PROGRESS.search(record.getMessage()))


def _quiet_console(log_file: str) -> None:
  """Full INFO log to `log_file`; the console keeps what _ConsoleFilter passes."""
  root = std_logging.getLogger()
  for handler in root.handlers:
    handler.addFilter(_ConsoleFilter())
  os.makedirs(os.path.dirname(log_file), exist_ok=True)
  file_handler = std_logging.FileHandler(log_file)
  file_handler.setFormatter(std_logging.Formatter('%(asctime)s %(levelname)s %(message)s'))
  root.addHandler(file_handler)
  logging.set_verbosity(logging.INFO)


def build(config, root: str, enable_cache: bool = True,
          tflite_quantization: str = 'float32') -> tfx.dsl.Pipeline:
  """The local pipeline of `config` under `root`."""
  root = os.path.abspath(root)
  return pipeline_lib.create_pipeline(
      config, pipeline_name=layout.PIPELINE_NAME,
      pipeline_root=layout.pipeline_root(root), serving_dir=layout.serving_dir(root),
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          layout.metadata_path(root)),
      enable_cache=enable_cache, tflite_quantization=tflite_quantization)


def run(config, root: str, enable_cache: bool = True,
        tflite_quantization: str = 'float32') -> list_runs.RunSummary:
  """Runs the pipeline; returns this run's summary from ML Metadata."""
  tfx.orchestration.LocalDagRunner().run_with_ir(
      pipeline_lib.local_ir(build(config, root, enable_cache, tflite_quantization)))
  return list_runs.summarize(list_runs.open_store(layout.metadata_path(os.path.abspath(root))))[-1]


def _define_flags() -> None:
  """Flags are defined only when run as a program, so importing this module (tests, other
  tools) defines none."""
  config_flags.DEFINE_config_file('config', None, 'PolyViT config file[:arg].',
                                  lock_config=False)
  flags.DEFINE_string('root', 'runs/demo', 'Directory for artifacts, ML Metadata, '
                      'the serving directory and the demo prediction inputs.')
  flags.DEFINE_bool('enable_cache', True, 'Reuse outputs of unchanged components.')
  flags.DEFINE_bool('predict', True, 'After the run, serve the pushed model with the '
                    'local server and classify one eval file.')
  flags.DEFINE_string('predict_task', '', 'Task of that prediction (default: '
                      'the first task).')
  flags.DEFINE_string('tflite_quantization', 'float32', 'TFLite variant.')
  flags.DEFINE_bool('quiet', True, 'Console shows component progress, training '
                    'progress and warnings only; the full log goes to <root>/pipeline.log '
                    '(--verbose: everything on the console).')


def main(argv):
  del argv
  if flags.FLAGS.config is None:
    raise app.UsageError('--config is required.')
  config, root = flags.FLAGS.config, os.path.abspath(flags.FLAGS.root)
  if flags.FLAGS.quiet and not quiet.verbose():
    _quiet_console(os.path.join(root, 'pipeline.log'))
  start = time.time()
  summary = run(config, root, flags.FLAGS.enable_cache, flags.FLAGS.tflite_quantization)
  elapsed = time.time() - start
  print(f'\npipeline run {summary.run_id} finished in {elapsed:.0f} s '
        f'(root {root}, ML Metadata {layout.metadata_path(root)})')
  cached = sorted(n for n, s in summary.states.items() if s == 'CACHED')
  if cached:
    print(f'reused from cache: {", ".join(cached)}')
  print(list_runs.format_runs([summary]))
  serving_dir = layout.serving_dir(root)
  if flags.FLAGS.predict and summary.blessed and tf.io.gfile.exists(serving_dir):
    from pipelines import demo_prediction  # pylint: disable=g-import-not-at-top
    task = flags.FLAGS.predict_task or sorted(config.tasks.keys())[0]
    print(demo_prediction.predict_one(config, task, serving_dir, root))
  elif flags.FLAGS.predict:
    logging.warning('The model was not blessed; no prediction to show.')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
