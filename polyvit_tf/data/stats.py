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
import numpy as np
import tensorflow as tf

from polyvit_tf.data import audio as audio_lib
from polyvit_tf.data import errors
from polyvit_tf.data import options as options_lib
from polyvit_tf.data import sources


def audio_norm_stats(config: ml_collections.ConfigDict, task: str, *, split: str = 'train',
                     max_examples: int = 0) -> dict:
  """{'mean', 'std', 'num_examples', 'num_frames', 'skipped'} of `task`'s log-mel frames."""
  opts = options_lib.for_task(config, task)
  if not isinstance(opts, options_lib.AudioOptions):
    raise errors.DataConfigError(f'task {task} is not an audio task.')
  source = sources.for_task(config, task)
  split_name = sources.split_name(config, task, split)
  source.check(split_name)

  @tf.autograph.experimental.do_not_convert
  def moments(fallback_id, raw):
    ex = source.parse(raw)
    status = audio_lib.check_waveform(ex['waveform'], ex['sample_rate'], opts)
    mel = tf.cond(tf.equal(status, errors.OK),
                  lambda: audio_lib.log_mel(ex['waveform'], ex['sample_rate'], opts),
                  lambda: tf.zeros([0, opts.mel_bins]))
    mel = tf.cast(mel, tf.float64)
    return (tf.reduce_sum(mel), tf.reduce_sum(tf.square(mel)),
            tf.cast(tf.size(mel), tf.float64), tf.cast(tf.shape(mel)[0], tf.int64),
            tf.equal(status, errors.OK))

  ds = source.epoch_records(split_name).map(moments, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.ignore_errors(log_warning=True)
  if max_examples > 0:
    ds = ds.take(max_examples)
  total = total_sq = count = 0.0
  frames = examples = skipped = 0
  for s, sq, n, f, ok in ds.as_numpy_iterator():
    if not ok:
      skipped += 1
      continue
    total, total_sq, count = total + s, total_sq + sq, count + n
    frames, examples = frames + int(f), examples + 1
  if not count:
    raise errors.DataSourceError(f'task {task}: no usable audio in split {split_name!r} of '
                                 f'{source.description}.')
  mean = total / count
  std = float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
  return {'mean': float(mean), 'std': std, 'num_examples': examples, 'num_frames': frames,
          'skipped': skipped}


def main(argv: Sequence[str]) -> None:
  del argv
  config, task = _CONFIG.value, _TASK.value
  stats = audio_norm_stats(config, task, split=_SPLIT.value, max_examples=_MAX.value)
  text = json.dumps(stats, indent=1)
  print(text)
  print(f'--config.tasks.{task}.data.audio_norm_mean={stats["mean"]:.6g} '
        f'--config.tasks.{task}.data.audio_norm_std={stats["std"]:.6g}')
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
