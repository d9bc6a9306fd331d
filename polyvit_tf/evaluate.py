"""`python -m polyvit_tf.evaluate --workdir=<dir> [--config=<config>] [--split=eval]`.

Evaluates the newest checkpoint of a work directory (or --checkpoint) on every task: top-1,
top-5, loss and mAP (multi-label tasks), multi-crop views averaged, over all replicas with
padding masked. Writes <workdir>/eval/metrics.json (split 'eval') or metrics_<split>.json
and report_<split>.md. The config defaults to the run's <workdir>/config.json.
"""

from __future__ import annotations

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS


def _define_flags() -> None:
  config_flags.DEFINE_config_file('config', None, "Config file; default: the work "
                                  "directory's config.json.", lock_config=True)
  flags.DEFINE_string('workdir', None, 'Work directory of a training run.')
  flags.DEFINE_enum('split', 'eval', ['eval', 'validation', 'train'], 'Split.')
  flags.DEFINE_string('checkpoint', '', 'Checkpoint path prefix; default: the newest.')
  flags.DEFINE_string('data', '', 'Data provider module[:attribute]; default '
                      'polyvit_tf.data.pipeline.')
  flags.mark_flags_as_required(['workdir'])


def main(argv):
  del argv
  from polyvit_tf import workdir as workdir_lib  # pylint: disable=import-outside-toplevel
  from polyvit_tf.configs.errors import ConfigError  # pylint: disable=import-outside-toplevel
  from polyvit_tf.train import loop  # pylint: disable=import-outside-toplevel
  config = FLAGS.config or workdir_lib.load_config(FLAGS.workdir)
  try:
    loop.evaluate(config, FLAGS.workdir, split=FLAGS.split,
                  checkpoint=FLAGS.checkpoint or None,
                  data=loop.load_provider(FLAGS.data) if FLAGS.data else None)
  except ConfigError as e:
    print(f'Config error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
