"""The co-training engine: schedules, learning rates, optimizer, strategies, loop, evaluation.

Public API (the TFX Trainer's run_fn and the CLIs call these):
  run(config, workdir, *, data=None) -> {task: metrics}
  evaluate(config, workdir, *, data=None, split='eval') -> {task: metrics}
"""

from polyvit_tf.train.loop import (NonFiniteLossError, Preempted, Trainer, evaluate,
                                   load_provider, run)

__all__ = ['run', 'evaluate', 'Trainer', 'NonFiniteLossError', 'Preempted', 'load_provider']
