"""Weights by name, load reports, checkpoint object graph, config JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.configs import io as config_io
from polyvit_tf.configs import tiny
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights


def test_get_assign_round_trip_and_report():
  a, b = PolyViT(tiny.get_config(), seed=1), PolyViT(tiny.get_config(), seed=2)
  w = weights.get(a)
  assert 'tokenizer_video/kernel' in w and 'head_image_a/bias' in w
  report = weights.assign(b, {**w, 'pre_logits/kernel': np.zeros(3)})
  assert report.unexpected == ['pre_logits/kernel'] and not report.missing
  for name, value in weights.get(b).items():
    np.testing.assert_array_equal(value, w[name])


def test_assign_lists_missing_and_mismatched_and_assigns_nothing():
  m = PolyViT(tiny.get_config(), seed=1)
  before = weights.get(m)
  bad = dict(before)
  bad['tokenizer_image/kernel'] = np.zeros((4, 4, 3, 32), 'float32')
  del bad['encoder_norm/gamma']
  with pytest.raises(weights.WeightLoadError,
                     match=r'tokenizer_image/kernel: \(4, 4, 3, 32\) vs \(8, 8, 3, 32\).*'
                           r'missing: encoder_norm/gamma'):
    weights.assign(m, bad)
  for name, value in weights.get(m).items():
    np.testing.assert_array_equal(value, before[name])
  del bad['tokenizer_image/kernel']
  report = weights.assign(m, bad, allow_missing=True)
  assert set(report.missing) == {'encoder_norm/gamma', 'tokenizer_image/kernel'}


def test_checkpoint_restores_into_a_new_model(tmp_path):
  a = PolyViT(tiny.get_config(), seed=1)
  path = tf.train.Checkpoint(model=weights.checkpoint(a)).write(str(tmp_path / 'ckpt'))
  b = PolyViT(tiny.get_config(), seed=2)
  tf.train.Checkpoint(model=weights.checkpoint(b)).read(path).assert_consumed()
  for name, value in weights.get(b).items():
    np.testing.assert_array_equal(value, weights.get(a)[name])


def test_config_json_round_trip(tmp_path):
  config = tiny.get_config('adapt1')
  config_io.save(config, str(tmp_path / 'config.json'))
  loaded = config_io.load(str(tmp_path / 'config.json'))
  assert loaded.modalities.video.patch_size == (2, 8, 8)
  assert loaded.to_dict() == config.to_dict()
  model = PolyViT(loaded)
  assert model.count_params() == PolyViT(config).count_params()
