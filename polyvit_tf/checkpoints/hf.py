"""Reader of Hugging Face ViT weights (`ViTModel` / `ViTForImageClassification`), e.g. the
layout of `google/vit-base-patch16-224-in21k`.

`hf:<path>`: a directory (model.safetensors, model.safetensors.index.json, pytorch_model.bin
or pytorch_model.bin.index.json; config.json is read when present) or one weights file.
safetensors files are read with the `safetensors` package (no pickle at all); `.bin` files
only with `torch.load(weights_only=True)`, which refuses any pickled object that is not a
tensor or plain container, so loading cannot run code.

Keys (optionally under `vit.`): `embeddings.{cls_token, position_embeddings}`,
`embeddings.patch_embeddings.projection.{weight (D, C, h, w), bias}`,
`encoder.layer.<i>.{layernorm_before, attention.attention.{query,key,value},
attention.output.dense, layernorm_after, intermediate.dense, output.dense}.{weight,bias}`
(torch Linear weights are (out, in)), `layernorm`, optional `pooler.dense` (ViTModel; the
classifier does not use it) and `classifier` (ViTForImageClassification).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from polyvit_tf.checkpoints.canonical import CheckpointError
from polyvit_tf.checkpoints.canonical import KeyReader
from polyvit_tf.checkpoints.canonical import PretrainedViT
from polyvit_tf.checkpoints.canonical import TokenizerWeights
from polyvit_tf.checkpoints.canonical import split_posemb

FORMAT = 'hf'
_WEIGHT_FILES = ('model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin',
                 'pytorch_model.bin.index.json')
_LINEARS = (('attention.attention.query', 'attention/query'),
            ('attention.attention.key', 'attention/key'),
            ('attention.attention.value', 'attention/value'),
            ('attention.output.dense', 'attention/out'),
            ('intermediate.dense', 'mlp_in'),
            ('output.dense', 'mlp_out'))
_NORMS = (('layernorm_before', 'norm1'), ('layernorm_after', 'norm2'))


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  out = {}
  try:
    with safe_open(path, framework='np') as f:
      for key in f.keys():
        out[key] = f.get_tensor(key)
  except (TypeError, ValueError):  # e.g. bfloat16, which numpy lacks: go through torch
    with safe_open(path, framework='pt') as f:
      for key in f.keys():
        out[key] = f.get_tensor(key).float().numpy()
  return out


def _load_torch(path: str) -> dict[str, np.ndarray]:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise CheckpointError(f'{path}: reading .bin files needs torch; convert it to safetensors '
                          'or install torch.') from e
  try:
    # weights_only=True: only tensors and plain containers are unpickled; anything else
    # (classes, functions) is refused, so a malicious file cannot run code.
    state = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # pickle.UnpicklingError and friends
    raise CheckpointError(f'{path}: torch.load(weights_only=True) refused or failed to read '
                          f'the file ({type(e).__name__}: {e}).') from e
  if isinstance(state, dict) and not any(torch.is_tensor(v) for v in state.values()):
    for key in ('state_dict', 'model'):
      if isinstance(state.get(key), dict):
        state = state[key]
        break
  if not isinstance(state, dict):
    raise CheckpointError(f'{path}: expected a state dict, got {type(state).__name__}.')
  return {k: v.float().numpy() for k, v in state.items() if torch.is_tensor(v)}


def _load_file(path: str) -> dict[str, np.ndarray]:
  if path.endswith('.safetensors'):
    return _load_safetensors(path)
  if path.endswith('.index.json'):
    with open(path) as f:
      files = sorted(set(json.load(f)['weight_map'].values()))
    out: dict[str, np.ndarray] = {}
    for name in files:
      out.update(_load_file(os.path.join(os.path.dirname(path), name)))
    return out
  return _load_torch(path)


def load(path: str) -> tuple[dict[str, np.ndarray], dict, str]:
  """(arrays by key, config.json contents or {}, the weights file read)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no such file or directory.')
  config: dict = {}
  weights_file = path
  if os.path.isdir(path):
    found = [f for f in _WEIGHT_FILES if os.path.exists(os.path.join(path, f))]
    if not found:
      raise CheckpointError(f'{path}: none of {list(_WEIGHT_FILES)} in this directory.')
    weights_file = os.path.join(path, found[0])
    config_file = os.path.join(path, 'config.json')
    if os.path.exists(config_file):
      with open(config_file) as f:
        config = json.load(f)
  return _load_file(weights_file), config, weights_file


def read(path: str) -> PretrainedViT:
  """The ViT stored at `path` in canonical form."""
  arrays, config, weights_file = load(path)
  return from_arrays(arrays, config, f'{FORMAT}:{weights_file}')


def _grid(config: dict) -> tuple[int, int] | None:
  if 'image_size' not in config or 'patch_size' not in config:
    return None
  size, patch = config['image_size'], config['patch_size']
  size = (size, size) if isinstance(size, int) else tuple(size)
  patch = (patch, patch) if isinstance(patch, int) else tuple(patch)
  return size[0] // patch[0], size[1] // patch[1]


def from_arrays(arrays: dict[str, np.ndarray], config: dict, where: str) -> PretrainedViT:
  suffix = 'embeddings.patch_embeddings.projection.weight'
  prefixes = [k[:-len(suffix)] for k in arrays if k.endswith(suffix)]
  if len(prefixes) != 1:
    sample = ', '.join(sorted(arrays)[:8])
    raise CheckpointError(f'{where}: expected one key ending in {suffix!r}, found '
                          f'{len(prefixes)}; first keys: {sample}.')
  p = prefixes[0]
  reader = KeyReader(arrays, where)
  notes: list[str] = []
  weight = reader.take(p + suffix, (None, None, None, None))
  d = int(weight.shape[0])
  kernel = weight.transpose(2, 3, 1, 0)  # (D, C, h, w) -> (h, w, C, D)
  bias = reader.take(p + 'embeddings.patch_embeddings.projection.bias', (d,))
  cls = reader.take(p + 'embeddings.cls_token', (1, 1, d)).reshape(d)
  posemb = reader.take(p + 'embeddings.position_embeddings', (1, None, d))
  pattern = re.compile(re.escape(p) + r'encoder\.layer\.(\d+)\.')
  indices = {int(m.group(1)) for k in arrays for m in [pattern.match(k)] if m}
  depth = max(indices) + 1 if indices else 0
  if not depth:
    raise CheckpointError(f'{where}: no {p}encoder.layer.<i> keys.')
  qkv_bias = config.get('qkv_bias', True)
  mlp_dim = None
  blocks, origin = [], {}
  for i in range(depth):
    prefix = f'{p}encoder.layer.{i}.'
    block = {}
    for src, dst in _LINEARS:
      out_dim = d
      if dst == 'mlp_in':
        w = arrays.get(prefix + src + '.weight')
        mlp_dim = mlp_dim or (int(w.shape[0]) if w is not None else 4 * d)
        out_dim = mlp_dim
      in_dim = mlp_dim if dst == 'mlp_out' else d
      block[f'{dst}/kernel'] = reader.take(prefix + src + '.weight', (out_dim, in_dim)).T
      if not qkv_bias and dst.startswith('attention/') and dst != 'attention/out':
        block[f'{dst}/bias'] = np.zeros((d,), np.float32)
      else:
        block[f'{dst}/bias'] = reader.take(prefix + src + '.bias', (out_dim,))
    for src, dst in _NORMS:
      block[f'{dst}/gamma'] = reader.take(prefix + src + '.weight', (d,))
      block[f'{dst}/beta'] = reader.take(prefix + src + '.bias', (d,))
    blocks.append(block)
    origin[f'block_{i}'] = f'{p}encoder.layer.{i}'
  norm = {'gamma': reader.take(p + 'layernorm.weight', (d,)),
          'beta': reader.take(p + 'layernorm.bias', (d,))}
  head = None
  if reader.has('classifier.weight'):
    w = reader.take('classifier.weight', (None, d))
    head = {'kernel': w.T, 'bias': reader.take('classifier.bias', (w.shape[0],))}
  skipped = reader.finish()
  if any(k.startswith(p + 'pooler.') for k in skipped):
    notes.append('pooler (ViTModel pooler_output, tanh Dense) skipped: the classifier of '
                 'ViTForImageClassification and PolyViT heads use the CLS token directly.')
  posemb, grid, _ = split_posemb(posemb, _grid(config), where)
  if config.get('hidden_act', 'gelu_pytorch_tanh') not in ('gelu_pytorch_tanh', 'gelu_new'):
    notes.append(f"config.json hidden_act={config['hidden_act']!r}; PolyViT uses tanh-GELU "
                 '(as the original JAX ViT the Google checkpoints were trained with).')
  eps = config.get('layer_norm_eps')
  if eps is not None and abs(eps - 1e-6) > 1e-12:
    notes.append(f'config.json layer_norm_eps={eps}; PolyViT uses model.layer_norm_epsilon '
                 '(1e-6 by default).')
  origin.update(kernel=p + 'embeddings.patch_embeddings.projection.weight',
                bias=p + 'embeddings.patch_embeddings.projection.bias',
                cls=p + 'embeddings.cls_token', posemb=p + 'embeddings.position_embeddings',
                encoder_norm=p + 'layernorm', head='classifier')
  return PretrainedViT(
      source=where, tokenizer=TokenizerWeights(kernel, bias, cls, posemb, grid),
      blocks=blocks, encoder_norm=norm, head=head, pre_logits=None,
      num_heads=config.get('num_attention_heads'), origin=origin, skipped=skipped, notes=notes)
