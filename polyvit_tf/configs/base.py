"""Building blocks of PolyViT configs (ml_collections).

A config has these sections; everything else (token grids, parameter counts, step counts,
learning rates, signatures) is derived from it:

  seed            run seed (schedule, initialisation, augmentation)
  model           encoder size, L_adapt, dropout
  modalities      per modality: input size, channels, patch (tubelet) size
  tasks           per task (ordered by name everywhere): modality, classes, head,
                  loss, steps, learning rate, batch size, regularisers, data source
  schedule        task sampling schedule of Sec. 4.2
  optimizer       SGD with momentum (or AdamW), clipping, idle-parameter policy
  lr_schedule     warmup + decay shape shared by all tasks
  train / eval    loop, checkpoint and evaluation settings
  distribution    tf.distribute strategy
"""

from __future__ import annotations

from typing import Any, Sequence

import ml_collections

from polyvit_tf.configs import sizes

MODALITIES = ('image', 'audio', 'video')
LOSSES = ('softmax_xent', 'sigmoid_xent')
HEAD_INITS = ('zeros', 'lecun_normal')
POOLINGS = ('cls', 'gap')


def model_config(size: str = 'B', num_adapt_layers: int = 0,
                 **overrides: Any) -> ml_collections.ConfigDict:
  """Encoder config for a standard size; `overrides` replace any field (e.g. for tiny tests)."""
  dims = sizes.get_size(size)
  cfg = ml_collections.ConfigDict(dict(
      size=size,
      hidden_size=dims.hidden_size,
      num_layers=dims.num_layers,
      num_heads=dims.num_heads,
      mlp_dim=dims.mlp_dim,
      num_adapt_layers=num_adapt_layers,
      dropout_rate=0.0,
      attention_dropout_rate=0.0,
      layer_norm_epsilon=1e-6,
  ))
  cfg.update(overrides)
  return cfg


def modality_config(input_size: Sequence[int], patch_size: Sequence[int],
                    channels: int = 3) -> ml_collections.ConfigDict:
  """One modality's input: `input_size` is (H, W) or (T, H, W); `patch_size` matches it."""
  return ml_collections.ConfigDict(dict(
      input_size=tuple(input_size), patch_size=tuple(patch_size), channels=channels))


def paper_modalities(video_tubelet: Sequence[int] = (4, 16, 16),
                     audio_channels: int = 3) -> ml_collections.ConfigDict:
  """Input dimensions of the paper's Table 7 (fine-tuning rows)."""
  return ml_collections.ConfigDict(dict(
      image=modality_config((384, 384), (16, 16), 3),
      # Log-mel spectrogram: 800 frames (8 s at 100 frames/s) x 128 mel bins. The original
      # code tiles the single log-mel channel to 3 channels (audio_channels=3).
      audio=modality_config((800, 128), (16, 16), audio_channels),
      video=modality_config((32, 224, 224), video_tubelet, 3),
  ))


def data_config(source: str = '', **overrides: Any) -> ml_collections.ConfigDict:
  """Where a task's examples come from and how they are read.

  `source` is `tfds:<name>` or `tfrecord:<glob or dir>`; the splits name the train and
  eval splits (`train[:98%]` style slicing is allowed for TFDS).
  """
  cfg = ml_collections.ConfigDict(dict(
      source=source,
      train_split='train',
      eval_split='test',
      validation_split='',  # for learning-rate grid searches (probes); '' = none
      shuffle_buffer=10_000,
      num_parallel_calls=-1,  # tf.data.AUTOTUNE
      skip_bad_examples=True,
  ))
  cfg.update(overrides)
  return cfg


def task_config(modality: str, num_classes: int, *, train_steps: int,
                learning_rate: float, warmup_steps: int, batch_size: int,
                multilabel: bool = False, loss: str | None = None,
                head_init: str | None = None, pooling: str = 'cls',
                stochastic_depth: float = 0.0, mixup_alpha: float = 0.0,
                label_smoothing: float = 0.0, eval_views: int = 1,
                data: ml_collections.ConfigDict | None = None,
                class_names: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """One task (data set + label space + head + its single-task training hyper-parameters).

  Defaults follow the paper / original code: video and audio heads start at zero, image
  heads LeCun normal (Appendix A); image tasks and multi-label tasks use sigmoid
  cross-entropy, single-label audio/video tasks softmax cross-entropy.
  """
  if loss is None:
    loss = 'sigmoid_xent' if (multilabel or modality == 'image') else 'softmax_xent'
  if head_init is None:
    head_init = 'lecun_normal' if modality == 'image' else 'zeros'
  return ml_collections.ConfigDict(dict(
      modality=modality,
      num_classes=num_classes,
      multilabel=multilabel,
      loss=loss,
      head_init=head_init,
      pooling=pooling,
      train_steps=train_steps,
      warmup_steps=warmup_steps,
      learning_rate=learning_rate,
      batch_size=batch_size,
      stochastic_depth=stochastic_depth,
      mixup_alpha=mixup_alpha,
      label_smoothing=label_smoothing,
      eval_views=eval_views,
      class_names=tuple(class_names),
      data=data if data is not None else data_config(),
  ))


def epochs_to_steps(epochs: float, train_size: int, batch_size: int) -> int:
  """Number of SGD steps of `epochs` passes over `train_size` examples."""
  return int(round(epochs * train_size / batch_size))


def base_config() -> ml_collections.ConfigDict:
  """Everything but model, modalities and tasks, with the paper's defaults."""
  return ml_collections.ConfigDict(dict(
      name='polyvit',
      seed=0,
      schedule=dict(
          # task_by_task | alternating | uniform | weighted | accumulated (Sec. 4.2).
          name='weighted',
          # Task order for task_by_task/alternating; empty = config order (task_by_task
          # then draws a seeded random order, as the paper does).
          task_order=(),
      ),
      optimizer=dict(
          name='sgd',  # sgd | adamw
          momentum=0.9,
          weight_decay=0.0,
          grad_clip_norm=1.0,
          # 'shared_momentum': the paper (one momentum state; parameters of tasks not in the
          #   current step keep moving with the momentum). 'freeze_idle': parameters that
          #   receive no gradient this step (other tasks' heads, other modalities'
          #   tokenizers/adaptors) are left untouched, momentum included.
          idle_params='shared_momentum',
          # Learning rate of the accumulated schedule: the smallest task rate (Appendix B).
          accumulated_learning_rate=0.0,
      ),
      lr_schedule=dict(decay='cosine', end_factor=0.0),  # cosine | linear | constant
      train=dict(
          checkpoint_every_steps=1000,
          max_checkpoints_to_keep=3,
          log_every_steps=50,
          eval_every_steps=0,  # 0: evaluate at the end only
          use_xla=False,
          mixed_precision=False,  # mixed_bfloat16 when True
          total_steps_override=0,  # >0: stop after this many steps (quick runs)
      ),
      eval=dict(batch_size=64, max_examples=0),
      distribution=dict(
          # auto: TPU if a TPU cluster resolves, multi_worker if TF_CONFIG names workers,
          # mirrored if >1 local device, default otherwise.
          strategy='auto', tpu='', num_cpu_devices=0),
  ))


def assemble(model: ml_collections.ConfigDict, modalities: ml_collections.ConfigDict,
             tasks: dict[str, ml_collections.ConfigDict],
             **sections: Any) -> ml_collections.ConfigDict:
  """A full config from its parts; `sections` update the base sections (e.g. name=...)."""
  cfg = base_config()
  cfg.model = model
  # Only the modalities the tasks use are part of the model.
  used = [m for m in MODALITIES if any(t.modality == m for t in tasks.values())]
  cfg.modalities = ml_collections.ConfigDict({m: modalities[m] for m in used})
  cfg.tasks = ml_collections.ConfigDict(tasks)
  for key, value in sections.items():
    if isinstance(value, dict):
      cfg[key].update(value)
    else:
      cfg[key] = value
  return cfg
