"""`python -m polyvit_tf.train --config=<config> --workdir=<dir>`: train, then evaluate.

Resumes from the newest checkpoint in --workdir that restores (a corrupt one is reported and
the next older one tried); `--restart` trains from step 0 and sets existing checkpoints aside.
Exit codes: 0 done, 2 config error, 3 non-finite loss (the last good checkpoint is kept),
4 checkpoints exist but none restores (each is listed with its reason; nothing changed),
143 preempted (SIGTERM; saved).
"""

from __future__ import annotations

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from polyvit_tf.configs.errors import ConfigError

FLAGS = flags.FLAGS


def _define_flags() -> None:
  config_flags.DEFINE_config_file('config', None, 'Config file (e.g. '
                                  'polyvit_tf/configs/demo.py).', lock_config=True)
  flags.DEFINE_string('workdir', None, 'Work directory (checkpoints, summaries, eval reports).')
  flags.DEFINE_string('data', '', 'Data provider module[:attribute] with train_dataset/'
                      'eval_dataset; default polyvit_tf.data.pipeline.')
  flags.DEFINE_bool('restart', False, 'Train from step 0 even though --workdir has '
                    'checkpoints (they are moved to checkpoints/set_aside/, not deleted).')
  flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  from polyvit_tf.train import checkpointing  # pylint: disable=import-outside-toplevel
  from polyvit_tf.train import loop  # pylint: disable=import-outside-toplevel
  try:
    data = loop.load_provider(FLAGS.data) if FLAGS.data else None  # default: lazily
    loop.run(FLAGS.config, FLAGS.workdir, data=data, restart=FLAGS.restart)
  except ConfigError as e:
    logging.error('Config error: %s', e)
    print(f'Config error: {e}', file=sys.stderr)
    sys.exit(2)
  except loop.NonFiniteLossError as e:
    logging.error('%s', e)
    print(e, file=sys.stderr)
    sys.exit(3)
  except checkpointing.CheckpointRestoreError as e:
    logging.error('%s', e)
    print(e, file=sys.stderr)
    sys.exit(4)
  except loop.Preempted as e:
    logging.warning('%s', e)
    sys.exit(143)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
