"""Transformer encoder block of ViT (Eqs. 2-3), as the original PolyViT code builds it.

Pre-LN, LayerNorm eps 1e-6, tanh-approximate GELU (Flax default), Xavier-uniform kernels, MLP
biases N(0, 1e-6), attention biases zero; stochastic depth per example on the attention and
MLP branches separately, WITHOUT 1/(1-p) rescaling (scenic's StochasticDepth).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package='polyvit_tf')
class TokenDense(keras.layers.Dense):
  """Dense over the last axis of (B, N, D) tokens as ONE 2-D matmul of (B*N, D) rows.

  Same weights and outputs as keras.layers.Dense. Keras' Dense multiplies a 3-D input by
  the kernel as a broadcast batch matmul, whose kernel gradient TensorFlow computes as B
  small (N, D)^T (N, D) products followed by a sum over the batch; flattening the tokens
  first makes the forward pass and both gradients single large matmuls. Measured on the CPU
  training step (benchmarks/token_dense.py, docs/performance.md): 1.17x for ViT-S at 197
  tokens and batch 8, 1.05x for S at 577 tokens, batch 2 and B at 401 tokens, batch 1.
  """

  def call(self, inputs, training=None):
    tail = tuple(inputs.shape[1:-1])
    if len(inputs.shape) <= 2 or any(d is None for d in tail):
      return super().call(inputs, training=training)
    y = super().call(ops.reshape(inputs, (-1, inputs.shape[-1])), training=training)
    return ops.reshape(y, (-1,) + tail + (self.units,))


@keras.saving.register_keras_serializable(package='polyvit_tf')
class DropPath(keras.layers.Layer):
  """Zeroes a residual branch per example with probability `rate` (no rescaling)."""

  def __init__(self, seed: int | None = None, **kwargs):
    super().__init__(**kwargs)
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, x, rate: float = 0.0, training=None):
    if not training or rate <= 0.0:
      return x
    shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
    keep = ops.cast(keras.random.uniform(shape, seed=self.seed_generator) >= rate, x.dtype)
    return x * keep

  def get_config(self):
    return {**super().get_config(), 'seed': self.seed}


@keras.saving.register_keras_serializable(package='polyvit_tf')
class MultiHeadSelfAttention(keras.layers.Layer):
  """Self-attention with separate query/key/value/out projections of size D x D."""

  def __init__(self, hidden_size: int, num_heads: int, dropout_rate: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    if hidden_size % num_heads:
      raise ValueError(f'hidden_size {hidden_size} is not divisible by num_heads {num_heads}.')
    self.hidden_size = hidden_size
    self.num_heads = num_heads
    self.head_dim = hidden_size // num_heads
    self.dropout_rate = dropout_rate
    dense = lambda name: TokenDense(  # noqa: E731
        hidden_size, kernel_initializer='glorot_uniform', bias_initializer='zeros', name=name)
    self.query, self.key, self.value, self.out = (
        dense('query'), dense('key'), dense('value'), dense('out'))
    self.dropout = keras.layers.Dropout(dropout_rate)

  def build(self, input_shape):
    for layer in (self.query, self.key, self.value):
      layer.build(input_shape)
    self.out.build(input_shape[:-1] + (self.hidden_size,))

  def _split_heads(self, x):
    x = ops.reshape(x, (-1, ops.shape(x)[1], self.num_heads, self.head_dim))
    return ops.transpose(x, (0, 2, 1, 3))  # (B, heads, N, head_dim)

  def call(self, x, training=None):
    q = self._split_heads(self.query(x)) * ops.cast(self.head_dim ** -0.5, x.dtype)
    k = self._split_heads(self.key(x))
    v = self._split_heads(self.value(x))
    logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
    weights = ops.cast(ops.softmax(ops.cast(logits, 'float32'), axis=-1), x.dtype)
    weights = self.dropout(weights, training=training)
    y = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
    y = ops.reshape(y, (-1, ops.shape(x)[1], self.hidden_size))
    return self.out(y)

  def get_config(self):
    return {**super().get_config(), 'hidden_size': self.hidden_size,
            'num_heads': self.num_heads, 'dropout_rate': self.dropout_rate}


@keras.saving.register_keras_serializable(package='polyvit_tf')
class EncoderBlock(keras.layers.Layer):
  """y = x + MSA(LN(x)); z = y + MLP(LN(y)), each branch with stochastic depth."""

  def __init__(self, hidden_size: int, num_heads: int, mlp_dim: int,
               dropout_rate: float = 0.0, attention_dropout_rate: float = 0.0,
               layer_norm_epsilon: float = 1e-6, seed: int | None = None, **kwargs):
    super().__init__(**kwargs)
    self.seed = seed
    self.hidden_size = hidden_size
    self.num_heads = num_heads
    self.mlp_dim = mlp_dim
    self.dropout_rate = dropout_rate
    self.attention_dropout_rate = attention_dropout_rate
    self.layer_norm_epsilon = layer_norm_epsilon
    mlp_bias = keras.initializers.RandomNormal(stddev=1e-6)
    self.norm1 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name='norm1')
    self.attention = MultiHeadSelfAttention(hidden_size, num_heads, attention_dropout_rate,
                                            name='attention')
    self.norm2 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name='norm2')
    self.mlp_in = TokenDense(mlp_dim, kernel_initializer='glorot_uniform',
                                     bias_initializer=mlp_bias, name='mlp_in')
    self.mlp_out = TokenDense(hidden_size, kernel_initializer='glorot_uniform',
                                      bias_initializer=mlp_bias, name='mlp_out')
    self.dropout = keras.layers.Dropout(dropout_rate)
    self.drop_path = DropPath(seed=seed, name='drop_path')

  def build(self, input_shape):
    self.norm1.build(input_shape)
    self.attention.build(input_shape)
    self.norm2.build(input_shape)
    self.mlp_in.build(input_shape)
    self.mlp_out.build(input_shape[:-1] + (self.mlp_dim,))

  def call(self, x, drop_path_rate: float = 0.0, training=None):
    y = self.attention(self.norm1(x), training=training)
    y = self.dropout(y, training=training)
    x = x + self.drop_path(y, rate=drop_path_rate, training=training)
    y = keras.activations.gelu(self.mlp_in(self.norm2(x)), approximate=True)
    y = self.dropout(y, training=training)
    y = self.dropout(self.mlp_out(y), training=training)
    return x + self.drop_path(y, rate=drop_path_rate, training=training)

  def get_config(self):
    return {**super().get_config(), 'hidden_size': self.hidden_size,
            'num_heads': self.num_heads, 'mlp_dim': self.mlp_dim,
            'dropout_rate': self.dropout_rate,
            'attention_dropout_rate': self.attention_dropout_rate,
            'layer_norm_epsilon': self.layer_norm_epsilon, 'seed': self.seed}


def drop_path_rates(task_rate: float, num_layers: int,
                    num_adapt_layers: int = 0) -> list[float]:
  """Per-layer stochastic-depth rates of layers 0 .. L-1, as the original PolyViT sets them.

  Each modality's adaptor stack (layers 0 .. L_adapt-1) ramps on its own: adaptor layer l
  gets l / max(L_adapt - 1, 1) * rate, so the last adaptor layer drops with the full rate
  (a single adaptor layer gets 0, the start of every ramp). A shared layer keeps its index
  in the full stack: layer l gets l / max(L - 1, 1) * rate. This is `get_droplayer_p` of
  scenic/projects/polyvit/layers.py, called by the tokenizers with their own number of
  layers and by the shared encoder with L (Appendix A: applied along both adaptor and
  shared layers). With L_adapt = 0 it is the ViT ramp l / (L - 1).
  """
  if not 0 <= num_adapt_layers <= num_layers:
    raise ValueError(f'num_adapt_layers {num_adapt_layers} must be in [0, {num_layers}].')

  def ramp(layer: int, depth: int) -> float:
    return task_rate * layer / max(depth - 1, 1)

  return ([ramp(l, num_adapt_layers) for l in range(num_adapt_layers)]
          + [ramp(l, num_layers) for l in range(num_adapt_layers, num_layers)])
