"""Reader of big_vision ViT `.npz` checkpoints (google-research/big_vision, models/vit.py).

Keys under `params/` (or `params/img/` for the image tower of a two-tower model): `embedding/
{kernel,bias}`, `pos_embedding` (1, N, D): added to the patches BEFORE the class token is
prepended, so it has no CLS entry), `cls` (only for pool_type 'tok'),
`Transformer/encoderblock_<i>/{LayerNorm_0, MultiHeadDotProductAttention_0, LayerNorm_1,
MlpBlock_0/Dense_{0,1}}` or, with `scan=True`, `Transformer/encoderblock/...` stacked on a
leading layer axis; `Transformer/encoder_norm`; optional `pre_logits`, `head`, `MAPHead_0`.
Optimizer state (`opt/...`) and anything else is reported as skipped.
"""

from __future__ import annotations

import numpy as np

from polyvit_tf.checkpoints import flax_vit
from polyvit_tf.checkpoints.canonical import KeyReader
from polyvit_tf.checkpoints.canonical import PretrainedViT
from polyvit_tf.checkpoints.canonical import TokenizerWeights
from polyvit_tf.checkpoints.canonical import split_posemb

FORMAT = 'big_vision_npz'
NAMES = flax_vit.BlockNames(norm1='LayerNorm_0', attention='MultiHeadDotProductAttention_0',
                            norm2='LayerNorm_1', mlp='MlpBlock_0')


def read(path: str) -> PretrainedViT:
  """The ViT stored at `path` in canonical form (never unpickles)."""
  where = f'{FORMAT}:{path}'
  return from_arrays(flax_vit.load_npz(path), where)


def from_arrays(arrays: dict[str, np.ndarray], where: str) -> PretrainedViT:
  p = flax_vit.find_prefix(arrays, 'embedding/kernel', where)
  notes: list[str] = []
  arrays = flax_vit.unstack_scanned(arrays, f'{p}Transformer/encoderblock',
                                    f'{p}Transformer/encoderblock', notes)
  reader = KeyReader(arrays, where)
  kernel, bias, cls, d = flax_vit.read_patch_embedding(reader, p, notes)
  # Checkpoints from before 2022 kept the position embedding in the encoder.
  posemb_key = next((p + k for k in ('pos_embedding', 'Transformer/pos_embedding',
                                     'Transformer/posembed_input/pos_embedding')
                     if reader.has(p + k)), p + 'pos_embedding')
  if not reader.has(posemb_key):
    notes.append('no stored position embedding: sincos2d position embeddings are not '
                 'supported (they are computed, not stored).')
  posemb = reader.take(posemb_key, (1, None, d))
  encoder = flax_vit.read_encoder(arrays, reader, p, NAMES, d)
  skipped = reader.finish()
  if any(k.startswith(p + 'MAPHead_0/') for k in skipped):
    notes.append('the checkpoint pools with a MAP head, which PolyViT does not have (skipped); '
                 'its `head` was trained on MAP features.')
  posemb, grid, has_cls = split_posemb(posemb, None, where)
  if not has_cls:
    notes.append('position embeddings cover the patches only (big_vision adds them before '
                 'prepending the class token): every CLS slot starts at 0, which is the same '
                 'model.')
  origin = dict(encoder.origin, kernel=p + 'embedding/kernel', bias=p + 'embedding/bias',
                cls=p + 'cls', posemb=posemb_key)
  return PretrainedViT(
      source=where, tokenizer=TokenizerWeights(kernel, bias, cls, posemb, grid),
      blocks=encoder.blocks, encoder_norm=encoder.encoder_norm, head=encoder.head,
      pre_logits=encoder.pre_logits, num_heads=encoder.num_heads, origin=origin,
      skipped=skipped, notes=notes)
