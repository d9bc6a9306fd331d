"""The tiny demo config the pipeline integration tests run (LocalDagRunner and the rehearsal)."""

from __future__ import annotations

from polyvit_tf.configs import demo


def demo_config(data_dir: str, train_steps: int = 3, threshold: float = 0.01):
  """demo.py:small with `train_steps` steps per task and 32 eval examples per task.

  Three steps leave every task at chance (measured: top-1 equal to the majority-class rate
  or below), which the default blessing rightly refuses; the tests that follow a blessed
  model into Pusher and TFLiteExport configure `threshold` for every task instead.
  """
  config = demo.get_config('small')
  for task in config.tasks.keys():
    t = config.tasks[task]
    t.train_steps, t.warmup_steps = train_steps, 1
    t.data.data_dir = data_dir
    config.pipeline.thresholds[task] = threshold
  config.eval.max_examples = 32
  # The rehearsal has neither Kubernetes nor the TF Serving image (local runs never have it).
  config.pipeline.infra_validator.enabled = False
  config.train.checkpoint_every_steps = 100
  return config
