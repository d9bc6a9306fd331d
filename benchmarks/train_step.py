r"""Training-step efficiency: achieved GFLOP/s of the trainer's step vs the fp32 matmul limit.

    python -m benchmarks.train_step [--quick] [--out=benchmarks/results] \
        [--sizes=Ti,S,B] [--modalities=image,audio,video] [--num_layers=0] \
        [--variants=fp32,xla,xla_step,bf16,bf16_xla,bf16_xla_step]

For each encoder size (Ti, S, B) and modality the script builds a one-task PolyViT at the
paper's token counts (image 384x384 -> 577 tokens, audio 800x128 -> 401, video
32x224x224 with 4x16x16 tubelets -> 1569; `--quick`: 224x224 -> 197, 400x128 -> 201,
16x112x112 -> 197) and times the trainer's own step function
(`polyvit_tf.train.steps.StepFactory.step_fn`: forward, backward, all-reduce, clipping,
SGD-momentum update) on a constant in-memory batch. Achieved GFLOP/s = exact matmul FLOPs
of the step (`polyvit_tf.model.flops`) / step time. The reference is fp32 2048^3 matmuls
run in the same process in a burst right before every timed step (as long as a step, at
least 1 s and 3 calls): the efficiency is the median over the steps of (step GFLOP/s) /
(the burst's best matmul call), so a neighbour's load on a shared machine hits both sides
of each ratio; `ratio vs mean` uses the burst's mean instead of its best call.

Variants: `fp32` (graph), `xla` (the forward/backward pass jit-compiled, what
`train.use_xla` compiled before issue 14: StepFactory xla_scope='gradients'), `xla_step`
(train.use_xla today: the whole replica step, forward, backward, clipping and the optimizer
update, one XLA computation as on a TPU), `bf16` (train.mixed_precision: mixed_bfloat16),
`bf16_xla`, `bf16_xla_step`.
"""

from __future__ import annotations

import gc
import time
from typing import Sequence

from absl import app
from absl import flags
from benchmarks import common
from benchmarks import runners
from polyvit_tf.model import flops as flops_lib

_QUICK = flags.DEFINE_bool('quick', False, 'Small token counts, Ti and S, fewer steps.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Directory of the JSON results.')
_SIZES = flags.DEFINE_list('sizes', None, 'Encoder sizes (default Ti,S,B; quick: Ti,S).')
_MODALITIES = flags.DEFINE_list('modalities', ['image', 'audio', 'video'], 'Modalities.')
_VARIANTS = flags.DEFINE_list('variants', ['fp32', 'xla', 'xla_step', 'bf16'],
                              'Any of fp32, xla, xla_step, bf16, bf16_xla, bf16_xla_step.')
_STEPS = flags.DEFINE_integer('steps', 0, 'Timed steps per configuration (0: auto).')
_BATCH = flags.DEFINE_integer('batch', 0, 'Examples per step for every cell (0: the table '
                              'in benchmarks/runners.py).')
_LAYERS = flags.DEFINE_integer('num_layers', 0, 'Encoder layers of every cell (0: the size\'s; '
                               'fewer keep the XLA compiles short on a loaded machine).')
_TAG = flags.DEFINE_string('tag', '', 'Suffix of the results file (train_step_<tag>.json), '
                           'e.g. for a run at another --batch.')
_BF16 = flags.DEFINE_list('bf16_cells', ['S/image', 'S/audio'],
                          'size/modality cells the bf16 variants run for (the goal\'s cells; '
                          'bf16 is slow without bf16 hardware); `all` for every cell.')

# variant: (StepFactory xla_scope, or None without XLA; mixed_bfloat16)
VARIANTS = {'fp32': (None, False), 'xla': ('gradients', False), 'xla_step': ('step', False),
            'bf16': (None, True), 'bf16_xla': ('gradients', True),
            'bf16_xla_step': ('step', True)}


def measure(size: str, modality: str, variant: str, *, quick: bool, steps: int,
            reference: common.MatmulReference, batch: int = 0, num_layers: int = 0) -> dict:
  """One configuration: `steps` step/matmul-burst pairs; efficiency = median over pairs of
  (step GFLOP/s) / (the adjacent burst's matmul GFLOP/s)."""
  xla_scope, bf16 = VARIANTS[variant]
  batch = batch or (runners.QUICK_BATCH if quick else runners.PAPER_BATCH)[(size, modality)]
  config = runners.one_task_config(size, modality, batch, quick=quick,
                                   xla=xla_scope is not None, bf16=bf16, num_layers=num_layers)
  runner = runners.StepRunner(config, modality, xla_scope=xla_scope or 'step')
  count = flops_lib.forward_flops(config, modality)
  step_flops = batch * count.train
  start = time.perf_counter()
  runner()  # trace (+ XLA compile) and one step
  first_call = time.perf_counter() - start
  times, refs, means = common.interleaved(runner, reference, pairs=steps, warmup=1)
  ratios = [step_flops / t / 1e9 / r for t, r in zip(times, refs)]
  ratios_mean = [step_flops / t / 1e9 / r for t, r in zip(times, means)]
  seconds = common.median(times)
  tokens = runner.model.modalities[modality].sequence_length
  del runner
  gc.collect()
  return dict(size=size, modality=modality, variant=variant, tokens=tokens, batch=batch,
              num_layers=int(config.model.num_layers), first_call_seconds=first_call,
              step_gflop=step_flops / 1e9, step_seconds=seconds, step_seconds_all=times,
              examples_per_second=batch / seconds,
              achieved_gflops=step_flops / seconds / 1e9, matmul_gflops=common.median(refs),
              matmul_gflops_all=refs, matmul_mean_gflops_all=means,
              efficiency=common.median(ratios), efficiency_all=ratios,
              efficiency_vs_mean=common.median(ratios_mean), flops_by_part=count.as_dict())


COLUMNS = [('size', 'size', 's'), ('modality', 'modality', 's'), ('tokens', 'tokens', 'd'),
           ('variant', 'variant', 's'), ('batch', 'batch', 'd'),
           ('step_gflop', 'GFLOP/step', '.1f'), ('first_call_seconds', 'first call s', '.1f'),
           ('step_seconds', 's/step', '.3f'),
           ('achieved_gflops', 'GFLOP/s', '.1f'), ('matmul_gflops', 'matmul GFLOP/s', '.1f'),
           ('efficiency', 'ratio', '.3f'), ('efficiency_vs_mean', 'ratio vs mean', '.3f'),
           ('vs_fp32', 'vs fp32', '.2f')]


def main(argv: Sequence[str]) -> None:
  del argv
  quick = _QUICK.value
  sizes = _SIZES.value or (['Ti', 'S'] if quick else ['Ti', 'S', 'B'])
  steps = _STEPS.value or 3
  info = common.machine()
  print(f'machine: {info["cpus"]} cpus, {info["model_name"]}, flags {info["flags"]}, '
        f'load {info.get("load_average")}', flush=True)
  reference = common.MatmulReference()
  rows = []
  for size in sizes:
    for modality in _MODALITIES.value:
      fp32 = None  # the fp32 row of this cell
      for variant in _VARIANTS.value:
        if (VARIANTS[variant][1] and _BF16.value != ['all']
            and f'{size}/{modality}' not in _BF16.value):
          continue
        row = measure(size, modality, variant, quick=quick, steps=steps,
                      reference=reference, batch=_BATCH.value, num_layers=_LAYERS.value)
        if variant == 'fp32':
          fp32 = row
        # Throughput relative to fp32, normalised by each row's own matmul reference (the
        # rows run minutes apart on a shared machine); the raw step-time ratio beside it.
        row['vs_fp32'] = row['efficiency'] / fp32['efficiency'] if fp32 else None
        row['vs_fp32_raw'] = fp32['step_seconds'] / row['step_seconds'] if fp32 else None
        rows.append(row)
        print(common.table([row], COLUMNS).splitlines()[-1] if len(rows) > 1
              else common.table([row], COLUMNS), flush=True)
        path = _write(rows, quick, info)  # after every row: a stopped run keeps its rows
  print()
  print(common.table(rows, COLUMNS))
  print(f'\nwrote {path}')


def _write(rows: list[dict], quick: bool, info: dict) -> str:
  name = 'train_step_quick' if quick else 'train_step'
  return common.write_json(_OUT.value, f'{name}_{_TAG.value}' if _TAG.value else name,
                           {'quick': quick, 'num_layers': _LAYERS.value, 'rows': rows,
                            'bf16_hardware': common.has_bf16_hardware(info)})


if __name__ == '__main__':
  app.run(main)
