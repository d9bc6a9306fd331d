"""Audio normalisation statistics: mean and std of the log-mel filterbank over a split.

    python -m polyvit_tf.data.stats --config=polyvit_tf/configs/demo.py --task=tones \
        [--split=train] [--max_examples=0] [--output=stats.json]

Every frame of every clip counts (whole clips, no cropping, no augmentation), computed with
the pipeline's own decoding, resampling and filterbank. Put the result into
`tasks.<task>.data.audio_norm_mean` / `audio_norm_std`; the pipelines then feed
(x - mean) / (2 std), as AST does with its AudioSet statistics.
"""

from __future__ import annotations

import json
from typing import Sequence

from absl import app
from absl import flags
import ml_collections
import tensorflow as tf

from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import errors
from polyvit_tf.data import sources


def audio_norm_stats(config: ml_collections.ConfigDict, task: str, *, split: str = 'train',
                     max_examples: int = 0) -> dict:
  """{'mean', 'std', 'num_examples', 'num_frames', 'skipped'} of `task`'s inputs, computed by
  its modality (`normalisation_stats`; the audio modality's are the log-mel frames')."""
  spec = specs_lib.resolve(config)
  data, modality = spec.data[task], spec.modality_of(task).impl
  source = sources.open_source(data, spec.task(task).modality)
  split_name = data.split(split)
  source.check(split_name)
  stats = modality.normalisation_stats(source, split_name, data.options, max_examples)
  if not stats['num_examples']:
    raise errors.DataSourceError(f'task {task}: no usable {modality.name} in split '
                                 f'{split_name!r} of {source.description}.')
  return stats


def main(argv: Sequence[str]) -> None:
  del argv
  config, task = _CONFIG.value, _TASK.value
  stats = audio_norm_stats(config, task, split=_SPLIT.value, max_examples=_MAX.value)
  text = json.dumps(stats, indent=1)
  print(text)
  fields = specs_lib.resolve(config).modality_of(task).impl.normalisation_fields(stats)
  print(' '.join(f'--config.tasks.{task}.data.{k}={v:.6g}' for k, v in fields.items()))
  if _OUTPUT.value:
    with tf.io.gfile.GFile(_OUTPUT.value, 'w') as f:
      f.write(text + '\n')


if __name__ == '__main__':
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  _CONFIG = config_flags.DEFINE_config_file('config', None, 'PolyViT config file.')
  _TASK = flags.DEFINE_string('task', None, 'Audio task to compute statistics for.')
  _SPLIT = flags.DEFINE_enum('split', 'train', ['train', 'validation', 'eval'], 'Split.')
  _MAX = flags.DEFINE_integer('max_examples', 0, 'Use at most this many examples (0 = all).')
  _OUTPUT = flags.DEFINE_string('output', '', 'Optional JSON output path.')
  flags.mark_flags_as_required(['config', 'task'])
  app.run(main)
