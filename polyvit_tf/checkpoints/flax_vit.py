"""Reading a Flax ViT stored as a flat `.npz` ({'a/b/c': array}): shared by vit_npz and
big_vision_npz, which differ only in module names and where the position embedding lives.

Flax layouts: Dense kernels (in, out); attention query/key/value kernels (D, heads, D/heads)
with biases (heads, D/heads); the attention output kernel (heads, D/heads, D); LayerNorm
`scale`/`bias`; the patch embedding a Conv kernel (h, w, C, D).
"""

from __future__ import annotations

import dataclasses
import io
import re

import numpy as np
import tensorflow as tf

from polyvit_tf.checkpoints.canonical import CheckpointError
from polyvit_tf.checkpoints.canonical import KeyReader


@dataclasses.dataclass(frozen=True)
class BlockNames:
  """Module names inside one Flax encoder block."""
  norm1: str
  attention: str
  norm2: str
  mlp: str


def load_npz(path: str) -> dict[str, np.ndarray]:
  """Every array of an `.npz` file (any TF filesystem path), never unpickling.

  `allow_pickle=False`: a file holding Python objects is refused, not executed."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'{path}: no such checkpoint file.')
  if '://' in path:  # gs:// and other TF filesystems: read into memory first
    with tf.io.gfile.GFile(path, 'rb') as f:
      source = io.BytesIO(f.read())
  else:
    source = path
  try:
    with np.load(source, allow_pickle=False) as npz:
      return {key: npz[key] for key in npz.files}
  except ValueError as e:  # object arrays need pickle
    raise CheckpointError(f'{path}: cannot be read without unpickling ({e}); refusing.') from e
  except (OSError, EOFError) as e:
    raise CheckpointError(f'{path}: not a readable .npz file ({e}).') from e


def find_prefix(arrays: dict[str, np.ndarray], suffix: str, where: str) -> str:
  """The key prefix (e.g. '', 'params/', 'params/img/') of the key ending in `suffix`."""
  prefixes = sorted(k[:-len(suffix)] for k in arrays
                    if k.endswith(suffix) and (k == suffix or k[-len(suffix) - 1] == '/'))
  prefixes = [p for p in prefixes if 'Transformer/' not in p]
  if not prefixes:
    sample = ', '.join(sorted(arrays)[:8])
    raise CheckpointError(f'{where}: no key ending in {suffix!r}; is this a ViT checkpoint '
                          f'of this format? First keys: {sample}.')
  if len(prefixes) > 1:  # e.g. optimizer state mirrors the parameter tree under opt/...
    params = [p for p in prefixes if p.startswith('params/')]
    prefixes = params if len(params) == 1 else prefixes
  if len(prefixes) > 1:
    raise CheckpointError(f'{where}: several ViTs in one file (prefixes {prefixes}); '
                          'extract one first.')
  return prefixes[0]


def unstack_scanned(arrays: dict[str, np.ndarray], scanned: str, per_layer: str,
                    notes: list[str]) -> dict[str, np.ndarray]:
  """Splits `<scanned>/...` arrays (layers stacked on axis 0, Flax `nn.scan`) into
  `<per_layer>_<i>/...` keys."""
  stacked = {k: v for k, v in arrays.items() if k.startswith(scanned + '/')}
  if not stacked:
    return arrays
  depth = {v.shape[0] for v in stacked.values()}
  if len(depth) != 1:
    raise CheckpointError(f'scanned layers {scanned}: inconsistent depth axes {sorted(depth)}.')
  out = {k: v for k, v in arrays.items() if k not in stacked}
  for key, value in stacked.items():
    rest = key[len(scanned):]
    for i in range(value.shape[0]):
      out[f'{per_layer}_{i}{rest}'] = value[i]
  notes.append(f'{scanned}: {depth.pop()} scanned layers unstacked into {per_layer}_<i>.')
  return out


def count_blocks(arrays: dict[str, np.ndarray], block_prefix: str) -> int:
  pattern = re.compile(re.escape(block_prefix) + r'_(\d+)/')
  found = {int(m.group(1)) for k in arrays for m in [pattern.match(k)] if m}
  if not found:
    raise CheckpointError(f'no encoder blocks named {block_prefix}_<i>/ found.')
  depth = max(found) + 1
  gaps = sorted(set(range(depth)) - found)
  if gaps:
    raise CheckpointError(f'encoder blocks {[f"{block_prefix}_{i}" for i in gaps]} missing.')
  return depth


def read_patch_embedding(reader: KeyReader, p: str, notes: list[str]
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
  """(kernel, bias, CLS embedding, width) of a Flax ViT's patch embedding; a model without
  a class token (GAP or MAP pooling) gets a zero CLS embedding and a note saying so."""
  kernel = reader.take(p + 'embedding/kernel', (None, None, None, None))
  d = int(kernel.shape[-1])
  bias = reader.take(p + 'embedding/bias', (d,))
  if reader.has(p + 'cls'):
    return kernel, bias, reader.take(p + 'cls', (1, 1, d)).reshape(d), d
  notes.append('no class token in the checkpoint (GAP or MAP pooling): every CLS token '
               'starts at 0.')
  return kernel, bias, np.zeros((d,), np.float32), d


def read_block(reader: KeyReader, prefix: str, names: BlockNames, d: int,
               heads: int | None, mlp_dim: int | None) -> tuple[dict[str, np.ndarray], int, int]:
  """One block in canonical naming, plus (heads, mlp_dim) as found in its shapes."""
  att = f'{prefix}{names.attention}/'
  if heads is None:
    q = reader.arrays.get(att + 'query/kernel')
    heads = int(q.shape[1]) if q is not None and q.ndim == 3 else 1
  hd = d // heads
  if heads * hd != d:
    reader.mismatched.append(f'{att}query/kernel: {heads} heads do not divide D={d}')
  block = {}
  for src, dst in (('query', 'query'), ('key', 'key'), ('value', 'value')):
    kernel = reader.take(f'{att}{src}/kernel', (d, heads, hd))
    block[f'attention/{dst}/kernel'] = kernel.reshape(d, -1)
    block[f'attention/{dst}/bias'] = reader.take(f'{att}{src}/bias', (heads, hd)).reshape(-1)
  block['attention/out/kernel'] = reader.take(f'{att}out/kernel', (heads, hd, d)).reshape(-1, d)
  block['attention/out/bias'] = reader.take(f'{att}out/bias', (d,))
  for src, dst in ((names.norm1, 'norm1'), (names.norm2, 'norm2')):
    block[f'{dst}/gamma'] = reader.take(f'{prefix}{src}/scale', (d,))
    block[f'{dst}/beta'] = reader.take(f'{prefix}{src}/bias', (d,))
  mlp = f'{prefix}{names.mlp}/'
  if mlp_dim is None:
    k = reader.arrays.get(mlp + 'Dense_0/kernel')
    mlp_dim = int(k.shape[-1]) if k is not None else 4 * d
  block['mlp_in/kernel'] = reader.take(mlp + 'Dense_0/kernel', (d, mlp_dim))
  block['mlp_in/bias'] = reader.take(mlp + 'Dense_0/bias', (mlp_dim,))
  block['mlp_out/kernel'] = reader.take(mlp + 'Dense_1/kernel', (mlp_dim, d))
  block['mlp_out/bias'] = reader.take(mlp + 'Dense_1/bias', (d,))
  return block, heads, mlp_dim


def read_dense(reader: KeyReader, prefix: str, d: int) -> dict[str, np.ndarray]:
  """A Dense layer {'kernel' (D, C), 'bias' (C,)} whose input size is D."""
  kernel = reader.arrays.get(prefix + 'kernel')
  out = int(kernel.shape[-1]) if kernel is not None else 1
  return {'kernel': reader.take(prefix + 'kernel', (d, out)),
          'bias': reader.take(prefix + 'bias', (out,))}


@dataclasses.dataclass
class Encoder:
  """The encoder part of a Flax ViT: blocks, final norm, optional pre-logits and head."""
  blocks: list
  num_heads: int | None
  encoder_norm: dict[str, np.ndarray]
  pre_logits: dict[str, np.ndarray] | None
  head: dict[str, np.ndarray] | None
  origin: dict[str, str]  # canonical part -> checkpoint key (prefix)


def read_encoder(arrays: dict[str, np.ndarray], reader: KeyReader, p: str, names: BlockNames,
                 d: int) -> Encoder:
  """Reads `<p>Transformer/encoderblock_<i>`, `encoder_norm`, `pre_logits` and `head`."""
  blocks, heads, mlp_dim, origin = [], None, None, {}
  for i in range(count_blocks(arrays, p + 'Transformer/encoderblock')):
    block, heads, mlp_dim = read_block(
        reader, f'{p}Transformer/encoderblock_{i}/', names, d, heads, mlp_dim)
    blocks.append(block)
    origin[f'block_{i}'] = f'{p}Transformer/encoderblock_{i}'
  norm = {'gamma': reader.take(p + 'Transformer/encoder_norm/scale', (d,)),
          'beta': reader.take(p + 'Transformer/encoder_norm/bias', (d,))}
  pre_logits = (read_dense(reader, p + 'pre_logits/', d)
                if reader.has(p + 'pre_logits/kernel') else None)
  head_in = d if pre_logits is None else int(pre_logits['kernel'].shape[1])
  head = read_dense(reader, p + 'head/', head_in) if reader.has(p + 'head/kernel') else None
  origin.update(encoder_norm=p + 'Transformer/encoder_norm', head=p + 'head',
                pre_logits=p + 'pre_logits')
  return Encoder(blocks, heads, norm, pre_logits, head, origin)
