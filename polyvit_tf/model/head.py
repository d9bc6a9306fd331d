"""Task heads (Eqs. 4-5): pooling of the encoded tokens, then one linear layer per task."""

from __future__ import annotations

import keras
from keras import ops

_HEAD_INITIALIZERS = {
    'zeros': lambda: keras.initializers.Zeros(),
    'lecun_normal': lambda: keras.initializers.LecunNormal(),
}


@keras.saving.register_keras_serializable(package='polyvit_tf')
class Pool(keras.layers.Layer):
  """'cls': the class token (the paper); 'gap': the mean of the patch tokens (CLS excluded)."""

  def __init__(self, pooling: str = 'cls', **kwargs):
    super().__init__(**kwargs)
    if pooling not in ('cls', 'gap'):
      raise ValueError(f"pooling must be 'cls' or 'gap', got {pooling!r}.")
    self.pooling = pooling

  def call(self, x):
    if self.pooling == 'cls':
      return x[:, 0]
    return ops.mean(x[:, 1:], axis=1)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], input_shape[-1])

  def get_config(self):
    return {**super().get_config(), 'pooling': self.pooling}


def task_head(name: str, num_classes: int, init: str) -> keras.layers.Dense:
  """A task's linear head; kernel zeros (video/audio) or LeCun normal (images), bias zeros."""
  if init not in _HEAD_INITIALIZERS:
    raise ValueError(f'head init must be one of {sorted(_HEAD_INITIALIZERS)}, got {init!r}.')
  return keras.layers.Dense(num_classes, kernel_initializer=_HEAD_INITIALIZERS[init](),
                            bias_initializer='zeros', name=name)
