"""The tiny config as the fault tests checkpoint it (`--config=tests/faults/configs.py`)."""

from __future__ import annotations

import ml_collections

from polyvit_tf.configs import tiny


def get_config() -> ml_collections.ConfigDict:
  """configs/tiny.py with 4 steps per task (16 in all), a checkpoint every 4 steps."""
  config = tiny.get_config()
  for task in config.tasks:
    config.tasks[task].train_steps = 4
  config.train.checkpoint_every_steps = 4
  config.train.max_checkpoints_to_keep = 5
  config.train.log_every_steps = 4
  return config
