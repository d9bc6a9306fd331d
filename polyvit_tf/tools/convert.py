r"""Converts a pretrained checkpoint into an initialised PolyViT work directory.

  python -m polyvit_tf.tools.convert --source=vit_npz:/ckpts/ViT-B_16.npz \
      --config=polyvit_tf/configs/paper.py:table2_b_adapt6 --out=/tmp/polyvit_b_adapt6

`--source=<format>:<path>` with format vit_npz | big_vision_npz | hf | polyvit. `--out` gets
config.json (the config, with init.source recorded) and checkpoints/ckpt-0 (the `model` node,
so polyvit_tf.workdir.load_model(out) and `init.source=polyvit:<out>` read it), and
init_report.txt, the table printed here: what was loaded, resized, tiled, inflated,
converted, left fresh and skipped. The `init.*` options come from the config
(`--config.init.video_kernel=average` etc.).
"""

from __future__ import annotations

import copy
import os

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.checkpoints import InitReport
from polyvit_tf.checkpoints import initialise_from_config
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights

REPORT = 'init_report.txt'


def convert(config: ml_collections.ConfigDict, source: str, out: str, *,
            overwrite: bool = False) -> tuple[InitReport, str]:
  """Builds the config's PolyViT, initialises it from `source` and writes it to `out`.

  Returns the report and the checkpoint path."""
  config = copy.deepcopy(config)
  config.unlock()
  if 'init' not in config:  # configs written before the init section existed
    config.init = ml_collections.ConfigDict()
  config.init.source = source
  ckpt_dir = workdir_lib.checkpoint_dir(out)
  if tf.io.gfile.exists(workdir_lib.config_path(out)) or tf.train.latest_checkpoint(ckpt_dir):
    if not overwrite:
      raise FileExistsError(f'{out}: already holds a config or checkpoints; pass --overwrite '
                            'to replace a previous conversion.')
    if tf.io.gfile.exists(os.path.join(out, 'tensorboard')):
      raise FileExistsError(f'{out}: looks like a training work directory; not overwriting.')
    if tf.io.gfile.exists(ckpt_dir):
      tf.io.gfile.rmtree(ckpt_dir)
  model = PolyViT(config, seed=config.seed)
  report = initialise_from_config(model, config)
  workdir_lib.save_config(out, config)
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(model=weights.checkpoint(model)), ckpt_dir, max_to_keep=1)
  path = manager.save(checkpoint_number=0)
  with tf.io.gfile.GFile(os.path.join(out, REPORT), 'w') as f:
    f.write(report.format() + '\n')
  return report, path


def _define_flags() -> None:
  """Flags are defined only when run as a program, so importing this module (tests, other
  tools) defines none."""
  config_flags.DEFINE_config_file('config', None, 'PolyViT config file[:arg].')
  flags.DEFINE_string('source', None, '<format>:<path> of the checkpoint to convert.')
  flags.DEFINE_string('out', None, 'Directory to write config.json and checkpoints/ to.')
  flags.DEFINE_bool('overwrite', False,
                    'Replace an existing conversion (never a training run) in --out.')


def main(argv):
  del argv
  config = flags.FLAGS.config
  report, path = convert(config, flags.FLAGS.source, flags.FLAGS.out,
                         overwrite=flags.FLAGS.overwrite)
  m = config.model
  print(f'config: {config.name}  model: {m.size} (L={m.num_layers}, d={m.hidden_size}, '
        f'L_adapt={m.num_adapt_layers})  tasks: {len(config.tasks)}')
  print(report.format())
  print(f'checkpoint: {path}')
  print(f'work dir: {flags.FLAGS.out} (load with polyvit_tf.workdir.load_model, or train from it '
        f'with --config.init.source=polyvit:{flags.FLAGS.out})')


if __name__ == '__main__':
  _define_flags()
  flags.mark_flags_as_required(['config', 'source', 'out'])
  app.run(main)
