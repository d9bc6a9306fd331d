r"""Before/after of the one library change made for speed: TokenDense vs keras.layers.Dense.

    python -m benchmarks.token_dense [--cells=S/image/8/quick,S/image/2,B/audio/1] \
        [--pairs=6] [--out=benchmarks/results]

`polyvit_tf.model.encoder.TokenDense` (the q/k/v/out projections and the MLP) computes a
Dense layer on (batch, tokens, features) as one 2-D matmul; keras.layers.Dense does a
broadcast batch matmul whose kernel gradient TensorFlow computes as one small product per
example plus a sum. This script builds the trainer's step twice for each cell -- once as
the library builds it, once with every TokenDense of the model calling keras.layers.Dense's
`call` instead (same weights, same outputs) -- and times them alternately (after, before,
after, ...) in one process. Figure: the median over pairs of (before step time) / (after
step time); > 1 means TokenDense is faster. A cell is size/modality/batch[/quick].
"""

from __future__ import annotations

import gc
import types
from typing import Sequence

from absl import app
from absl import flags
import keras

from benchmarks import common
from benchmarks import runners
from polyvit_tf.model import encoder

_CELLS = flags.DEFINE_list('cells', ['S/image/8/quick', 'S/image/2', 'B/audio/1'],
                           'size/modality/batch[/quick] cells.')
_PAIRS = flags.DEFINE_integer('pairs', 6, 'Timed (after, before) step pairs per cell.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Directory of the JSON results.')


def keras_dense_runner(config, task: str) -> runners.StepRunner:
  """The step with every TokenDense layer computing as keras.layers.Dense."""
  built = []
  original_init = encoder.TokenDense.__init__

  def init(layer, *args, **kwargs):
    original_init(layer, *args, **kwargs)
    # An instance attribute: this model's layers only, for every later trace too.
    layer.call = types.MethodType(keras.layers.Dense.call, layer)
    built.append(layer)

  encoder.TokenDense.__init__ = init
  try:
    runner = runners.StepRunner(config, task)
  finally:
    encoder.TokenDense.__init__ = original_init
  if not built:
    raise RuntimeError('the model has no TokenDense layer: nothing to compare')
  return runner


def measure(cell: str, pairs: int) -> dict:
  parts = cell.split('/')
  size, modality, batch, quick = parts[0], parts[1], int(parts[2]), parts[3:] == ['quick']
  config = runners.one_task_config(size, modality, batch, quick=quick, xla=False, bf16=False)
  after = runners.StepRunner(config, modality)
  before = keras_dense_runner(config, modality)
  for fn in (after, before):
    fn()
  ratios, t_after, t_before = [], [], []
  for _ in range(pairs):
    a = common.time_calls(after, steps=1, warmup=0)[0]
    b = common.time_calls(before, steps=1, warmup=0)[0]
    t_after.append(a)
    t_before.append(b)
    ratios.append(b / a)
  tokens = after.model.modalities[modality].sequence_length
  del after, before
  gc.collect()
  return dict(cell=cell, size=size, modality=modality, tokens=tokens, batch=batch,
              token_dense_seconds=common.median(t_after),
              keras_dense_seconds=common.median(t_before),
              speedup=common.median(ratios), speedup_all=ratios)


COLUMNS = [('size', 'size', 's'), ('modality', 'modality', 's'), ('tokens', 'tokens', 'd'),
           ('batch', 'batch', 'd'), ('keras_dense_seconds', 'keras Dense s/step', '.3f'),
           ('token_dense_seconds', 'TokenDense s/step', '.3f'),
           ('speedup', 'speed-up (median of pairs)', '.3f')]


def main(argv: Sequence[str]) -> None:
  del argv
  rows = []
  for cell in _CELLS.value:
    rows.append(measure(cell, _PAIRS.value))
    print(common.table(rows[-1:], COLUMNS), flush=True)
  print()
  print(common.table(rows, COLUMNS))
  print(f'\nwrote {common.write_json(_OUT.value, "token_dense", {"rows": rows})}')


if __name__ == '__main__':
  app.run(main)
