"""The format-independent intermediate every checkpoint reader returns: a "2D ViT".

Arrays are numpy, channels last, in this project's naming: a block is a dict with the keys of
`BLOCK_KEYS` (the Keras paths of an EncoderBlock's weights, e.g. 'attention/query/kernel'
(D, D)); the patch embedding is (h, w, C, D); the position embedding is (N + 1, D) with the
CLS slot first (zeros when the source adds no position embedding to its class token).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Mapping

import numpy as np

# The weights of one encoder block, as polyvit_tf.model.encoder.EncoderBlock names them.
BLOCK_KEYS = (
    'norm1/gamma', 'norm1/beta',
    'attention/query/kernel', 'attention/query/bias',
    'attention/key/kernel', 'attention/key/bias',
    'attention/value/kernel', 'attention/value/bias',
    'attention/out/kernel', 'attention/out/bias',
    'norm2/gamma', 'norm2/beta',
    'mlp_in/kernel', 'mlp_in/bias',
    'mlp_out/kernel', 'mlp_out/bias',
)


class CheckpointError(ValueError):
  """A checkpoint cannot be read or mapped; the message lists every offending key."""


@dataclasses.dataclass
class TokenizerWeights:
  """One tokenizer: kernel (*patch, C, D), bias (D,), cls (D,), posemb (N + 1, D) on `grid`."""
  kernel: np.ndarray
  bias: np.ndarray
  cls: np.ndarray
  posemb: np.ndarray
  grid: tuple[int, ...]

  def __post_init__(self):
    self.grid = tuple(int(g) for g in self.grid)
    d = self.kernel.shape[-1]
    expected = {'bias': (d,), 'cls': (d,), 'posemb': (math.prod(self.grid) + 1, d)}
    bad = [f'{k}: {np.shape(getattr(self, k))} vs {v}' for k, v in expected.items()
           if tuple(np.shape(getattr(self, k))) != v]
    if len(self.grid) != self.kernel.ndim - 2:
      bad.append(f'grid {self.grid} has not the rank of patch {self.patch_size}')
    if bad:
      raise CheckpointError('inconsistent tokenizer weights: ' + '; '.join(bad))

  @property
  def patch_size(self) -> tuple[int, ...]:
    return tuple(self.kernel.shape[:-2])

  @property
  def channels(self) -> int:
    return int(self.kernel.shape[-2])

  @property
  def hidden_size(self) -> int:
    return int(self.kernel.shape[-1])

  @classmethod
  def from_layer(cls, layer) -> 'TokenizerWeights':
    """The weights of a polyvit_tf.model.tokenizer.Tokenizer layer."""
    return cls(kernel=np.asarray(layer.kernel), bias=np.asarray(layer.bias),
               cls=np.asarray(layer.cls).reshape(-1),
               posemb=np.asarray(layer.pos_embedding)[0], grid=layer.grid)

  def as_variables(self, layer_name: str) -> dict[str, np.ndarray]:
    """{Keras variable path: value} for the Tokenizer layer called `layer_name`."""
    d = self.hidden_size
    return {f'{layer_name}/kernel': self.kernel, f'{layer_name}/bias': self.bias,
            f'{layer_name}/cls': self.cls.reshape(1, 1, d),
            f'{layer_name}/pos_embedding': self.posemb[None]}


@dataclasses.dataclass
class PretrainedViT:
  """A pretrained 2D ViT in canonical form, plus what its reader skipped and noticed.

  `origin` names, for the load report, the source key(s) of each canonical item:
  'kernel', 'bias', 'cls', 'posemb', 'block_<i>', 'encoder_norm', 'head'.
  """
  source: str
  tokenizer: TokenizerWeights
  blocks: list[dict[str, np.ndarray]]
  encoder_norm: dict[str, np.ndarray]  # {'gamma', 'beta'}
  head: dict[str, np.ndarray] | None = None  # {'kernel' (D, C), 'bias' (C,)}
  pre_logits: dict[str, np.ndarray] | None = None
  num_heads: int | None = None  # None when the format does not say
  origin: dict[str, str] = dataclasses.field(default_factory=dict)
  skipped: list[str] = dataclasses.field(default_factory=list)
  notes: list[str] = dataclasses.field(default_factory=list)

  @property
  def hidden_size(self) -> int:
    return self.tokenizer.hidden_size

  @property
  def num_layers(self) -> int:
    return len(self.blocks)

  @property
  def mlp_dim(self) -> int:
    return int(self.blocks[0]['mlp_in/kernel'].shape[1]) if self.blocks else 0

  @property
  def num_classes(self) -> int | None:
    return None if self.head is None else int(self.head['kernel'].shape[1])

  def summary(self) -> str:
    heads = self.num_heads if self.num_heads is not None else '?'
    return (f'2D ViT: D={self.hidden_size} L={self.num_layers} heads={heads} '
            f'mlp={self.mlp_dim} patch={self.tokenizer.patch_size} '
            f'grid={self.tokenizer.grid} head classes={self.num_classes} '
            f'pre_logits={"yes" if self.pre_logits is not None else "no"}')


class KeyReader:
  """Takes arrays out of a flat {key: array} checkpoint, remembering what was used.

  Readers call `take` for every key they need; missing keys and shape mismatches are
  collected and raised together by `finish`, which also returns the unused (skipped) keys.
  """

  def __init__(self, arrays: Mapping[str, np.ndarray], where: str):
    self.arrays = arrays
    self.where = where
    self.used: set[str] = set()
    self.missing: list[str] = []
    self.mismatched: list[str] = []

  def has(self, key: str) -> bool:
    return key in self.arrays

  def take(self, key: str, shape: Iterable[int | None] | None = None) -> np.ndarray:
    """The array at `key` (float32), checked against `shape` (None entries match anything).

    A missing key or a wrong shape is recorded and a zero placeholder returned, so every
    problem is found in one pass."""
    if key not in self.arrays:
      self.missing.append(key)
      return np.zeros([s or 1 for s in shape] if shape is not None else (1,), np.float32)
    self.used.add(key)
    value = self.arrays[key]
    if shape is not None:
      shape = tuple(shape)
      if len(value.shape) != len(shape) or any(
          s is not None and s != v for s, v in zip(shape, value.shape)):
        wanted = tuple('?' if s is None else s for s in shape)
        self.mismatched.append(f'{key}: {tuple(value.shape)}, expected {wanted}')
    return np.asarray(value, dtype=np.float32)

  def finish(self) -> list[str]:
    """Raises CheckpointError listing missing / mismatched keys; returns the unused keys."""
    problems = []
    if self.missing:
      problems.append(f'missing keys: {", ".join(self.missing)}')
    if self.mismatched:
      problems.append(f'shape mismatches: {"; ".join(self.mismatched)}')
    if problems:
      raise CheckpointError(f'{self.where}: ' + '. '.join(problems))
    return sorted(k for k in self.arrays if k not in self.used)


def square_grid(num_patches: int, where: str) -> tuple[int, int]:
  """(s, s) for a square number of patches; formats without an image size assume squares."""
  side = int(round(math.sqrt(num_patches)))
  if side * side != num_patches:
    raise CheckpointError(
        f'{where}: {num_patches} position embeddings are not a square grid; this format does '
        'not record the image size, so only square grids can be read.')
  return side, side


def split_posemb(posemb: np.ndarray, grid_or_none: tuple[int, ...] | None,
                 where: str) -> tuple[np.ndarray, tuple[int, ...], bool]:
  """(posemb with a CLS slot (N + 1, D), grid, whether the source had a CLS slot).

  A table of N = s * s entries has no CLS slot (big_vision adds position embeddings before it
  prepends the class token), one of s * s + 1 entries has one (the original ViT). The added
  CLS slot is zero, which reproduces the source model exactly."""
  posemb = np.asarray(posemb, np.float32).reshape(-1, posemb.shape[-1])
  n = posemb.shape[0]
  if grid_or_none is not None:
    num_patches = math.prod(grid_or_none)
    if n not in (num_patches, num_patches + 1):
      raise CheckpointError(f'{where}: {n} position embeddings for a {grid_or_none} grid.')
    has_cls = n == num_patches + 1
    grid = tuple(grid_or_none)
  else:
    side = int(round(math.sqrt(n)))
    has_cls = side * side != n
    grid = square_grid(n - 1 if has_cls else n, where)
  if not has_cls:
    posemb = np.concatenate([np.zeros_like(posemb[:1]), posemb], axis=0)
  return posemb, grid, has_cls
