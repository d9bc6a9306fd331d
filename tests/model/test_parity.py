"""Numerical parity of each PolyViT modality path with Hugging Face reference models.

The same random weights are copied from PolyViT into HF `ViTForImageClassification` (image,
and audio as a ViT over the spectrogram's height, width and channels) and
`VivitForVideoClassification` (tubelets), configured with the paper's choices (tanh GELU,
LayerNorm eps 1e-6). Logits must agree to 1e-4 in float32.
"""

from __future__ import annotations

import keras
import ml_collections
import numpy as np
import pytest

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')

from polyvit_tf.configs import base  # noqa: E402
from polyvit_tf.model import PolyViT  # noqa: E402

TOLERANCE = 1e-4
D, LAYERS, HEADS, MLP = 64, 3, 4, 128


def _config(num_adapt_layers: int, audio_channels: int) -> ml_collections.ConfigDict:
  model = base.model_config('Ti', num_adapt_layers, hidden_size=D, num_layers=LAYERS,
                            num_heads=HEADS, mlp_dim=MLP)
  modalities = ml_collections.ConfigDict(dict(
      image=base.modality_config((32, 48), (8, 8), 3),
      audio=base.modality_config((64, 16), (16, 8), audio_channels),
      video=base.modality_config((4, 32, 32), (2, 8, 8), 3),
  ))
  kw = dict(train_steps=1, learning_rate=0.1, warmup_steps=0, batch_size=2)
  tasks = {'img': base.task_config('image', 7, **kw),
           'aud': base.task_config('audio', 5, multilabel=True, **kw),
           'vid': base.task_config('video', 6, **kw)}
  return base.assemble(model, modalities, tasks)


def _randomize(model: PolyViT, seed: int) -> None:
  """Random values for every weight (zero-initialised heads and CLS would hide errors)."""
  rng = np.random.default_rng(seed)
  for variables in model.parts().values():
    for v in variables:
      v.assign(rng.normal(0.0, 0.2, v.shape).astype('float32') + (1.0 if 'gamma' in v.path else 0.0))


def _t(x) -> 'torch.Tensor':
  return torch.from_numpy(np.asarray(x, dtype=np.float32))


def _hf_state_dict(model: PolyViT, task: str, prefix: str) -> dict:
  """PolyViT weights of `task`'s path in HF ViT / ViViT naming (torch layouts)."""
  mod = model.tasks[task].modality
  tok = model.tokenizers[mod]
  kernel = np.asarray(tok.kernel)  # (*patch, C, D) -> (D, C, *patch)
  rank = kernel.ndim - 2
  sd = {
      f'{prefix}.embeddings.cls_token': _t(tok.cls),
      f'{prefix}.embeddings.position_embeddings': _t(tok.pos_embedding),
      f'{prefix}.embeddings.patch_embeddings.projection.weight':
          _t(kernel.transpose((rank + 1, rank) + tuple(range(rank)))),
      f'{prefix}.embeddings.patch_embeddings.projection.bias': _t(tok.bias),
  }
  blocks = model.adaptors[mod] + model.shared_blocks
  for i, blk in enumerate(blocks):
    p = f'{prefix}.encoder.layer.{i}'
    dense = {'attention.attention.query': blk.attention.query,
             'attention.attention.key': blk.attention.key,
             'attention.attention.value': blk.attention.value,
             'attention.output.dense': blk.attention.out,
             'intermediate.dense': blk.mlp_in, 'output.dense': blk.mlp_out}
    for name, layer in dense.items():
      sd[f'{p}.{name}.weight'] = _t(np.asarray(layer.kernel).T)
      sd[f'{p}.{name}.bias'] = _t(layer.bias)
    for name, layer in {'layernorm_before': blk.norm1, 'layernorm_after': blk.norm2}.items():
      sd[f'{p}.{name}.weight'] = _t(layer.gamma)
      sd[f'{p}.{name}.bias'] = _t(layer.beta)
  sd[f'{prefix}.layernorm.weight'] = _t(model.encoder_norm.gamma)
  sd[f'{prefix}.layernorm.bias'] = _t(model.encoder_norm.beta)
  sd['classifier.weight'] = _t(np.asarray(model.heads[task].kernel).T)
  sd['classifier.bias'] = _t(model.heads[task].bias)
  return sd


def _hf_model(model: PolyViT, task: str):
  spec = model.modalities[model.tasks[task].modality]
  common = dict(hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                intermediate_size=MLP, hidden_act='gelu_pytorch_tanh', layer_norm_eps=1e-6,
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, qkv_bias=True,
                num_channels=spec.channels, num_labels=model.tasks[task].num_classes)
  if spec.name == 'video':
    frames, height, width = spec.input_size
    assert height == width, 'HF ViViT takes square frames'
    ref = transformers.VivitForVideoClassification(transformers.VivitConfig(
        image_size=height, num_frames=frames, tubelet_size=list(spec.patch_size), **common))
    prefix = 'vivit'
  else:
    ref = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=spec.input_size, patch_size=spec.patch_size, **common))
    prefix = 'vit'
  missing, unexpected = ref.load_state_dict(_hf_state_dict(model, task, prefix), strict=True)
  assert not missing and not unexpected
  return ref.eval()


def _hf_logits(ref, x: np.ndarray, modality: str) -> np.ndarray:
  # PolyViT is channels-last; HF takes (B, C, H, W) images and (B, T, C, H, W) videos.
  x = x.transpose(0, 1, 4, 2, 3) if modality == 'video' else x.transpose(0, 3, 1, 2)
  with torch.no_grad():
    return ref(pixel_values=_t(x)).logits.numpy()


@pytest.mark.parametrize('num_adapt_layers,audio_channels', [(0, 1), (1, 3)])
@pytest.mark.parametrize('task', ['img', 'aud', 'vid'])
def test_modality_path_matches_hugging_face(task, num_adapt_layers, audio_channels):
  model = PolyViT(_config(num_adapt_layers, audio_channels), seed=0)
  _randomize(model, seed=1)
  modality = model.tasks[task].modality
  x = np.random.default_rng(2).normal(size=(3,) + model.input_shape(task)).astype('float32')
  ours = np.asarray(model(task, x))
  theirs = _hf_logits(_hf_model(model, task), x, modality)
  err = float(np.max(np.abs(ours - theirs)))
  print(f'parity {task} ({modality}, L_adapt={num_adapt_layers}, '
        f'audio_channels={audio_channels}): max |logit diff| = {err:.2e}')
  assert ours.shape == theirs.shape == (3, model.tasks[task].num_classes)
  assert np.abs(theirs).max() > 0.1  # the comparison is not between near-zero logits
  assert err <= TOLERANCE


def test_adaptor_layers_are_per_modality_and_shared_layers_are_shared():
  model = PolyViT(_config(1, 1), seed=0)
  model.build_all()
  img_vars = {v.path for v in model.variables_for('img')}
  aud_vars = {v.path for v in model.variables_for('aud')}
  shared = img_vars & aud_vars
  assert all(p.startswith(('shared_block_', 'encoder_norm')) for p in shared)
  assert any(p.startswith('adaptor_image_block_0') for p in img_vars - aud_vars)
  assert any(p.startswith('adaptor_audio_block_0') for p in aud_vars - img_vars)
  keras.backend.clear_session()
