r"""Where the training step's time goes: a tf.profiler trace of the trainer's step, by op kind.

    python -m benchmarks.profile_step [--size=S] [--modality=audio] [--batch=0] [--steps=3] \
        [--quick] [--out=benchmarks/results]

Builds the same one-task step as benchmarks/train_step.py (fp32 graph, no XLA: with XLA the
ops are fused and the trace no longer names them), warms it up, records `--steps` steps with
`tf.profiler.experimental`, reads the host plane of the XSpace it wrote and sums the op
events by op type into kinds: dense matmuls, attention matmuls (batched), softmax,
element-wise, reductions (LayerNorm statistics, losses), layout (transpose, reshape, copies)
and the optimizer update. The matmul rows also give their FLOP rate (the exact FLOPs of
`polyvit_tf.model.flops` over the op time), which tells whether the matmuls themselves or
the time around them keep the step below the matmul reference of train_step.py.
Op times are summed over the executor threads, so shares are of op time, not of wall time.
"""

from __future__ import annotations

import collections
import glob
import os
import tempfile
import time
from typing import Sequence

from absl import app
from absl import flags
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from benchmarks import common
from benchmarks import runners
from polyvit_tf.model import flops as flops_lib

_SIZE = flags.DEFINE_string('size', 'S', 'Encoder size.')
_MODALITY = flags.DEFINE_string('modality', 'audio', 'Modality (paper token counts).')
_BATCH = flags.DEFINE_integer('batch', 0, 'Examples per step (0: benchmarks/runners.py).')
_STEPS = flags.DEFINE_integer('steps', 3, 'Profiled steps.')
_QUICK = flags.DEFINE_bool('quick', False, 'Quick token counts (~200).')
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Directory of the JSON results.')

# Op type -> kind. Types not listed count as `other`.
KINDS = {
    'dense matmul': ('MatMul', '_FusedMatMul'),
    'attention matmul': ('BatchMatMulV2', 'BatchMatMulV3', 'Einsum'),
    'softmax': ('Softmax', 'SoftmaxGrad', 'LogSoftmax'),
    'element-wise': ('Add', 'AddV2', 'Sub', 'Mul', 'RealDiv', 'Tanh', 'TanhGrad', 'Pow',
                     'Square', 'SquaredDifference', 'Rsqrt', 'RsqrtGrad', 'Sqrt', 'Neg',
                     'BiasAdd', 'BiasAddGrad', 'AddN', 'Cast', 'Select', 'SelectV2',
                     'Maximum', 'Minimum', 'Exp', 'Log', 'Reciprocal', 'ZerosLike',
                     'OnesLike', 'Fill', 'BroadcastTo', 'Relu', 'Erf', 'Tile'),
    'patch embedding': ('Conv2D', 'Conv2DBackpropFilter', 'Conv3D',
                        'Conv3DBackpropFilterV2'),
    'reductions': ('Mean', 'Sum', 'Max', 'Min', 'Prod', 'ArgMax', 'L2Loss',
                   'SoftmaxCrossEntropyWithLogits'),
    'layout': ('Transpose', 'Reshape', 'ConcatV2', 'Pack', 'Unpack', 'Slice', 'StridedSlice',
               'StridedSliceGrad', 'GatherV2', 'Identity', 'Split', 'SplitV', 'Pad',
               'ExpandDims', 'Squeeze', 'Shape', 'ShapeN', 'Const'),
    'optimizer update': ('AssignVariableOp', 'ReadVariableOp', 'AssignAddVariableOp',
                         'ResourceApplyKerasMomentum', 'AssignSubVariableOp', 'Assign',
                         'AssignAdd'),
}
# Events that contain op events (function calls, executor activity): not counted.
CONTAINERS = ('StatefulPartitionedCall', 'PartitionedCall', 'While', 'If', 'StatelessIf',
              'StatelessWhile', 'IteratorGetNext', 'Process', 'Run', 'Start', 'DoCompute',
              'Root')
_KIND_OF = {t: k for k, types in KINDS.items() for t in types}


def op_times(xspace_path: str) -> dict[str, float]:
  """Seconds per TF op type, summed over the host plane's op events ("name:Type")."""
  space = xplane_pb2.XSpace()
  with open(xspace_path, 'rb') as f:
    space.ParseFromString(f.read())
  totals: dict[str, float] = collections.defaultdict(float)
  for plane in space.planes:
    if not plane.name.startswith('/host:CPU'):
      continue
    names = {i: m.name for i, m in plane.event_metadata.items()}
    for line in plane.lines:
      for event in line.events:
        name = names.get(event.metadata_id, '')
        if ':' not in name or name.startswith('$'):
          continue
        op_type = name.rsplit(':', 1)[1]
        if op_type and op_type[0].isupper() and ' ' not in op_type:
          totals[op_type] += event.duration_ps * 1e-12
  return dict(totals)


def by_kind(times: dict[str, float]) -> dict[str, float]:
  kinds: dict[str, float] = collections.defaultdict(float)
  for op_type, seconds in times.items():
    if op_type in CONTAINERS:
      continue  # their ops are counted themselves
    kinds[_KIND_OF.get(op_type, 'other')] += seconds
  return dict(kinds)


def main(argv: Sequence[str]) -> None:
  del argv
  size, modality = _SIZE.value, _MODALITY.value
  batch = _BATCH.value or (runners.QUICK_BATCH if _QUICK.value else runners.PAPER_BATCH)[
      (size, modality)]
  config = runners.one_task_config(size, modality, batch, quick=_QUICK.value, xla=False,
                                   bf16=False)
  runner = runners.StepRunner(config, modality)
  count = flops_lib.forward_flops(config, modality)
  step_flops = batch * count.train
  for _ in range(2):
    runner()
  with tempfile.TemporaryDirectory(prefix='polyvit_profile_') as logdir:
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(_STEPS.value):
      runner()
    wall = (time.perf_counter() - start) / _STEPS.value
    tf.profiler.experimental.stop()
    paths = glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True)
    if not paths:
      raise RuntimeError(f'the profiler wrote no .xplane.pb under {logdir}')
    times = {k: v / _STEPS.value for k, v in op_times(paths[0]).items()}
  kinds = by_kind(times)
  total = sum(kinds.values())
  rows = [dict(kind=k, seconds=s, share=s / total) for k, s in
          sorted(kinds.items(), key=lambda kv: -kv[1])]
  print(f'{size}/{modality}, batch {batch}, {config.modalities[modality].input_size}: '
        f'{wall:.2f} s/step wall, {total:.2f} s/step of op time (summed over threads), '
        f'{step_flops / 1e9:.1f} GFLOP/step')
  print(common.table(rows, [('kind', 'kind', 's'), ('seconds', 's/step', '.3f'),
                            ('share', 'share of op time', '.1%')]))
  top = sorted(((k, v) for k, v in times.items() if k not in CONTAINERS),
               key=lambda kv: -kv[1])[:15]
  print('\ntop op types:')
  print(common.table([dict(op=k, seconds=v, share=v / total) for k, v in top],
                     [('op', 'op type', 's'), ('seconds', 's/step', '.3f'),
                      ('share', 'share', '.1%')]))
  # FLOPs of each matmul kind (backward = 2x forward) over the op time spent in it.
  rates = {
      'dense matmul': 3 * batch * (count.projections + count.mlp + count.head),
      'attention matmul': 3 * batch * count.attention,
      'patch embedding': 2 * batch * count.tokenizer}
  rates = {k: f / max(kinds.get(k, 0.0), 1e-9) / 1e9 for k, f in rates.items()}
  print('\nGFLOP/s while in: ' + ', '.join(f'{k} {v:.1f}' for k, v in rates.items())
        + f'; whole step {step_flops / wall / 1e9:.1f} GFLOP/s (wall)')
  reference = common.MatmulReference()
  matmul = reference.burst(2.0)[0]
  print(f'fp32 {reference.n}^3 matmul in this process: {matmul:.1f} GFLOP/s')
  path = common.write_json(_OUT.value, f'profile_{size}_{modality}' + (
      '_quick' if _QUICK.value else ''), dict(
          size=size, modality=modality, batch=batch, wall_seconds=wall,
          op_seconds=total, step_gflop=step_flops / 1e9, kinds=rows,
          op_types=dict(sorted(times.items(), key=lambda kv: -kv[1])),
          gflops_in_ops=rates, step_gflops=step_flops / wall / 1e9,
          reference_matmul_gflops=matmul))
  print(f'wrote {path}')


if __name__ == '__main__':
  app.run(main)
