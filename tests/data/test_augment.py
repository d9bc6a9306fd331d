"""Video colour augmentation (DMVR's color_default_augm): defaults, determinism, bounds, rates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.configs import paper
from polyvit_tf.configs import specs
from polyvit_tf.data import augment
from polyvit_tf.data import errors
from polyvit_tf.data import video as video_lib


def _seed(i: int) -> tf.Tensor:
  return tf.constant([i, 17], tf.int64)


def _clip(seed: int = 0, frames: int = 3) -> tf.Tensor:
  return tf.constant(np.random.default_rng(seed).uniform(size=(frames, 8, 8, 3)), tf.float32)


def test_defaults_video_on_as_the_original_images_unchanged():
  config = paper.get_config('table2_b_adapt0')
  for task in ('kinetics400', 'moments_in_time'):
    opts = specs.resolve(config).data[task].options
    assert (opts.color_augment, opts.color_augment_prob, opts.color_drop_prob) == (
        True, 0.8, 0.1)
  image = specs.resolve(config).data['cifar10'].options  # the original: inception crop + flip
  assert not hasattr(image, 'color_augment')
  assert (image.augment, image.inception_crop_area, image.random_flip) == (
      True, (0.05, 1.0), True)
  config.tasks.kinetics400.data.color_drop_prob = 1.5
  with pytest.raises(errors.DataConfigError, match='kinetics400.data.color_drop_prob'):
    specs.resolve(config).data


def test_deterministic_given_a_seed_and_bounded():
  clip = _clip()
  outs = [augment.color_augment(clip, _seed(i)).numpy() for i in range(8)]
  again = [augment.color_augment(clip, _seed(i)).numpy() for i in range(8)]
  for a, b in zip(outs, again):
    np.testing.assert_array_equal(a, b)
    assert a.shape == clip.shape and a.min() >= 0.0 and a.max() <= 1.0
  assert len({o.tobytes() for o in outs}) > 4  # seeds differ -> different jitter


def test_probabilities_zero_and_one():
  clip = _clip()
  np.testing.assert_array_equal(
      augment.color_augment(clip, _seed(1), prob_color=0.0, prob_drop=0.0), clip)
  grey = augment.color_augment(clip, _seed(1), prob_color=0.0, prob_drop=1.0).numpy()
  np.testing.assert_allclose(grey, np.repeat(tf.image.rgb_to_grayscale(clip), 3, -1), atol=1e-6)
  # Grey frames: saturation, hue and (constant frames) contrast leave them alone, so the
  # jitter is brightness only, the SAME delta for every frame, |delta| <= 32/255.
  flat = tf.constant(np.stack([np.full((8, 8, 3), 0.3), np.full((8, 8, 3), 0.6)]), tf.float32)
  deltas = []
  for i in range(20):
    out = augment.color_augment(flat, _seed(i), prob_color=1.0, prob_drop=0.0).numpy()
    delta = out - flat.numpy()
    np.testing.assert_allclose(delta, delta.flat[0], atol=1e-5)
    deltas.append(delta.flat[0])
  assert max(abs(d) for d in deltas) <= 32 / 255 + 1e-6 and np.std(deltas) > 0.01


def test_jitter_and_drop_rates():
  clip = _clip()
  n = 400

  @tf.function
  def flags(i):
    seed = tf.stack([tf.cast(i, tf.int64), tf.constant(5, tf.int64)])
    out = augment.color_augment(clip, seed)
    dropped = tf.reduce_all(tf.abs(out[..., 0] - out[..., 1]) < 1e-6)
    jittered = tf.reduce_any(tf.abs(augment.color_augment(clip, seed, prob_drop=0.0) - clip)
                             > 1e-6)
    return jittered, dropped

  jittered, dropped = tf.map_fn(flags, tf.range(n), fn_output_signature=(tf.bool, tf.bool))
  # Binomial(400, p): 4 standard deviations are 0.08 (p = 0.8) and 0.06 (p = 0.1).
  assert abs(np.mean(jittered) - 0.8) < 0.08 and abs(np.mean(dropped) - 0.1) < 0.06


def test_train_clip_applies_it_within_range():
  frames = tf.constant(np.random.default_rng(2).integers(0, 256, (12, 20, 24, 3)), tf.uint8)
  on = dataclasses.replace(specs.resolve(paper.get_config('table2_b_adapt0')).data[
      'kinetics400'].options, num_frames=4, size=(16, 16), short_side=0)
  off = dataclasses.replace(on, color_augment=False)
  assert on.color_augment
  outs = {name: [video_lib.train_clip(frames, opts, _seed(i)).numpy() for i in range(6)]
          for name, opts in (('on', on), ('off', off))}
  for i in range(6):
    a = video_lib.train_clip(frames, on, _seed(i)).numpy()
    np.testing.assert_array_equal(a, outs['on'][i])  # deterministic
    assert a.min() >= -1.0 and a.max() <= 1.0
  assert any(np.abs(a - b).max() > 1e-3 for a, b in zip(outs['on'], outs['off']))
