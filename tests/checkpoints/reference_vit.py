"""Test fixtures: random Flax-layout ViTs written in each checkpoint format's exact key naming,
and an independent numpy forward pass of such a ViT (the reference the readers are checked
against).

The numpy forward follows the original ViT definition (vision_transformer / big_vision
models/vit.py): patch Conv as a matmul over flattened patches, [cls] prepended, position
embeddings added (after the class token is prepended when the table has N + 1 entries; before,
big_vision-style, when it has N), pre-LN blocks with LayerNorm eps 1e-6, multi-head attention
computed from the (D, heads, head_dim) Flax kernels, tanh-GELU MLP, final LayerNorm, the class
token, optional tanh pre-logits, the head.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-6


def random_vit(seed: int, *, d: int = 32, layers: int = 2, heads: int = 2, mlp: int = 64,
               patch: tuple[int, int] = (8, 8), grid: tuple[int, int] = (4, 4),
               channels: int = 3, classes: int | None = 7, pre_logits: int | None = None,
               cls: bool = True, posemb_cls: bool = True) -> dict:
  """A ViT's parameters in Flax layouts (nested dicts), every value random (no zeros/ones)."""
  rng = np.random.default_rng(seed)
  hd = d // heads

  def n(*shape, scale=0.2, mean=0.0):
    return (mean + scale * rng.normal(size=shape)).astype(np.float32)

  def dense(i, o):
    return {'kernel': n(i, o, scale=1 / math.sqrt(i)), 'bias': n(o, scale=0.05)}

  def norm():
    return {'scale': n(d, scale=0.1, mean=1.0), 'bias': n(d, scale=0.1)}

  num = grid[0] * grid[1] + (1 if (cls and posemb_cls) else 0)
  p = {'embedding': {'kernel': n(*patch, channels, d, scale=0.1), 'bias': n(d, scale=0.1)},
       'posemb': n(1, num, d, scale=0.1), 'blocks': [], 'encoder_norm': norm()}
  if cls:
    p['cls'] = n(1, 1, d, scale=0.5)
  for _ in range(layers):
    att = {k: {'kernel': n(d, heads, hd, scale=1 / math.sqrt(d)), 'bias': n(heads, hd, scale=0.05)}
           for k in ('query', 'key', 'value')}
    att['out'] = {'kernel': n(heads, hd, d, scale=1 / math.sqrt(d)), 'bias': n(d, scale=0.05)}
    p['blocks'].append({'ln1': norm(), 'att': att, 'ln2': norm(),
                        'mlp': {'Dense_0': dense(d, mlp), 'Dense_1': dense(mlp, d)}})
  if pre_logits:
    p['pre_logits'] = dense(d, pre_logits)
  if classes:
    p['head'] = dense(pre_logits or d, classes)
  return p


def _flat(prefix: str, tree: dict, out: dict) -> None:
  for k, v in tree.items():
    if isinstance(v, dict):
      _flat(f'{prefix}{k}/', v, out)
    else:
      out[prefix + k] = v


def vit_npz_arrays(p: dict) -> dict[str, np.ndarray]:
  """Keys exactly as google-research/vision_transformer (and AugReg) .npz files name them."""
  out: dict[str, np.ndarray] = {}
  _flat('embedding/', p['embedding'], out)
  if 'cls' in p:
    out['cls'] = p['cls']
  out['Transformer/posembed_input/pos_embedding'] = p['posemb']
  for i, b in enumerate(p['blocks']):
    pre = f'Transformer/encoderblock_{i}/'
    _flat(pre + 'LayerNorm_0/', b['ln1'], out)
    _flat(pre + 'MultiHeadDotProductAttention_1/', b['att'], out)
    _flat(pre + 'LayerNorm_2/', b['ln2'], out)
    _flat(pre + 'MlpBlock_3/', b['mlp'], out)
  _flat('Transformer/encoder_norm/', p['encoder_norm'], out)
  for k in ('pre_logits', 'head'):
    if k in p:
      _flat(f'{k}/', p[k], out)
  return out


def big_vision_arrays(p: dict, *, scan: bool = False,
                      prefix: str = 'params/') -> dict[str, np.ndarray]:
  """Keys as big_vision's models/vit.py checkpoints name them (optionally `scan`ned)."""
  out: dict[str, np.ndarray] = {}
  _flat(prefix + 'embedding/', p['embedding'], out)
  if 'cls' in p:
    out[prefix + 'cls'] = p['cls']
  out[prefix + 'pos_embedding'] = p['posemb']
  blocks = {}
  for i, b in enumerate(p['blocks']):
    flat: dict[str, np.ndarray] = {}
    _flat('LayerNorm_0/', b['ln1'], flat)
    _flat('MultiHeadDotProductAttention_0/', b['att'], flat)
    _flat('LayerNorm_1/', b['ln2'], flat)
    _flat('MlpBlock_0/', b['mlp'], flat)
    blocks[i] = flat
  if scan:
    for key in blocks[0]:
      out[f'{prefix}Transformer/encoderblock/{key}'] = np.stack(
          [blocks[i][key] for i in range(len(blocks))])
  else:
    for i, flat in blocks.items():
      out.update({f'{prefix}Transformer/encoderblock_{i}/{k}': v for k, v in flat.items()})
  _flat(prefix + 'Transformer/encoder_norm/', p['encoder_norm'], out)
  for k in ('pre_logits', 'head'):
    if k in p:
      _flat(f'{prefix}{k}/', p[k], out)
  # big_vision training checkpoints also hold optimizer state, mirroring the parameters.
  out['opt/mu/embedding/kernel'] = np.zeros_like(p['embedding']['kernel'])
  return out


def _layer_norm(x, scale, bias):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + EPS) * scale + bias


def _gelu_tanh(x):
  return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(p: dict, images: np.ndarray) -> np.ndarray:
  """Logits (or pre-head features when the ViT has no head) of `images` (B, H, W, C)."""
  x = images.astype(np.float64)
  kernel = p['embedding']['kernel'].astype(np.float64)
  ph, pw, c, d = kernel.shape
  b, h, w, _ = x.shape
  gh, gw = h // ph, w // pw
  patches = x[:, :gh * ph, :gw * pw].reshape(b, gh, ph, gw, pw, c).transpose(0, 1, 3, 2, 4, 5)
  tokens = patches.reshape(b, gh * gw, ph * pw * c) @ kernel.reshape(-1, d)
  tokens = tokens + p['embedding']['bias']
  posemb = p['posemb'][0].astype(np.float64)
  if posemb.shape[0] == gh * gw:  # big_vision: posemb before the class token
    tokens = tokens + posemb
  if 'cls' in p:
    tokens = np.concatenate([np.broadcast_to(p['cls'], (b, 1, d)), tokens], axis=1)
  if posemb.shape[0] == tokens.shape[1] and posemb.shape[0] != gh * gw:
    tokens = tokens + posemb
  for blk in p['blocks']:
    y = _layer_norm(tokens, blk['ln1']['scale'], blk['ln1']['bias'])
    att = blk['att']
    q, k, v = (np.einsum('bnd,dhk->bhnk', y, att[n]['kernel']) + att[n]['bias'][None, :, None]
               for n in ('query', 'key', 'value'))
    logits = np.einsum('bhnk,bhmk->bhnm', q, k) / math.sqrt(q.shape[-1])
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    y = np.einsum('bhnm,bhmk->bnhk', weights, v)
    tokens = tokens + np.einsum('bnhk,hkd->bnd', y, att['out']['kernel']) + att['out']['bias']
    y = _layer_norm(tokens, blk['ln2']['scale'], blk['ln2']['bias'])
    y = _gelu_tanh(y @ blk['mlp']['Dense_0']['kernel'] + blk['mlp']['Dense_0']['bias'])
    tokens = tokens + y @ blk['mlp']['Dense_1']['kernel'] + blk['mlp']['Dense_1']['bias']
  tokens = _layer_norm(tokens, p['encoder_norm']['scale'], p['encoder_norm']['bias'])
  x = tokens[:, 0]
  if 'pre_logits' in p:
    x = np.tanh(x @ p['pre_logits']['kernel'] + p['pre_logits']['bias'])
  if 'head' in p:
    x = x @ p['head']['kernel'] + p['head']['bias']
  return x
