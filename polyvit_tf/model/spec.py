"""Quantities derived from a config: input shapes, token grids, per-task facts.

The config is the single source of truth; everything here is computed from it, and config
errors are raised here, before any data is read, naming the offending key.
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from polyvit_tf.configs import base


class ConfigError(ValueError):
  """A config value is missing or inconsistent; the message names the key."""


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
  """Input geometry of one modality."""
  name: str
  input_size: tuple[int, ...]  # (H, W) or (T, H, W)
  patch_size: tuple[int, ...]  # same rank as input_size
  channels: int

  @property
  def input_shape(self) -> tuple[int, ...]:
    """Shape of one example (no batch dimension), channels last."""
    return self.input_size + (self.channels,)

  @property
  def grid(self) -> tuple[int, ...]:
    """Number of patches along each axis: floor(input / patch) (Sec. 3.1)."""
    return tuple(i // p for i, p in zip(self.input_size, self.patch_size))

  @property
  def num_patches(self) -> int:
    return math.prod(self.grid)

  @property
  def sequence_length(self) -> int:
    """Patches plus the class token (Table 7)."""
    return self.num_patches + 1


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """Facts about one task the model and trainer need."""
  name: str
  modality: str
  num_classes: int
  multilabel: bool
  loss: str
  head_init: str
  pooling: str
  stochastic_depth: float


def modality_spec(config: ml_collections.ConfigDict, modality: str) -> ModalitySpec:
  if modality not in base.MODALITIES:
    raise ConfigError(f'modalities.{modality}: unknown modality; expected one of '
                      f'{list(base.MODALITIES)}.')
  if modality not in config.modalities:
    raise ConfigError(f'modalities.{modality}: missing; a task uses this modality.')
  m = config.modalities[modality]
  input_size, patch_size = tuple(m.input_size), tuple(m.patch_size)
  rank = 3 if modality == 'video' else 2
  key = f'modalities.{modality}'
  if len(input_size) != rank or len(patch_size) != rank:
    raise ConfigError(f'{key}: input_size {input_size} and patch_size {patch_size} must '
                      f'both have {rank} entries for {modality}.')
  if any(p <= 0 for p in patch_size) or any(i < p for i, p in zip(input_size, patch_size)):
    raise ConfigError(f'{key}.patch_size {patch_size} must be positive and fit in '
                      f'input_size {input_size}.')
  if any(i % p for i, p in zip(input_size, patch_size)):
    raise ConfigError(f'{key}.input_size {input_size} is not a multiple of patch_size '
                      f'{patch_size}; pixels would be dropped.')
  if m.channels not in (1, 3):
    raise ConfigError(f'{key}.channels must be 1 or 3, got {m.channels}.')
  return ModalitySpec(modality, input_size, patch_size, int(m.channels))


def task_spec(config: ml_collections.ConfigDict, task: str) -> TaskSpec:
  if task not in config.tasks:
    raise ConfigError(f'tasks.{task}: unknown task; the config has {task_names(config)}.')
  t = config.tasks[task]
  key = f'tasks.{task}'
  if t.modality not in base.MODALITIES:
    raise ConfigError(f'{key}.modality: {t.modality!r} is not one of {list(base.MODALITIES)}.')
  if t.num_classes < 1:
    raise ConfigError(f'{key}.num_classes must be >= 1, got {t.num_classes}.')
  for field, allowed in (('loss', base.LOSSES), ('head_init', base.HEAD_INITS),
                         ('pooling', base.POOLINGS)):
    if t[field] not in allowed:
      raise ConfigError(f'{key}.{field}: {t[field]!r} is not one of {list(allowed)}.')
  if t.multilabel and t.loss != 'sigmoid_xent':
    raise ConfigError(f'{key}.loss: a multi-label task needs sigmoid_xent, got {t.loss!r}.')
  if not 0.0 <= t.stochastic_depth < 1.0:
    raise ConfigError(f'{key}.stochastic_depth must be in [0, 1), got {t.stochastic_depth}.')
  if t.class_names and len(t.class_names) != t.num_classes:
    raise ConfigError(f'{key}.class_names has {len(t.class_names)} names for '
                      f'{t.num_classes} classes.')
  return TaskSpec(task, t.modality, int(t.num_classes), bool(t.multilabel), t.loss,
                  t.head_init, t.pooling, float(t.stochastic_depth))


def task_names(config: ml_collections.ConfigDict) -> list[str]:
  """Tasks in config order."""
  return list(config.tasks.keys())


def used_modalities(config: ml_collections.ConfigDict) -> list[str]:
  """Modalities used by at least one task, in the canonical order image, audio, video."""
  used = {config.tasks[t].modality for t in task_names(config)}
  return [m for m in base.MODALITIES if m in used]


def validate_model_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first bad key of the model/modalities/tasks sections."""
  m = config.model
  if m.hidden_size % m.num_heads:
    raise ConfigError(f'model.hidden_size {m.hidden_size} is not divisible by '
                      f'model.num_heads {m.num_heads}.')
  if not 0 <= m.num_adapt_layers <= m.num_layers:
    raise ConfigError(f'model.num_adapt_layers must be in [0, model.num_layers='
                      f'{m.num_layers}], got {m.num_adapt_layers}.')
  if not task_names(config):
    raise ConfigError('tasks: the config has no tasks.')
  for task in task_names(config):
    modality_spec(config, task_spec(config, task).modality)
