"""Subprocess helper of test_xla_step: compiles every step kind WHOLE with XLA and runs it.

  python -m tests.train.xla_runner <out.json> <strategy: default|mirrored> [precisions: fp32,bf16]

With `train.use_xla` the trainer's step of each kind (every task's TaskStep and the
AccumulatedStep) and the eval step of each task are `tf.function(jit_compile=True)`: the
test runs each one (a jit_compile function raises naming the op that cannot compile; it
never falls back to the graph), and for the default strategy also lowers it to HLO
(`experimental_get_compiler_ir(...)(stage='hlo')`) and lists the ops of the traced step
that are host-side (strings, decoding, Python callbacks, iterators). The mirrored run uses
two logical CPU devices (set before TensorFlow starts). The model is the trainer tests'
config with one encoder layer (compile time). Writes a JSON report:
{"replicas": N, "precisions": {precision: {name: {"ran", "xla_scope", "hlo_bytes",
"hlo_ops", "error", "host_ops", "host_ops_outside", "jit_functions"}}}}.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')

from polyvit_tf.train import strategy as strategy_lib  # noqa: E402

if __name__ == '__main__' and sys.argv[2:3] == ['mirrored']:
  strategy_lib.configure_cpu_devices(2)  # before anything else starts TensorFlow

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from polyvit_tf.train import loop  # noqa: E402
from polyvit_tf.train import schedules  # noqa: E402
from tests.train import configs  # noqa: E402
from tests.train import synthetic  # noqa: E402

# Op types that must never run inside a step: host-side work (strings, decoding, Python
# callbacks, input iterators, file and summary I/O).
HOST_OP = re.compile(r'String|Decode|Encode|PyFunc|EagerPyFunc|Iterator|Print|Summary|'
                     r'ReadFile|WriteFile|Regex|Substr|AsString|Unicode|Audio|Image(?!Projective)')


def _op_types(concrete) -> set[str]:
  """Every op type of a concrete function's graph and of the functions it calls."""
  graph_def = concrete.graph.as_graph_def()
  types = {n.op for n in graph_def.node}
  for f in graph_def.library.function:
    types |= {n.op for n in f.node_def}
  return types


def _jit_functions(concrete) -> int:
  """How many function calls in the step's graph carry _XlaMustCompile=True (jit_compile)."""
  graph_def = concrete.graph.as_graph_def()
  nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
  return sum(1 for n in nodes if '_XlaMustCompile' in n.attr and n.attr['_XlaMustCompile'].b)


def unsupported_ops(error: Exception) -> list[str]:
  """The op types an XLA compile error reports as not compilable."""
  return sorted(set(re.findall(r"No registered '(\w+)' OpKernel for XLA", str(error))))


def unsupported(error: Exception) -> str:
  """What an XLA compile error says without the Python traceback it carries (each
  'File ...' frame and its source line): it names the op that could not compile."""
  lines = [l.strip() for l in str(error).split('\n') if l.strip()]
  kept, skip = [], False
  for line in lines:
    if line.startswith('File "'):
      skip = True
      continue
    if not skip or line.startswith(('Detected', 'Trying', '(', '[', 'No registered')):
      kept.append(line)
    skip = False
  return f'{type(error).__name__}: ' + ' '.join(kept)[:1500]


def _trainer(strategy: str, precision: str, schedule: str, workdir: str) -> loop.Trainer:
  cfg = configs.get_config('base')  # per-replica clipping of the audio steps (the default)
  cfg.model.num_layers = 1
  cfg.train.use_xla = True
  cfg.train.mixed_precision = precision == 'bf16'
  cfg.distribution.strategy = strategy
  cfg.schedule.name = schedule
  return loop.Trainer(cfg, workdir, data=synthetic)


def _check(name: str, step, replica_fn, args, replica_args, strategy, report: dict,
           scope: str) -> None:
  entry = report.setdefault(name, {'xla_scope': scope})
  try:
    out = step(*args)
    for value in tf.nest.flatten(out):
      value = strategy.experimental_local_results(value)[0]
      if not np.all(np.isfinite(np.asarray(value, np.float64))):
        raise FloatingPointError(f'{name}: non-finite output')
    entry['ran'] = True
  except Exception as e:  # pylint: disable=broad-except
    entry.update(ran=False, error=unsupported(e), unsupported_ops=unsupported_ops(e))
    return
  outer = step.get_concrete_function(*args)
  entry['host_ops_outside'] = sorted(t for t in _op_types(outer) if HOST_OP.search(t))
  entry['jit_functions'] = _jit_functions(outer)
  if replica_args is None:
    return
  try:
    hlo = replica_fn.experimental_get_compiler_ir(*replica_args)(stage='hlo')
    entry['hlo_bytes'] = len(hlo)
    entry['hlo_ops'] = len(re.findall(r'^\s+\S+ = ', hlo, flags=re.M))
  except Exception as e:  # pylint: disable=broad-except
    entry.update(hlo_bytes=0, error=unsupported(e), unsupported_ops=unsupported_ops(e))
  inner = replica_fn.get_concrete_function(*replica_args)
  entry['host_ops'] = sorted(t for t in _op_types(inner) if HOST_OP.search(t))


def main(out: str, strategy: str, precisions: str = 'fp32,bf16') -> None:
  reports = {p: _report(strategy, p) for p in precisions.split(',')}
  replicas = 2 if strategy == 'mirrored' else 1
  with open(out, 'w') as f:
    json.dump({'strategy': strategy, 'replicas': replicas, 'precisions': reports}, f, indent=1)


def _report(strategy: str, precision: str) -> dict:
  report: dict = {}
  with tempfile.TemporaryDirectory() as tmp:
    # One trainer (alternating schedule) builds every kind: its TaskSteps, and the
    # AccumulatedStep of the same tasks (a step function does not depend on the schedule).
    trainer = _trainer(strategy, precision, 'alternating', tmp)
    s = trainer.strategy
    assert s.num_replicas_in_sync == (2 if strategy == 'mirrored' else 1)
    local = s.num_replicas_in_sync == 1
    kinds = [schedules.AccumulatedStep(tuple(trainer.tasks))]
    if local:  # over CPUs a TaskStep compiles only the forward/backward, as the accumulated
      kinds += list(trainer.schedule.kinds)
    lr = tf.constant(0.01, tf.float32)
    for kind in kinds:
      iterators = tuple(trainer._iterator(t, 0) for t in kind.tasks)  # pylint: disable=protected-access
      name = f'task:{kind.task}' if isinstance(kind, schedules.TaskStep) else 'accumulated'
      # The HLO of a replica step needs its replica context: one replica only.
      batches = tuple(next(it) for it in iterators) if local else None
      _check(name, trainer.steps.step_fn(kind), trainer.steps.replica_fn(kind),
             (iterators, lr), (batches, lr) if local else None, s, report,
             trainer.steps.xla_scope)
    for task in trainer.tasks:
      batch = next(iter(trainer.evaluator._dataset(task, 'eval')))  # pylint: disable=protected-access
      # No sync point inside: one replica's part lowers on its own.
      _check(f'eval:{task}', trainer.evaluator.eval_step(task),
             trainer.evaluator.replica_fn(task), (batch,),
             (s.experimental_local_results(batch)[0],), s, report, 'step')
    trainer.close()
  return report


if __name__ == '__main__':
  main(*sys.argv[1:4])
