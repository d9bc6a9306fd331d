r"""Prints a PolyViT's parameter count by part; the last line is `total_params=<int>`.

  python -m polyvit_tf.tools.params --config=polyvit_tf/configs/paper.py:table2_b_adapt0

Builds the model from the config alone (no data).
"""

from __future__ import annotations

from absl import app
from absl import flags
from ml_collections import config_flags

from polyvit_tf.model import PolyViT


def format_counts(counts: dict[str, int]) -> str:
  """A table of `part  params` rows, group subtotals, then `total_params=<int>`."""
  width = max(len(k) for k in counts) + 2
  lines = [f'{"part":<{width}}{"params":>14}']
  groups: dict[str, int] = {}
  for part, n in counts.items():
    lines.append(f'{part:<{width}}{n:>14,}')
    groups[part.split('/')[0]] = groups.get(part.split('/')[0], 0) + n
  lines.append('')
  for group, n in groups.items():
    lines.append(f'{group + " (all)":<{width}}{n:>14,}')
  lines.append(f'total_params={sum(counts.values())}')
  return '\n'.join(lines)


def _define_flags() -> None:
  """Flags are defined only when run as a program, so importing this module (tests, other
  tools) defines none."""
  config_flags.DEFINE_config_file('config', None, 'PolyViT config file[:arg].',
                                  lock_config=True)


def main(argv):
  del argv
  config = flags.FLAGS.config
  model = PolyViT(config)
  print(f'config: {config.name}  model: {config.model.size} (L={config.model.num_layers}, '
        f'd={config.model.hidden_size}, L_adapt={config.model.num_adapt_layers})  '
        f'tasks: {len(model.task_names)}')
  print(format_counts(model.count_params()))


if __name__ == '__main__':
  _define_flags()
  flags.mark_flags_as_required(['config'])
  app.run(main)
