"""`polyvit:<workdir>` sources: this project's own checkpoints, into the same or a changed
config (new tasks, other input sizes, other L_adapt, a missing modality)."""

from __future__ import annotations

import numpy as np
import pytest

from polyvit_tf import checkpoints
from polyvit_tf.checkpoints import CheckpointError
from polyvit_tf.checkpoints import inflate
from polyvit_tf.checkpoints import resize
from polyvit_tf.configs import base
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights
from tests.checkpoints import small


@pytest.fixture(scope='module')
def source_dir(tmp_path_factory):
  """A trained-looking 3-modality PolyViT (L_adapt=0) saved as a training work directory."""
  path = tmp_path_factory.mktemp('run')
  model = PolyViT(small.config(), seed=1)
  small.randomize(model, 1)
  small.save_workdir(model, str(path))
  return str(path), weights.get(model)


def test_same_config_restores_every_weight_and_the_logits(source_dir):
  path, src = source_dir
  config = small.config(source=f'polyvit:{path}')
  model = PolyViT(config, seed=2)
  report = checkpoints.initialise_from_config(model, config)
  assert set(report.counts()) == {'loaded'} and not report.missing and not report.unexpected
  assert report.source.endswith('ckpt-7')
  got = weights.get(model)
  assert got.keys() == src.keys()
  for name, value in got.items():
    np.testing.assert_array_equal(value, src[name])


def test_changed_config_copies_resizes_and_adds_fresh_heads(source_dir):
  path, src = source_dir
  config = small.config(num_adapt_layers=1, image_size=(48, 48), image_classes=12,
                        modalities=('image', 'audio'), source=f'polyvit:{path}')
  with config.unlocked():
    config.tasks['new_img'] = base.task_config('image', 3, train_steps=1, learning_rate=0.1,
                                               warmup_steps=0, batch_size=2)
  model = PolyViT(config, seed=2)
  report = checkpoints.initialise_from_config(model, config)
  print(report.format())
  got = weights.get(model)
  # Image grid 4x4 -> 6x6: resized like the paper's 224 -> 384 fine-tuning.
  assert report.action_of('tokenizer_image/pos_embedding') == 'resized'
  np.testing.assert_allclose(
      got['tokenizer_image/pos_embedding'][0],
      resize.resize_posemb(src['tokenizer_image/pos_embedding'][0], (4, 4), (6, 6)), atol=1e-6)
  np.testing.assert_array_equal(got['tokenizer_image/kernel'], src['tokenizer_image/kernel'])
  # L_adapt 0 -> 1: the source's shared layer 0 becomes every modality's adaptor layer 0.
  for mod in ('image', 'audio'):
    np.testing.assert_array_equal(got[f'adaptor_{mod}_block_0/mlp_in/kernel'],
                                  src['shared_block_0/mlp_in/kernel'])
  np.testing.assert_array_equal(got['shared_block_1/norm2/gamma'],
                                src['shared_block_1/norm2/gamma'])
  # Heads: same shape kept, changed class count and new task fresh.
  np.testing.assert_array_equal(got['head_aud/kernel'], src['head_aud/kernel'])
  assert report.action_of('head_img') == 'fresh' and report.action_of('head_new_img') == 'fresh'
  assert sorted(report.missing) == ['head_img/bias', 'head_img/kernel', 'head_new_img/bias',
                                    'head_new_img/kernel']
  # What the target lacks is reported as skipped.
  assert report.unexpected == ['tokenizer_video', 'head_vid']
  assert 'class count changed 7 -> 12' in report.format()


def test_missing_modality_is_converted_from_another(source_dir, tmp_path):
  image_only = PolyViT(small.config(modalities=('image',), num_adapt_layers=1), seed=3)
  small.randomize(image_only, 3)
  small.save_workdir(image_only, str(tmp_path))
  src = weights.get(image_only)
  config = small.config(num_adapt_layers=1, audio_channels=1, source=f'polyvit:{tmp_path}')
  model = PolyViT(config, seed=4)
  report = checkpoints.initialise_from_config(model, config)
  got = weights.get(model)
  assert report.action_of('tokenizer_audio/kernel') == 'converted'
  np.testing.assert_allclose(got['tokenizer_audio/kernel'],
                             src['tokenizer_image/kernel'].sum(axis=2, keepdims=True), rtol=1e-6)
  assert report.action_of('tokenizer_video/kernel') == 'inflated'  # repeat (Appendix D)
  np.testing.assert_array_equal(got['tokenizer_video/kernel'],
                                inflate.inflate_kernel(src['tokenizer_image/kernel'], 2, 'repeat'))
  np.testing.assert_array_equal(got['adaptor_video_block_0/attention/query/kernel'],
                                src['adaptor_image_block_0/attention/query/kernel'])
  assert 'from image (Appendix D)' in report.format()


def test_per_modality_adaptors_cannot_merge_into_a_shared_layer(tmp_path):
  adapted = PolyViT(small.config(num_adapt_layers=1), seed=5)
  small.save_workdir(adapted, str(tmp_path))
  config = small.config(num_adapt_layers=0, source=f'polyvit:{tmp_path}')
  with pytest.raises(CheckpointError, match='shared_block_0: the source\'s layer 0 is a '
                                            'per-modality adaptor'):
    checkpoints.initialise_from_config(PolyViT(config, seed=6), config)


def test_missing_workdir_is_a_clear_error(tmp_path):
  config = small.config(source=f'polyvit:{tmp_path / "nope"}')
  with pytest.raises(CheckpointError, match='no config'):
    checkpoints.initialise_from_config(PolyViT(config, seed=0), config)
