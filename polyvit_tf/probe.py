"""`python -m polyvit_tf.probe --config=<probe config> --source=<workdir> --workdir=<dir>`.

Linear probes (Sec. 5.4, Appendix D) of the encoder trained in --source on the tasks of
--config (any modality: missing tokenizers are converted across modalities): per task and
learning rate (--learning_rates, default config.eval.probe_learning_rates) a new head is
trained on the frozen encoder, the best rate is chosen on the validation split, and its eval
metrics are reported in <workdir>/eval/probe.json and probe.md.
"""

from __future__ import annotations

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS


def _define_flags() -> None:
  config_flags.DEFINE_config_file('config', None, 'Config whose tasks are probed.',
                                  lock_config=True)
  flags.DEFINE_string('source', None, 'Work directory of the trained model.')
  flags.DEFINE_string('workdir', None, 'Output directory of the probes.')
  flags.DEFINE_list('learning_rates', [], 'Learning-rate grid (default: '
                    'config.eval.probe_learning_rates).')
  flags.DEFINE_list('tasks', [], 'Tasks to probe (default: all of the config).')
  flags.DEFINE_string('data', '', 'Data provider module[:attribute]; default '
                      'polyvit_tf.data.pipeline.')
  flags.mark_flags_as_required(['config', 'source', 'workdir'])


def main(argv):
  del argv
  from polyvit_tf.configs.errors import ConfigError  # pylint: disable=import-outside-toplevel
  from polyvit_tf.train import loop  # pylint: disable=import-outside-toplevel
  from polyvit_tf.train import probes  # pylint: disable=import-outside-toplevel
  try:
    probes.run_probe(FLAGS.config, FLAGS.source, FLAGS.workdir,
                     data=loop.load_provider(FLAGS.data) if FLAGS.data else None,
                     learning_rates=[float(r) for r in FLAGS.learning_rates] or None,
                     tasks=FLAGS.tasks or None)
  except ConfigError as e:
    print(f'Config error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
