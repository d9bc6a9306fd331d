"""Behaviour of the PolyViT model: shapes, sharing, heads, stochastic depth, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from polyvit_tf.configs import tiny
from polyvit_tf.model import ConfigError, InputMismatchError, PolyViT
from polyvit_tf.model import encoder as encoder_lib
from polyvit_tf.configs import specs as specs_lib


@pytest.fixture(scope='module')
def model():
  m = PolyViT(tiny.get_config('adapt1'), seed=0)
  m.build_all()
  return m


def _x(model, task, batch=2, seed=0):
  return np.random.default_rng(seed).normal(size=(batch,) + model.input_shape(task)).astype(
      'float32')


def test_output_shapes_and_token_grids(model):
  for task in model.task_names:
    logits = model(task, _x(model, task))
    assert logits.shape == (2, model.tasks[task].num_classes)
    feats = model.features_model_for(task)(_x(model, task))
    assert feats.shape == (2, model.hidden_size)
  assert model.tokenizers['video'].num_patches == 2 * 4 * 4
  assert model.tokenizers['audio'].num_patches == 8 * 2
  assert model.tokenizers['video'].pos_embedding.shape == (1, 33, 32)


def test_models_share_layer_objects(model):
  a, b = model.model_for('image_a'), model.model_for('image_b')
  shared = {id(l) for l in a.layers} & {id(l) for l in b.layers}
  assert id(model.tokenizers['image']) in shared
  assert id(model.shared_blocks[0]) in shared
  assert id(model.heads['image_a']) not in {id(l) for l in b.layers}


def test_initialisation_follows_paper(model):
  # Zero heads for audio/video, LeCun-normal for images; zero CLS; N(0, 0.02) positions.
  assert not np.any(np.asarray(model.heads['video_a'].kernel))
  assert np.std(np.asarray(model.heads['image_a'].kernel)) > 0
  assert not np.any(np.asarray(model.tokenizers['image'].cls))
  pos = np.asarray(model.tokenizers['video'].pos_embedding)
  assert 0.015 < pos.std() < 0.025
  mlp_bias = np.asarray(model.shared_blocks[0].mlp_in.bias)
  assert 0 < np.abs(mlp_bias).max() < 1e-5  # N(0, 1e-6)


def test_gap_pooling_averages_patch_tokens(model):
  tokens = np.random.default_rng(0).normal(size=(2, 5, 3)).astype('float32')
  np.testing.assert_allclose(model.pools['gap'](tokens), tokens[:, 1:].mean(1), atol=1e-6)
  np.testing.assert_allclose(model.pools['cls'](tokens), tokens[:, 0])


def test_stochastic_depth_schedule_and_no_rescaling():
  assert encoder_lib.drop_path_rates(0.3, 4) == pytest.approx([0.0, 0.1, 0.2, 0.3])
  # B with L_adapt = 6 (scenic polyvit get_droplayer_p): each adaptor stack ramps 0 .. rate
  # on its own, the shared layers keep l / (L - 1).
  assert encoder_lib.drop_path_rates(0.3, 12, 6) == pytest.approx(
      [0.0, 0.06, 0.12, 0.18, 0.24, 0.3] + [0.3 * l / 11 for l in range(6, 12)])
  assert encoder_lib.drop_path_rates(0.3, 12, 1) == pytest.approx(
      [0.0] + [0.3 * l / 11 for l in range(1, 12)])  # one adaptor layer: 0 (max(n-1, 1))
  assert encoder_lib.drop_path_rates(0.3, 12, 12) == encoder_lib.drop_path_rates(0.3, 12)
  assert encoder_lib.drop_path_rates(0.3, 1) == [0.0]
  with pytest.raises(ValueError, match='num_adapt_layers 5'):
    encoder_lib.drop_path_rates(0.3, 4, 5)
  layer = encoder_lib.DropPath(seed=3)
  x = np.ones((4000, 2, 3), 'float32')
  y = np.asarray(layer(x, rate=0.3, training=True))
  kept = y[:, 0, 0]
  assert set(np.unique(y)) <= {0.0, 1.0}  # kept branches are not scaled by 1/(1-p)
  assert np.all(y == kept[:, None, None])  # one decision per example
  assert abs(1 - kept.mean() - 0.3) < 0.03
  np.testing.assert_array_equal(layer(x, rate=0.3, training=False), x)


def test_each_block_runs_with_its_own_rate(monkeypatch):
  config = tiny.get_config()
  config.model.num_layers, config.model.num_adapt_layers = 4, 2
  m = PolyViT(config, seed=0)
  assert m.drop_path_rates('audio_a') == pytest.approx([0.0, 0.3, 0.2, 0.3])
  seen = {}
  call = encoder_lib.EncoderBlock.call

  def spy(self, x, drop_path_rate=0.0, training=None):
    seen[self.name] = drop_path_rate
    return call(self, x, drop_path_rate=drop_path_rate, training=training)

  monkeypatch.setattr(encoder_lib.EncoderBlock, 'call', spy)
  m.model_for('audio_a')(_x(m, 'audio_a'), training=True)
  assert seen == pytest.approx({'adaptor_audio_block_0': 0.0, 'adaptor_audio_block_1': 0.3,
                                'shared_block_2': 0.2, 'shared_block_3': 0.3})


def test_stochastic_depth_only_for_tasks_that_set_it(model):
  x = _x(model, 'image_a', batch=8)
  m = model.model_for('image_a')
  np.testing.assert_allclose(m(x, training=True), m(x, training=False), atol=1e-6)


def test_wrong_input_names_task_and_expected_shape(model):
  with pytest.raises(InputMismatchError, match=r"'image_a'.*\(32, 32, 3\).*video"):
    model('image_a', np.zeros((1, 4, 32, 32, 3), 'float32'))
  with pytest.raises(InputMismatchError, match=r"'audio_a' \(audio\).*\(64, 16, 1\)"):
    model('audio_a', np.zeros((1, 64, 16, 3), 'float32'))
  with pytest.raises(KeyError, match="Unknown task 'nope'.*image_a"):
    model('nope', np.zeros((1, 32, 32, 3), 'float32'))
  with pytest.raises(ValueError, match='polyvit_image_a'):
    model.model_for('image_a')(np.zeros((1, 16, 16, 3), 'float32'))


@pytest.mark.parametrize('key,value,match', [
    ('model.num_heads', 5, 'model.hidden_size 32 is not divisible'),
    ('model.num_adapt_layers', 3, 'model.num_adapt_layers'),
    ('tasks.image_a.modality', 'text', 'tasks.image_a.modality'),
    ('tasks.image_a.head_init', 'ones', 'tasks.image_a.head_init'),
    ('tasks.audio_a.loss', 'softmax_xent', 'tasks.audio_a.loss'),
    ('modalities.video.patch_size', (3, 8, 8), r'modalities.video.input_size .* not a multiple'),
    ('modalities.image.patch_size', (8, 8, 8), 'modalities.image'),
])
def test_config_errors_name_the_key(key, value, match):
  config = tiny.get_config()
  section, *rest = key.split('.')
  node = config[section]
  for k in rest[:-1]:
    node = node[k]
  node[rest[-1]] = value
  with pytest.raises(ConfigError, match=match):
    PolyViT(config)


def test_model_sizes():
  from polyvit_tf.configs import base
  for size, (d, layers, heads) in {'Ti': (192, 12, 3), 'S': (384, 12, 6), 'B': (768, 12, 12),
                                   'L': (1024, 24, 16), 'H': (1280, 32, 16)}.items():
    m = base.model_config(size)
    assert (m.hidden_size, m.num_layers, m.num_heads, m.mlp_dim) == (d, layers, heads, 4 * d)
  with pytest.raises(ValueError, match='Unknown model size'):
    base.model_config('XL')


def test_seeded_build_is_reproducible():
  a = PolyViT(tiny.get_config(), seed=7)
  b = PolyViT(tiny.get_config(), seed=7)
  for va, vb in zip(a.trainable_variables, b.trainable_variables):
    np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))
  assert specs_lib.resolve(a.config).task_names == ('audio_a', 'image_a', 'image_b', 'video_a')
  keras.backend.clear_session()


@pytest.mark.parametrize('input_size,patch,channels', [
    ((12,), (4,), 2), ((8, 12), (4, 4), 3), ((4, 8, 8), (2, 4, 4), 3),
    ((4, 6, 4, 6), (2, 3, 2, 3), 1)])
def test_tokenizer_embeds_patches_of_any_rank(input_size, patch, channels):
  """A patch embedding of any rank is each non-overlapping patch times the kernel (here
  checked against an explicit loop over the patch grid), plus bias, CLS and positions."""
  from polyvit_tf.model.tokenizer import Tokenizer  # pylint: disable=import-outside-toplevel
  layer = Tokenizer(input_size, patch, channels, 8)
  x = np.random.default_rng(1).normal(size=(2, *input_size, channels)).astype('float32')
  tokens = layer(x).numpy()
  kernel = np.asarray(layer.kernel).reshape(-1, 8)
  assert layer.kernel.shape == tuple(patch) + (channels, 8)
  grid = [i // p for i, p in zip(input_size, patch)]
  expected = np.stack([np.stack([
      x[b][tuple(slice(i * p, (i + 1) * p) for i, p in zip(index, patch))].reshape(-1) @ kernel
      for index in np.ndindex(*grid)]) for b in range(2)])
  expected = expected + np.asarray(layer.bias) + np.asarray(layer.pos_embedding)[0, 1:]
  assert tokens.shape == (2, int(np.prod(grid)) + 1, 8)
  np.testing.assert_allclose(tokens[:, 1:], expected, atol=1e-5)
  np.testing.assert_allclose(tokens[:, 0], np.broadcast_to(
      np.asarray(layer.pos_embedding)[0, 0] + np.asarray(layer.cls)[0, 0], (2, 8)), atol=1e-6)
