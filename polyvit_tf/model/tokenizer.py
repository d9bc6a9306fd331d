"""One tokenizer for every modality: patch (or tubelet) embedding, CLS token, position embedding.

Eq. (1) of the paper: z0 = [z_cls, E x_1, ..., E x_N] + p. The embedding E is a convolution
whose kernel equals its stride, i.e. a linear map of each non-overlapping patch. For a 2D input
(image, spectrogram) it runs as a Conv2D, and for a 3D input (video, t x h x w tubelets) the t
frames of a tubelet are folded into the channel axis first, which turns the Conv3D into the
same Conv2D computation (TFLite runs and quantises Conv2D everywhere, Conv3D only on CPU
kernels without quantisation). Any other patch rank (e.g. 1-D patches of a time series) runs
as what that convolution is: the input cut into patches (a reshape) times the kernel flattened
to (prod(patch) * C, D) (a Dense). Tokens are ordered row-major over the patch grid, as a
convolution's output flattened would be. The weights have the same names and shapes whatever
the rank.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package='polyvit_tf')
class Tokenizer(keras.layers.Layer):
  """Embeds a (*input_size, C) input, e.g. (H, W, C) or (T, H, W, C), into (N + 1, D) tokens.

  Weights (named as a ViT checkpoint names them):
    kernel: patch_size + (channels, hidden_size)  LeCun normal (Flax Conv default)
    bias: (hidden_size,)                           zeros
    cls: (1, 1, hidden_size)                       zeros
    pos_embedding: (1, N + 1, hidden_size)        N(0, 0.02)
  """

  def __init__(self, input_size: Sequence[int], patch_size: Sequence[int], channels: int,
               hidden_size: int, **kwargs):
    super().__init__(**kwargs)
    if len(input_size) != len(patch_size) or not patch_size:
      raise ValueError(f'{self.name}: input_size {tuple(input_size)} and patch_size '
                       f'{tuple(patch_size)} must have the same, non-zero, rank.')
    self.input_size = tuple(int(s) for s in input_size)
    self.patch_size = tuple(int(p) for p in patch_size)
    self.channels = int(channels)
    self.hidden_size = int(hidden_size)
    self.grid = tuple(i // p for i, p in zip(self.input_size, self.patch_size))
    self.num_patches = math.prod(self.grid)
    self.input_spec = keras.layers.InputSpec(shape=(None,) + self.input_size + (self.channels,))

  def build(self, input_shape):
    d = self.hidden_size
    self.kernel = self.add_weight(
        name='kernel', shape=self.patch_size + (self.channels, d),
        initializer=keras.initializers.LecunNormal())
    self.bias = self.add_weight(name='bias', shape=(d,), initializer='zeros')
    self.cls = self.add_weight(name='cls', shape=(1, 1, d), initializer='zeros')
    self.pos_embedding = self.add_weight(
        name='pos_embedding', shape=(1, self.num_patches + 1, d),
        initializer=keras.initializers.RandomNormal(stddev=0.02))

  def _conv2d_kernel(self):
    """The kernel as a Conv2D kernel (h, w, [t *] C, D)."""
    if len(self.patch_size) == 2:
      return self.kernel
    t, h, w = self.patch_size
    kernel = ops.transpose(self.kernel, (1, 2, 0, 3, 4))  # (h, w, t, C, D)
    return ops.reshape(kernel, (h, w, t * self.channels, self.hidden_size))

  def _patch_embedding(self, x):
    """(B, *input_size, C) -> (B, N, D): every patch times the kernel (no bias)."""
    rank = len(self.patch_size)
    if rank in (2, 3):
      if rank == 3:
        # (B, T, H, W, C) -> (B * T/t, H, W, t * C): each tubelet's frames become channels.
        (gt, _, _), (t, _, _) = self.grid, self.patch_size
        _, height, width = self.input_size
        x = ops.reshape(x, (-1, gt, t, height, width, self.channels))
        x = ops.transpose(x, (0, 1, 3, 4, 2, 5))
        x = ops.reshape(x, (-1, height, width, t * self.channels))
      x = ops.conv(x, self._conv2d_kernel(), strides=self.patch_size[-2:], padding='valid')
      return ops.reshape(x, (-1, self.num_patches, self.hidden_size))
    # Any other rank: cut into patches (B, g1, p1, ..., gr, pr, C) -> (B, N, prod(p) * C).
    split = [s for g, p in zip(self.grid, self.patch_size) for s in (g, p)]
    x = ops.reshape(x, (-1, *split, self.channels))
    order = ([0] + [1 + 2 * i for i in range(rank)] + [2 + 2 * i for i in range(rank)]
             + [1 + 2 * rank])
    patch = math.prod(self.patch_size) * self.channels
    x = ops.reshape(ops.transpose(x, order), (-1, self.num_patches, patch))
    return ops.matmul(x, ops.reshape(self.kernel, (patch, self.hidden_size)))

  def call(self, x):
    x = self._patch_embedding(x) + self.bias
    cls = ops.broadcast_to(ops.cast(self.cls, x.dtype), (ops.shape(x)[0], 1, self.hidden_size))
    x = ops.concatenate([cls, x], axis=1)
    return x + ops.cast(self.pos_embedding, x.dtype)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.num_patches + 1, self.hidden_size)

  def get_config(self):
    return {**super().get_config(), 'input_size': self.input_size,
            'patch_size': self.patch_size, 'channels': self.channels,
            'hidden_size': self.hidden_size}
