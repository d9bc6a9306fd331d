"""Round trip per checkpoint format: a random ViT written in that format's exact key naming is
read and mapped into PolyViT, whose image path must reproduce the source model's logits at the
source resolution (vit_npz, big_vision_npz: against an independent numpy ViT forward; hf:
against Hugging Face's own ViT forward). Failure paths: missing keys, shape mismatches, pickles.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from polyvit_tf import checkpoints
from polyvit_tf.checkpoints import CheckpointError
from polyvit_tf.checkpoints import hf
from polyvit_tf.model import PolyViT
from polyvit_tf.configs.errors import ConfigError
from tests.checkpoints import reference_vit
from tests.checkpoints import small

TOLERANCE = 1e-4


def _images(n: int = 3, size=(32, 32)) -> np.ndarray:
  return np.random.default_rng(5).normal(size=(n,) + tuple(size) + (3,)).astype('float32')


def _check_parity(model: PolyViT, expected: np.ndarray, x: np.ndarray, label: str) -> None:
  ours = np.asarray(model('img', x))
  err = float(np.abs(ours - expected).max())
  print(f'parity {label}: max |logit diff| = {err:.2e} (max |logit| {np.abs(expected).max():.2f})')
  assert ours.shape == expected.shape
  assert np.abs(expected).max() > 0.5  # not a comparison of near-zero numbers
  assert err <= TOLERANCE


@pytest.mark.parametrize('num_adapt_layers', [0, 1])
def test_vit_npz_round_trip_matches_reference_forward(tmp_path, num_adapt_layers):
  params = reference_vit.random_vit(0)
  path = tmp_path / 'ViT-tiny.npz'
  np.savez(path, **reference_vit.vit_npz_arrays(params))
  config = small.config(num_adapt_layers=num_adapt_layers, head_task='img',
                        source=f'vit_npz:{path}')
  model = PolyViT(config, seed=0)
  report = checkpoints.initialise_from_config(model, config)
  x = _images()
  _check_parity(model, reference_vit.forward(params, x), x, f'vit_npz L_adapt={num_adapt_layers}')
  assert report.action_of('head_img') == 'loaded'
  assert report.action_of('head_aud') == 'fresh' and 'head_aud/kernel' in report.missing
  if num_adapt_layers:
    assert report.action_of('adaptor_{image,audio,video}_block_0') == 'loaded'
    np.testing.assert_array_equal(np.asarray(model.adaptors['audio'][0].mlp_in.kernel),
                                  params['blocks'][0]['mlp']['Dense_0']['kernel'])


@pytest.mark.parametrize('scan', [False, True])
def test_big_vision_npz_round_trip_matches_reference_forward(tmp_path, scan):
  # big_vision adds position embeddings to the patches before prepending the class token.
  params = reference_vit.random_vit(1, posemb_cls=False)
  path = tmp_path / 'bv.npz'
  np.savez(path, **reference_vit.big_vision_arrays(params, scan=scan))
  config = small.config(head_task='img', source=f'big_vision_npz:{path}')
  model = PolyViT(config, seed=0)
  report = checkpoints.initialise_from_config(model, config)
  x = _images()
  _check_parity(model, reference_vit.forward(params, x), x, f'big_vision_npz scan={scan}')
  assert report.unexpected == ['opt/mu/embedding/kernel']  # optimizer state reported, skipped
  assert np.all(np.asarray(model.tokenizers['image'].pos_embedding)[0, 0] == 0)


def _hf_vit(classes: int | None, seed: int):
  torch = pytest.importorskip('torch')
  transformers = pytest.importorskip('transformers')
  cfg = transformers.ViTConfig(
      image_size=32, patch_size=8, hidden_size=small.D, num_hidden_layers=small.LAYERS,
      num_attention_heads=small.HEADS, intermediate_size=small.MLP,
      hidden_act='gelu_pytorch_tanh', layer_norm_eps=1e-6, hidden_dropout_prob=0.0,
      attention_probs_dropout_prob=0.0, num_labels=classes or 2)
  torch.manual_seed(seed)
  model = (transformers.ViTForImageClassification(cfg) if classes
           else transformers.ViTModel(cfg, add_pooling_layer=True))
  with torch.no_grad():  # random everything, LayerNorms included
    for name, p in model.named_parameters():
      p.copy_(torch.randn_like(p) * 0.2 + (1.0 if 'layernorm' in name and 'weight' in name
                                           else 0.0))
  return model.eval()


def _hf_run(model, x: np.ndarray) -> np.ndarray:
  import torch  # pylint: disable=g-import-not-at-top
  with torch.no_grad():
    out = model(pixel_values=torch.from_numpy(x.transpose(0, 3, 1, 2)))
  return (out.logits if hasattr(out, 'logits') else out.last_hidden_state[:, 0]).numpy()


@pytest.mark.parametrize('layout', ['safetensors', 'bin'])
def test_hf_round_trip_matches_hugging_face_forward(tmp_path, layout):
  import torch  # pylint: disable=g-import-not-at-top
  ref = _hf_vit(classes=7, seed=0)
  if layout == 'safetensors':
    ref.save_pretrained(tmp_path, safe_serialization=True)
    assert os.path.exists(tmp_path / 'model.safetensors')
  else:
    ref.config.to_json_file(tmp_path / 'config.json')
    torch.save(ref.state_dict(), tmp_path / 'pytorch_model.bin')
  config = small.config(head_task='img', source=f'hf:{tmp_path}')
  model = PolyViT(config, seed=0)
  report = checkpoints.initialise_from_config(model, config)
  x = _images()
  _check_parity(model, _hf_run(ref, x), x, f'hf {layout}')
  assert report.source.endswith('model.safetensors' if layout == 'safetensors'
                                else 'pytorch_model.bin')


def test_hf_vit_model_layout_reports_pooler_and_matches_features(tmp_path):
  ref = _hf_vit(classes=None, seed=1)  # ViTModel: no prefix, a pooler, no classifier
  ref.save_pretrained(tmp_path, safe_serialization=True)
  config = small.config(source=f'hf:{tmp_path}')
  model = PolyViT(config, seed=0)
  report = checkpoints.initialise_from_config(model, config)
  assert sorted(report.unexpected) == ['pooler.dense.bias', 'pooler.dense.weight']
  assert any('pooler' in n for n in report.notes)
  x = _images()
  features = np.asarray(model.features_model_for('img')(x))
  err = float(np.abs(features - _hf_run(ref, x)).max())
  print(f'parity hf ViTModel CLS features: max |diff| = {err:.2e}')
  assert err <= TOLERANCE


def test_hf_config_differences_are_noted():
  vit_model = _hf_vit(classes=None, seed=2)
  state = {k: v.numpy() for k, v in vit_model.state_dict().items()}
  vit = hf.from_arrays(state, {'hidden_act': 'gelu', 'layer_norm_eps': 1e-12,
                                           'num_attention_heads': 2}, 'hf:test')
  assert any("hidden_act='gelu'" in n for n in vit.notes)
  assert any('layer_norm_eps=1e-12' in n for n in vit.notes)
  assert vit.num_heads == 2 and vit.num_layers == small.LAYERS


def test_pretrained_head_and_pre_logits_are_reported_and_skipped(tmp_path):
  params = reference_vit.random_vit(2, classes=11, pre_logits=small.D)  # ImageNet-21k style
  path = tmp_path / 'in21k.npz'
  np.savez(path, **reference_vit.vit_npz_arrays(params))
  config = small.config(source=f'vit_npz:{path}')
  model = PolyViT(config, seed=0)
  report = checkpoints.initialise_from_config(model, config)
  skipped = [r for r in report.rows if r.action == 'skipped']
  assert [r.source for r in skipped] == ['head', 'pre_logits']
  assert report.unexpected == ['head', 'pre_logits']
  text = report.format()
  assert '11-class head' in text and 'pre-logits' in text
  np.testing.assert_array_equal(np.asarray(model.heads['vid'].kernel), 0.0)  # fresh zeros
  with pytest.raises(CheckpointError, match='pre-logits'):
    bad = small.config(source=f'vit_npz:{path}', head_task='img', image_classes=11)
    checkpoints.initialise_from_config(PolyViT(bad, seed=0), bad)


def test_missing_keys_and_shape_mismatches_are_listed(tmp_path):
  arrays = reference_vit.vit_npz_arrays(reference_vit.random_vit(0))
  del arrays['embedding/bias']
  del arrays['Transformer/encoderblock_1/LayerNorm_2/scale']
  arrays['Transformer/encoderblock_0/MlpBlock_3/Dense_1/bias'] = np.zeros(5, np.float32)
  path = tmp_path / 'broken.npz'
  np.savez(path, **arrays)
  with pytest.raises(CheckpointError) as e:
    checkpoints.read_pretrained(f'vit_npz:{path}')
  message = str(e.value)
  assert 'missing keys: embedding/bias, Transformer/encoderblock_1/LayerNorm_2/scale' in message
  assert 'Transformer/encoderblock_0/MlpBlock_3/Dense_1/bias: (5,), expected (32,)' in message


def test_checkpoint_that_does_not_fit_the_config_fails_naming_fields(tmp_path):
  path = tmp_path / 'vit.npz'
  np.savez(path, **reference_vit.vit_npz_arrays(reference_vit.random_vit(0)))
  vit = checkpoints.read_pretrained(f'vit_npz:{path}')
  wide = small.config()
  wide.model.hidden_size, wide.model.num_layers = 64, 3
  with pytest.raises(CheckpointError, match=r'model.hidden_size: the checkpoint has 32, the '
                                            r'config 64; model.num_layers: .* has 2, .* 3'):
    checkpoints.initialise(PolyViT(wide, seed=0), vit)
  other_patch = small.config(patch=(16, 16), image_size=(32, 32))
  model = PolyViT(other_patch, seed=0)
  before = np.asarray(model.shared_blocks[0].mlp_in.kernel).copy()
  with pytest.raises(CheckpointError, match=r'tokenizer_image: the checkpoint patch is 8x8 '
                                            r'pixels, the config\'s 16x16.*\n.*tokenizer_audio'):
    checkpoints.initialise(model, vit)
  np.testing.assert_array_equal(np.asarray(model.shared_blocks[0].mlp_in.kernel), before)


def test_npz_with_pickled_objects_is_refused(tmp_path):
  path = tmp_path / 'pickled.npz'
  np.savez(path, cls=np.array([{'not': 'an array'}], dtype=object))
  with pytest.raises(CheckpointError, match='without unpickling'):
    checkpoints.read_pretrained(f'vit_npz:{path}')


_CALLED = []


def _record():
  _CALLED.append(True)
  return 0


class _Payload:
  """Unpickling this calls _record(): a stand-in for code a malicious file would run."""

  def __reduce__(self):
    return (_record, ())


def test_torch_bin_is_loaded_with_weights_only(tmp_path):
  torch = pytest.importorskip('torch')
  path = tmp_path / 'pytorch_model.bin'
  torch.save({'embeddings.cls_token': torch.zeros(1, 1, 4), 'payload': _Payload()}, path)
  with pytest.raises(CheckpointError, match='weights_only=True'):
    checkpoints.read_pretrained(f'hf:{path}')
  assert not _CALLED


def test_unknown_source_format_names_the_field(tmp_path):
  config = small.config(source=f'timm:{tmp_path}/x.pth')
  with pytest.raises(ConfigError, match='init.source'):
    checkpoints.initialise_from_config(PolyViT(config, seed=0), config)
  json.dumps(config.to_dict())  # the init section stays JSON-serialisable (config.json)
