"""Small two-task configs (image + multi-label audio) for the trainer's tests.

`--config=tests/train/configs.py:<variant>`:
  base     image_a (10 classes) + audio_a (6 classes, multi-label, stochastic depth 0.3)
  equiv    no stochastic depth (strategy-equivalence tests: replicas draw their own masks)
           and every step clipped after the all-reduce (per-replica clipping of the audio
           steps, the default, makes N replicas differ from one device by design)
  resume   more steps, a checkpoint every 5 steps (kill-and-resume test)
"""

from __future__ import annotations

import ml_collections

from polyvit_tf.configs import base


def get_config(arg: str = 'base') -> ml_collections.ConfigDict:
  model = base.model_config('Ti', hidden_size=32, num_layers=2, num_heads=2, mlp_dim=64)
  modalities = ml_collections.ConfigDict(dict(
      image=base.modality_config((16, 16), (8, 8), 3),
      audio=base.modality_config((32, 16), (8, 8), 1),
  ))
  resume = arg == 'resume'
  tasks = {
      'image_a': base.task_config('image', 10, train_steps=16 if resume else 6,
                                  warmup_steps=2, learning_rate=0.1, batch_size=4),
      'audio_a': base.task_config('audio', 6, train_steps=14 if resume else 4,
                                  warmup_steps=1, learning_rate=0.5, batch_size=4,
                                  multilabel=True,
                                  stochastic_depth=0.0 if arg == 'equiv' else 0.3),
  }
  config = base.assemble(
      model, modalities, tasks, name=f'train_test_{arg}',
      train=dict(log_every_steps=1, checkpoint_every_steps=5 if resume else 0),
      eval=dict(batch_size=8))
  if arg == 'equiv':
    config.optimizer.clip_per_replica_modalities = ()
  return config
