"""Reader of the original Google ViT `.npz` (google-research/vision_transformer, AugReg).

Keys: `embedding/{kernel,bias}`, `cls`, `Transformer/posembed_input/pos_embedding`
(1, N + 1, D), `Transformer/encoderblock_<i>/{LayerNorm_0, MultiHeadDotProductAttention_1,
LayerNorm_2, MlpBlock_3/Dense_{0,1}}`, `Transformer/encoder_norm`, optional `pre_logits`
and `head`. A leading prefix (e.g. `params/`) is detected and allowed.
"""

from __future__ import annotations

import numpy as np

from polyvit_tf.checkpoints import flax_vit
from polyvit_tf.checkpoints.canonical import KeyReader
from polyvit_tf.checkpoints.canonical import PretrainedViT
from polyvit_tf.checkpoints.canonical import TokenizerWeights
from polyvit_tf.checkpoints.canonical import split_posemb

FORMAT = 'vit_npz'
NAMES = flax_vit.BlockNames(norm1='LayerNorm_0', attention='MultiHeadDotProductAttention_1',
                            norm2='LayerNorm_2', mlp='MlpBlock_3')


def read(path: str) -> PretrainedViT:
  """The ViT stored at `path` in canonical form (never unpickles)."""
  where = f'{FORMAT}:{path}'
  arrays = flax_vit.load_npz(path)
  return from_arrays(arrays, where)


def from_arrays(arrays: dict[str, np.ndarray], where: str) -> PretrainedViT:
  p = flax_vit.find_prefix(arrays, 'embedding/kernel', where)
  reader = KeyReader(arrays, where)
  notes: list[str] = []
  kernel, bias, cls, d = flax_vit.read_patch_embedding(reader, p, notes)
  posemb_key = p + 'Transformer/posembed_input/pos_embedding'
  posemb = reader.take(posemb_key, (1, None, d))
  encoder = flax_vit.read_encoder(arrays, reader, p, NAMES, d)
  skipped = reader.finish()
  posemb, grid, has_cls = split_posemb(posemb, None, where)
  if not has_cls:
    notes.append('position embeddings cover the patches only: the CLS slot starts at 0.')
  origin = dict(encoder.origin, kernel=p + 'embedding/kernel', bias=p + 'embedding/bias',
                cls=p + 'cls', posemb=posemb_key)
  return PretrainedViT(
      source=where, tokenizer=TokenizerWeights(kernel, bias, cls, posemb, grid),
      blocks=encoder.blocks, encoder_norm=encoder.encoder_norm, head=encoder.head,
      pre_logits=encoder.pre_logits, num_heads=encoder.num_heads, origin=origin,
      skipped=skipped, notes=notes)
