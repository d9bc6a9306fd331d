"""A tiny three-modality PolyViT for tests and quick runs (builds in a second on a CPU).

`--config=polyvit_tf/configs/tiny.py` or `tiny.py:adapt1` (one modality-adaptor layer).
"""

from __future__ import annotations

import ml_collections

from polyvit_tf.configs import base


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  num_adapt = 1 if arg == 'adapt1' else 0
  model = base.model_config('Ti', num_adapt_layers=num_adapt, hidden_size=32, num_layers=2,
                            num_heads=2, mlp_dim=64)
  modalities = ml_collections.ConfigDict(dict(
      image=base.modality_config((32, 32), (8, 8), 3),
      audio=base.modality_config((64, 16), (8, 8), 1),
      video=base.modality_config((4, 32, 32), (2, 8, 8), 3),
  ))
  common = dict(train_steps=20, warmup_steps=2, batch_size=4)
  tasks = {
      'image_a': base.task_config('image', 10, learning_rate=0.03, **common),
      'image_b': base.task_config('image', 5, learning_rate=0.1, pooling='gap', **common),
      'audio_a': base.task_config('audio', 6, learning_rate=0.5, multilabel=True,
                                  stochastic_depth=0.3, mixup_alpha=0.3, **common),
      'video_a': base.task_config('video', 4, learning_rate=0.1, **common),
  }
  return base.assemble(model, modalities, tasks, name=f'tiny{"_" + arg if arg else ""}')
