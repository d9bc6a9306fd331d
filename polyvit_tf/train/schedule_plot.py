"""A picture of task schedules for a config, like Fig. 2 of the paper.

  python -m polyvit_tf.train.schedule_plot --config=polyvit_tf/configs/demo.py \
      --out=/tmp/schedules.png [--schedules=all|weighted,uniform,...] [--bins=120]

One panel per schedule; one row per task; the shade of a cell is the fraction of the steps in
that time bin that train the task (accumulated: every update trains every task).
"""

from __future__ import annotations

import ml_collections
import numpy as np
from absl import app
from absl import flags
from ml_collections import config_flags

from polyvit_tf.train import schedules as schedules_lib


def occupancy(schedule: schedules_lib.Schedule, bins: int) -> np.ndarray:
  """(tasks, bins) fraction of each time bin's steps spent on each task."""
  u, t = schedule.num_steps, len(schedule.tasks)
  bins = max(1, min(bins, u))
  edges = np.linspace(0, u, bins + 1).astype(int)
  out = np.zeros((t, bins))
  membership = schedule.membership()  # (kinds, tasks)
  for b in range(bins):
    ids = schedule.kind_ids[edges[b]:edges[b + 1]]
    if ids.size:
      out[:, b] = membership[ids].mean(axis=0)
  return out


def plot(config: ml_collections.ConfigDict, out: str, names=schedules_lib.SCHEDULES,
         bins: int = 120) -> list[schedules_lib.Schedule]:
  """Writes the picture of the schedules `names` of `config` to `out`; returns them."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  built = []
  for name in names:
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.schedule.name = name
    built.append(schedules_lib.build(cfg))
  fig, axes = plt.subplots(len(built), 1, figsize=(10, 1.0 + 0.45 * len(config.tasks) *
                                                   len(built)), squeeze=False)
  for ax, sched in zip(axes[:, 0], built):
    occ = occupancy(sched, bins)
    ax.imshow(occ, aspect='auto', cmap='Blues', vmin=0, vmax=1, interpolation='nearest',
              extent=(0, sched.num_steps, len(sched.tasks) - 0.5, -0.5))
    ax.set_yticks(range(len(sched.tasks)))
    counts = sched.counts()
    ax.set_yticklabels([f'{t} ({counts[t]})' for t in sched.tasks], fontsize=8)
    unit = 'updates (each: one batch of every task)' if sched.name == 'accumulated' else 'steps'
    ax.set_title(f'{sched.name}: U = {sched.num_steps} {unit}, seed {int(config.seed)}',
                 fontsize=9, loc='left')
  axes[-1, 0].set_xlabel('step')
  fig.tight_layout()
  fig.savefig(out, dpi=120)
  plt.close(fig)
  return built


FLAGS = flags.FLAGS


def _define_flags() -> None:
  config_flags.DEFINE_config_file('config', None, 'Config file.', lock_config=True)
  flags.DEFINE_string('out', 'schedules.png', 'Output image (PNG, SVG or PDF).')
  flags.DEFINE_string('schedules', 'all', "'all' or a comma-separated list of "
                      f'{", ".join(schedules_lib.SCHEDULES)}.')
  flags.DEFINE_integer('bins', 120, 'Time bins along the step axis.')
  flags.mark_flags_as_required(['config'])


def main(argv):
  del argv
  names = (schedules_lib.SCHEDULES if FLAGS.schedules == 'all'
           else tuple(s.strip() for s in FLAGS.schedules.split(',') if s.strip()))
  for sched in plot(FLAGS.config, FLAGS.out, names, FLAGS.bins):
    print(f'{sched.name}: {sched.num_steps} steps; per task {sched.counts()}')
  print(f'wrote {FLAGS.out}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
