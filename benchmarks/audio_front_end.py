r"""Cost of the float64 audio front end: the serving/eval audio preprocessing, float64 vs float32.

    python -m benchmarks.audio_front_end [--config=polyvit_tf/configs/demo.py] [--task=tones] \
        [--cells=16000/1.3,44100/1.3,8000/1.3,16000/10] [--calls=30] [--out=benchmarks/results]

The resampler and the log-mel filterbank compute in float64 (polyvit_tf/data/filterbank.py
says why). For each cell (input sample rate / clip seconds) this script builds the task's
whole per-example audio preprocessing (the audio modality's `views_of_waveform`: resample,
log-mel, views, normalisation) twice as tf.functions -- once as the library runs it (float64), once
with the front end in float32 -- and times calls alternately (float64, float32, ...) in one
process. Figure: median float64 time / median float32 time (> 1: float64 costs more).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Sequence

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np
import tensorflow as tf

from benchmarks import common
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import audio as audio_lib
from polyvit_tf.data import filterbank
from polyvit_tf.data import options as options_lib
from polyvit_tf.data import resample as resample_lib

_CONFIG = config_flags.DEFINE_config_file('config', 'polyvit_tf/configs/demo.py',
                                          'PolyViT config.')
_TASK = flags.DEFINE_string('task', 'tones', 'Audio task of the config.')
_CELLS = flags.DEFINE_list('cells', ['16000/1.3', '44100/1.3', '8000/1.3', '16000/10'],
                           'input rate / seconds cells.')
_CALLS = flags.DEFINE_integer('calls', 30, 'Timed calls per precision and cell.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Directory of the JSON results.')


def preprocessing(opts: options_lib.AudioOptions, dtype: tf.DType):
  """audio_from_waveform's computation with the front end at `dtype`, as a tf.function."""

  @tf.function(input_signature=[tf.TensorSpec([None], tf.float32),
                                tf.TensorSpec([], tf.int32)])
  def fn(waveform, rate):
    x = resample_lib.resample(waveform, rate, opts.sample_rate, dtype=dtype)
    spectrogram = filterbank.log_mel_fbank(x, opts.sample_rate, opts.mel_bins, dtype=dtype)
    return audio_lib.eval_views(spectrogram, opts)

  return fn


def measure(opts: options_lib.AudioOptions, rate: int, seconds: float, calls: int) -> dict:
  rng = np.random.default_rng(0)
  t = np.arange(int(rate * seconds)) / rate
  wave = (0.5 * np.sin(2 * np.pi * (400 + 300 * t) * t)
          + 0.05 * rng.normal(size=t.shape)).astype(np.float32)
  args = (tf.constant(wave), tf.constant(rate, tf.int32))
  fns = {'float64': preprocessing(opts, tf.float64), 'float32': preprocessing(opts, tf.float32)}
  for fn in fns.values():
    fn(*args).numpy()  # trace
  times = {k: [] for k in fns}
  for _ in range(calls):
    for name, fn in fns.items():
      t0 = time.perf_counter()
      fn(*args).numpy()
      times[name].append(time.perf_counter() - t0)
  f64, f32 = common.median(times['float64']), common.median(times['float32'])
  diff = float(np.max(np.abs(fns['float64'](*args).numpy() - fns['float32'](*args).numpy())))
  return {'rate': rate, 'seconds': seconds, 'float64_ms': f64 * 1e3, 'float32_ms': f32 * 1e3,
          'ratio': f64 / f32, 'max_abs_diff': diff}


def main(argv: Sequence[str]) -> None:
  del argv
  spec = specs_lib.resolve(_CONFIG.value)
  opts = spec.data[_TASK.value].options
  if not isinstance(opts, options_lib.AudioOptions):
    raise app.UsageError(f'--task={_TASK.value} is not an audio task.')
  opts = dataclasses.replace(opts, augment=False)
  rows = []
  for cell in _CELLS.value:
    rate, seconds = cell.split('/')
    rows.append(measure(opts, int(rate), float(seconds), _CALLS.value))
  print(common.table(rows, [('rate', 'rate (Hz)', 'd'), ('seconds', 'clip (s)', '.1f'),
                            ('float64_ms', 'float64 (ms)', '.2f'),
                            ('float32_ms', 'float32 (ms)', '.2f'),
                            ('ratio', 'float64 / float32', '.2f'),
                            ('max_abs_diff', 'max |diff| of outputs', '.2e')]))
  if _OUT.value:
    print(common.write_json(_OUT.value, 'audio_front_end',
                            {'task': _TASK.value, 'views': opts.num_views, 'rows': rows}))


if __name__ == '__main__':
  app.run(main)
