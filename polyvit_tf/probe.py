"""`python -m polyvit_tf.probe --config=<probe config> --source=<workdir> --workdir=<dir>`.

Linear probes (Sec. 5.4, Appendix D) of the encoder trained in --source on the tasks of
--config (any modality: missing tokenizers are converted across modalities): per task and
learning rate a new head is trained on the frozen encoder, the best rate is chosen on the
validation split, and its eval metrics are reported in <workdir>/eval/probe.json and
probe.md. The rates are --learning_rates when given, else each task's
`probe_learning_rates`, else config.eval.probe_learning_rates. The paper's protocol (Table 9):
--config=polyvit_tf/configs/paper.py:table9_probes. --dry_run checks every probe config and
prints the protocol of each task as JSON, without reading data or training.
"""

from __future__ import annotations

import json
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS


def _define_flags() -> None:
  config_flags.DEFINE_config_file('config', None, 'Config whose tasks are probed.',
                                  lock_config=True)
  flags.DEFINE_string('source', None, 'Work directory of the trained model.')
  flags.DEFINE_string('workdir', None, 'Output directory of the probes (not needed with '
                      '--dry_run).')
  flags.DEFINE_list('learning_rates', [], 'Learning-rate grid of every task (default: each '
                    "task's probe_learning_rates, else config.eval.probe_learning_rates).")
  flags.DEFINE_bool('dry_run', False, 'Check the probe configs and print each task\'s '
                    'protocol (rates, steps, warmup, augmentation, views) as JSON; no '
                    'data is read and nothing is trained.')
  flags.DEFINE_list('tasks', [], 'Tasks to probe (default: all of the config).')
  flags.DEFINE_string('data', '', 'Data provider module[:attribute]; default '
                      'polyvit_tf.data.pipeline.')
  flags.mark_flags_as_required(['config', 'source'])


def main(argv):
  del argv
  from polyvit_tf.configs.errors import ConfigError  # pylint: disable=import-outside-toplevel
  from polyvit_tf.train import loop  # pylint: disable=import-outside-toplevel
  from polyvit_tf.train import probes  # pylint: disable=import-outside-toplevel
  rates = [float(r) for r in FLAGS.learning_rates] or None
  try:
    if FLAGS.dry_run:
      print(json.dumps(probes.plan(FLAGS.config, FLAGS.source, learning_rates=rates,
                                   tasks=FLAGS.tasks or None), indent=2, sort_keys=True))
      return
    if not FLAGS.workdir:
      raise ConfigError('--workdir: the probes need an output directory.')
    probes.run_probe(FLAGS.config, FLAGS.source, FLAGS.workdir,
                     data=loop.load_provider(FLAGS.data) if FLAGS.data else None,
                     learning_rates=rates, tasks=FLAGS.tasks or None)
  except ConfigError as e:
    print(f'Config error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
