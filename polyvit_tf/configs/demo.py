"""The demo: a small PolyViT co-trained on the built-in demo data (polyvit_tf.data.demo).

Four tasks over three modalities, built offline in seconds (`demo:<name>` sources build
them on first use under $POLYVIT_DEMO_DIR, default ~/.cache/polyvit_tf/demo, or under
`--config.tasks.<t>.data.data_dir`):

  digits        image 32x32, 10 classes, 1000 train   (scikit-learn handwritten digits)
  digit_groups  image 32x32,  3 classes,  150 train   (digit mod 3, disjoint scans: small)
  tones         audio 128 frames x 64 mel bins, 6 classes, 720 train
  motion        video 8 x 32 x 32 (stride 2 over 16 frames), 4 directions, 480 train

`--config=polyvit_tf/configs/demo.py` (main job, experiments, benchmarks) or
`demo.py:small` (fewer steps, smaller batches: tests). The model is a 4-layer, 64-wide ViT;
training runs for a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import ml_collections

from polyvit_tf.configs import base

# Log-mel statistics of the tones training split, from
# `python -m polyvit_tf.data.stats --config=polyvit_tf/configs/demo.py --task=tones`.
TONES_NORM_MEAN = -0.6088
TONES_NORM_STD = 3.3718


def _data(name: str, **overrides) -> ml_collections.ConfigDict:
  return base.data_config(f'demo:{name}', train_split='train', eval_split='test',
                          validation_split='validation', shuffle_buffer=2048, **overrides)


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  if arg not in ('', 'small'):
    raise ValueError(f'Unknown demo variant {arg!r}; expected "" or "small".')
  small = arg == 'small'
  model = base.model_config('Ti', hidden_size=64, num_layers=4, num_heads=4, mlp_dim=128)
  modalities = ml_collections.ConfigDict(dict(
      image=base.modality_config((32, 32), (8, 8), 3),
      audio=base.modality_config((128, 64), (16, 16), 1),
      video=base.modality_config((8, 32, 32), (2, 8, 8), 3),
  ))
  steps = (lambda n: max(4, n // 25)) if small else (lambda n: n)
  batch = (lambda n: 8) if small else (lambda n: n)
  # Digits are not mirror-symmetric and motion direction flips with the frame: no flips.
  image_data = dict(random_flip=False, inception_crop_area=(0.6, 1.0))
  tasks = {
      'digits': base.task_config(
          'image', 10, train_steps=steps(400), warmup_steps=steps(40), learning_rate=0.03,
          batch_size=batch(64), class_names=tuple(str(d) for d in range(10)),
          data=_data('digits', **image_data)),
      'digit_groups': base.task_config(
          'image', 3, train_steps=steps(100), warmup_steps=steps(10), learning_rate=0.03,
          batch_size=batch(32), class_names=('0_3_6_9', '1_4_7', '2_5_8'),
          data=_data('digit_groups', **image_data)),
      'tones': base.task_config(
          'audio', 6, train_steps=steps(400), warmup_steps=steps(40), learning_rate=0.1,
          batch_size=batch(32), mixup_alpha=0.3, stochastic_depth=0.1, eval_views=2,
          class_names=('rising', 'falling', 'slow_am', 'fast_am', 'trill', 'harmonic'),
          data=_data('tones', audio_norm_mean=TONES_NORM_MEAN,
                     audio_norm_std=TONES_NORM_STD, specaugment_freq_masks=1,
                     specaugment_freq_width=8, specaugment_time_masks=2,
                     specaugment_time_width=16)),
      'motion': base.task_config(
          'video', 4, train_steps=steps(600), warmup_steps=steps(60), learning_rate=0.1,
          batch_size=batch(16), eval_views=3, class_names=('right', 'left', 'down', 'up'),
          data=_data('motion', random_flip=False)),
  }
  return base.assemble(model, modalities, tasks, name='demo_small' if small else 'demo',
                       eval=dict(batch_size=8 if small else 64))
