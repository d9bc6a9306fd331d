"""PolyViT: modality tokenizers, modality-adaptor layers, a shared encoder and one head per task.

`PolyViT(config)` owns every layer once. `model_for(task)` returns a Keras functional model
(modality input -> that task's logits) made of those shared layer objects, so training one
task's model updates the encoder every other task's model uses.
"""

from __future__ import annotations

from typing import Sequence

import keras
import ml_collections
import numpy as np

from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.model import encoder as encoder_lib
from polyvit_tf.model import head as head_lib
from polyvit_tf.model import tokenizer as tokenizer_lib


class InputMismatchError(ValueError):
  """An input does not have the shape the task's modality expects."""


class PolyViT:
  """The shared layers of a PolyViT and the per-task Keras models built from them."""

  def __init__(self, config: ml_collections.ConfigDict, seed: int | None = None):
    self.spec = specs_lib.resolve(config)
    self.config = config
    m = self.spec.model
    self.num_layers = m.num_layers
    self.num_adapt_layers = m.num_adapt_layers
    self.hidden_size = m.hidden_size
    self.task_names = list(self.spec.task_names)
    self.tasks = dict(self.spec.tasks)
    self.modalities = dict(self.spec.modalities)
    if seed is not None:
      keras.utils.set_random_seed(seed)
    base_seed = 0 if seed is None else seed

    def block(name: str, layer_index: int) -> encoder_lib.EncoderBlock:
      b = encoder_lib.EncoderBlock(
          m.hidden_size, m.num_heads, m.mlp_dim, dropout_rate=m.dropout_rate,
          attention_dropout_rate=m.attention_dropout_rate,
          layer_norm_epsilon=m.layer_norm_epsilon, seed=base_seed * 1000 + layer_index,
          name=name)
      return b

    self.tokenizers = {
        mod: tokenizer_lib.Tokenizer(s.input_size, s.patch_size, s.channels, m.hidden_size,
                                     name=f'tokenizer_{mod}')
        for mod, s in self.modalities.items()}
    self.adaptors = {
        mod: [block(f'adaptor_{mod}_block_{l}', l) for l in range(self.num_adapt_layers)]
        for mod in self.modalities}
    self.shared_blocks = [block(f'shared_block_{l}', l)
                          for l in range(self.num_adapt_layers, self.num_layers)]
    self.encoder_norm = keras.layers.LayerNormalization(
        epsilon=m.layer_norm_epsilon, name='encoder_norm')
    self.pools = {p: head_lib.Pool(p, name=f'pool_{p}') for p in ('cls', 'gap')}
    self.heads = {t: head_lib.task_head(f'head_{t}', s.num_classes, s.head_init)
                  for t, s in self.tasks.items()}
    self._models: dict[tuple[str, str], keras.Model] = {}
    # Every variable is created now, right after seeding, so a seed fixes all of them.
    self.build_all()

  # ----------------------------------------------------------------------------- models
  def input_shape(self, task: str) -> tuple[int, ...]:
    """Shape of one input example of `task` (no batch axis)."""
    return self.modalities[self.task(task).modality].input_shape

  def task(self, task: str) -> specs_lib.TaskSpec:
    if task not in self.tasks:
      raise KeyError(f'Unknown task {task!r}; this PolyViT has tasks {self.task_names}.')
    return self.tasks[task]

  def _build(self, task: str) -> tuple[keras.Model, keras.Model]:
    spec = self.task(task)
    inputs = keras.Input(shape=self.input_shape(task), name=spec.modality)
    rates = self.drop_path_rates(task)
    x = self.tokenizers[spec.modality](inputs)
    for layer, blk in enumerate(self.adaptors[spec.modality] + self.shared_blocks):
      x = blk(x, drop_path_rate=rates[layer])
    features = self.pools[spec.pooling](self.encoder_norm(x))
    logits = self.heads[task](features)
    features_model = keras.Model(inputs, features, name=f'polyvit_{task}_features')
    model = keras.Model(inputs, logits, name=f'polyvit_{task}')
    return model, features_model

  def drop_path_rates(self, task: str) -> list[float]:
    """Stochastic-depth rate of each block `task` runs: its adaptors, then the shared ones."""
    return encoder_lib.drop_path_rates(self.task(task).stochastic_depth, self.num_layers,
                                       self.num_adapt_layers)

  def model_for(self, task: str) -> keras.Model:
    """The functional model of `task`: modality input (B, ...) -> logits (B, classes)."""
    if (task, 'logits') not in self._models:
      model, features = self._build(task)
      self._models[(task, 'logits')] = model
      self._models[(task, 'features')] = features
    return self._models[(task, 'logits')]

  def features_model_for(self, task: str) -> keras.Model:
    """The pre-head embedding of `task` (pooled, after the final LayerNorm), for probes."""
    self.model_for(task)
    return self._models[(task, 'features')]

  def build_all(self) -> None:
    """Creates every variable (all tokenizers, adaptors, encoder and heads); needs no data."""
    for task in self.task_names:
      self.model_for(task)

  def __call__(self, task: str, x, training: bool = False):
    """Runs `task` on a batch `x`, checking the input shape first."""
    self.check_input(task, x.shape)
    return self.model_for(task)(x, training=training)

  def check_input(self, task: str, shape: Sequence[int | None]) -> None:
    """Raises InputMismatchError naming the task and the expected shape."""
    spec = self.task(task)
    expected = self.input_shape(task)
    got = tuple(shape)[1:]
    if len(got) == len(expected) and all(g is None or g == e for g, e in zip(got, expected)):
      return
    hint = ''
    for mod, s in self.modalities.items():
      if mod != spec.modality and tuple(got) == s.input_shape:
        hint = f' (that is the {mod} input shape; task {task!r} takes {spec.modality})'
    raise InputMismatchError(
        f'Task {task!r} ({spec.modality}) expects inputs of shape (batch,) + {expected}, '
        f'got {tuple(shape)}{hint}.')

  # -------------------------------------------------------------------------- variables
  def parts(self) -> dict[str, list]:
    """Variables grouped by part: tokenizers/<m>, adaptors/<m>, shared_encoder, heads/<t>."""
    self.build_all()
    parts: dict[str, list] = {}
    for mod in self.modalities:
      parts[f'tokenizers/{mod}'] = list(self.tokenizers[mod].weights)
    for mod in self.modalities:
      parts[f'adaptors/{mod}'] = [w for b in self.adaptors[mod] for w in b.weights]
    parts['shared_encoder'] = ([w for b in self.shared_blocks for w in b.weights]
                               + list(self.encoder_norm.weights))
    for task in self.task_names:
      parts[f'heads/{task}'] = list(self.heads[task].weights)
    return parts

  @property
  def trainable_variables(self) -> list:
    return [v for vs in self.parts().values() for v in vs if v.trainable]

  def variables_for(self, task: str) -> list:
    """The trainable variables `task`'s forward pass uses."""
    return list(self.model_for(task).trainable_variables)

  def layers(self) -> dict[str, keras.layers.Layer]:
    """Every weight-holding layer by its unique name (for checkpoints and weight loading)."""
    out: dict[str, keras.layers.Layer] = {}
    for layer in (list(self.tokenizers.values())
                  + [b for bs in self.adaptors.values() for b in bs]
                  + self.shared_blocks + [self.encoder_norm] + list(self.heads.values())):
      out[layer.name] = layer
    return out

  def count_params(self) -> dict[str, int]:
    """Number of trainable parameters per part (see `parts`)."""
    return {name: int(sum(np.prod(v.shape) for v in vs if v.trainable))
            for name, vs in self.parts().items()}


def build(config: ml_collections.ConfigDict, *, seed: int | None = None,
          mixed_precision: bool = False) -> PolyViT:
  """The PolyViT of `config` (call under a strategy's scope to place its variables); with
  `mixed_precision` its layers compute in bfloat16 (the mixed_bfloat16 policy is set only
  while they are built)."""
  previous = keras.mixed_precision.global_policy()
  if mixed_precision:
    keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    return PolyViT(config, seed=seed)
  finally:
    keras.mixed_precision.set_global_policy(previous)
