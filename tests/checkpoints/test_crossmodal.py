"""Appendix D conversions between every pair of modalities, and a linear probe trained on
converted weights."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from polyvit_tf import checkpoints
from polyvit_tf.checkpoints import TokenizerWeights
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights
from tests.checkpoints import small

# (modality, audio channels): the 1- and 3-channel spectrogram variants are separate cases.
KINDS = {'image': ('image', 1), 'audio1': ('audio', 1), 'audio3': ('audio', 3),
         'video': ('video', 1)}


@functools.lru_cache(maxsize=None)
def _model(kind: str, seed: int) -> PolyViT:
  """One small single-modality PolyViT per (kind, seed), built once for the whole module."""
  modality, channels = KINDS[kind]
  model = PolyViT(small.config(audio_channels=channels, modalities=(modality,)), seed=seed)
  small.randomize(model, seed)
  return model


def _expected(src: TokenizerWeights, dst_spec) -> tuple[np.ndarray, np.ndarray]:
  """Appendix D written out: the kernel and position embeddings `dst` should get."""
  k = src.kernel.sum(axis=0) if src.kernel.ndim == 5 else src.kernel  # sum over frames
  if dst_spec.channels == 1 and k.shape[-2] == 3:
    k = k.sum(axis=-2, keepdims=True)
  elif dst_spec.channels == 3 and k.shape[-2] == 1:
    k = np.repeat(k, 3, axis=-2) / 3
  grid = src.posemb[1:].reshape(src.grid + (-1,))
  if len(src.grid) == 3:
    grid = grid.mean(axis=0)  # mean over frames
  hw = dst_spec.grid[-2:]
  grid = scipy.ndimage.zoom(grid, (hw[0] / grid.shape[0], hw[1] / grid.shape[1], 1), order=1)
  if len(dst_spec.grid) == 3:
    k = np.repeat(k[None], dst_spec.patch_size[0], axis=0)  # repeat over frames (the paper)
    grid = np.repeat(grid[None], dst_spec.grid[0], axis=0)
  return k, np.concatenate([src.posemb[:1], grid.reshape(-1, grid.shape[-1])])


@pytest.mark.parametrize('src_kind,dst_kind',
                         [p for p in itertools.permutations(KINDS, 2)
                          if KINDS[p[0]][0] != KINDS[p[1]][0]])
def test_conversion_between_modalities_keeps_shapes_and_runs(src_kind, dst_kind):
  source, target = _model(src_kind, 1), _model(dst_kind, 2)
  src_mod, dst_mod = KINDS[src_kind][0], KINDS[dst_kind][0]
  src = TokenizerWeights.from_layer(source.tokenizers[src_mod])
  dst_spec = target.modalities[dst_mod]
  converted = checkpoints.convert_tokenizer(src, dst_spec)
  layer = target.tokenizers[dst_mod]
  values = converted.as_variables(layer.name)
  for name, value in values.items():  # every shape is the target tokenizer's
    assert value.shape == tuple(getattr(layer, name.split('/')[1]).shape), name
  kernel, posemb = _expected(src, dst_spec)
  np.testing.assert_allclose(converted.kernel, kernel, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(converted.posemb, posemb, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(converted.cls, src.cls)
  np.testing.assert_array_equal(converted.bias, src.bias)
  weights.assign(target, values, allow_missing=True)
  task = target.task_names[0]
  x = np.random.default_rng(3).normal(size=(2,) + target.input_shape(task)).astype('float32')
  logits = np.asarray(target(task, x))
  assert logits.shape == (2, target.tasks[task].num_classes) and np.all(np.isfinite(logits))


@pytest.mark.parametrize('source_kind,probe_kind', [('image', 'audio1'), ('image', 'video'),
                                                    ('video', 'image')])
def test_linear_probe_on_converted_weights_trains(tmp_path, source_kind, probe_kind):
  source = _model(source_kind, 4)
  small.save_workdir(source, str(tmp_path / 'source'))
  probe_modality, channels = KINDS[probe_kind]
  config = small.config(audio_channels=channels, modalities=(probe_modality,),
                        source=f'polyvit:{tmp_path / "source"}')
  model = PolyViT(config, seed=5)
  report = checkpoints.initialise_from_config(model, config)
  assert report.action_of(f'tokenizer_{probe_modality}/kernel') in ('converted', 'inflated')
  task = model.task_names[0]
  assert report.action_of(f'head_{task}') == 'fresh'

  # The probe (Sec. 5.4): the frozen converted encoder's features, a new linear head trained
  # with plain SGD steps.
  rng = np.random.default_rng(6)
  x = rng.normal(size=(16,) + model.input_shape(task)).astype('float32')
  feats = model.features_model_for(task)(x, training=False)
  classes = model.tasks[task].num_classes
  labels = np.argmax(np.asarray(feats) @ rng.normal(size=(feats.shape[1], classes)), axis=1)
  y = tf.one_hot(labels, classes)  # a linearly separable target
  head = model.heads[task]
  losses = []
  for _ in range(20):
    with tf.GradientTape() as tape:
      logits = head(feats)
      loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(y, logits)
                            if model.tasks[task].loss == 'sigmoid_xent'
                            else tf.nn.softmax_cross_entropy_with_logits(y, logits))
    grads = tape.gradient(loss, head.trainable_variables)
    for v, g in zip(head.trainable_variables, grads):
      v.assign_sub(0.5 * g)
    losses.append(float(loss))
  print(f'probe {probe_kind} from {source_kind}: loss {losses[0]:.3f} -> {losses[-1]:.3f}')
  assert losses[-1] < 0.8 * losses[0]
  # The trained head is the task's head: the full model gives the probe's logits.
  np.testing.assert_allclose(np.asarray(model(task, x)), np.asarray(head(feats)), atol=1e-5)
