"""Linear probes: frozen (cross-modally converted) encoder, new heads, lr chosen on validation."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.configs import tiny
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights
from polyvit_tf.train import probes
from tests.train import configs
from tests.train import synthetic


def _source(workdir: str) -> dict:
  """A source work directory (image + audio model) with one checkpoint."""
  config = configs.get_config()
  model = PolyViT(config, seed=1)
  workdir_lib.save_config(workdir, config)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=weights.checkpoint(model)),
                             workdir_lib.checkpoint_dir(workdir), max_to_keep=1).save()
  return weights.get(model)


def test_video_probe_of_an_image_audio_model(tmp_path):
  source = str(tmp_path / 'source')
  src = _source(source)
  cfg = tiny.get_config()
  cfg.tasks.video_a.train_steps = 4
  cfg.tasks.video_a.data.validation_split = 'validation'
  cfg.eval.batch_size = 8
  cfg.model.mlp_dim = 128  # ignored: a probe uses the source's encoder
  out = str(tmp_path / 'probe')
  results = probes.run_probe(cfg, source, out, data=synthetic, learning_rates=[0.1, 0.3],
                             tasks=['video_a'])
  with open(os.path.join(out, 'eval', 'probe.json')) as f:
    report = json.load(f)
  r = report['tasks']['video_a']
  assert r == json.loads(json.dumps(results['video_a']))
  assert sorted(r['validation']) == ['0.1', '0.3']
  best = max(r['validation'], key=lambda k: r['validation'][k]['top1'])
  assert r['learning_rate'] == float(best)
  assert r['eval']['num_examples'] == synthetic.EVAL_EXAMPLES

  runs = [workdir_lib.load_model(os.path.join(out, 'video_a', f'lr_{lr}'))[1]
          for lr in ('0.1', '0.3')]
  for model in runs:
    w = weights.get(model)
    assert model.config.model.mlp_dim == 64  # the source's encoder
    for name, value in w.items():
      if name.startswith(('shared_block_', 'encoder_norm')):
        np.testing.assert_array_equal(value, src[name])  # frozen
    assert w['tokenizer_video/kernel'].shape == (2, 8, 8, 3, 32)  # converted from image
    assert np.abs(w['head_video_a/kernel']).max() > 0  # trained from a zero head
  a, b = (weights.get(m) for m in runs)
  np.testing.assert_array_equal(a['tokenizer_video/kernel'], b['tokenizer_video/kernel'])
  assert not np.array_equal(a['head_video_a/kernel'], b['head_video_a/kernel'])


def test_probe_tokenizers_take_the_source_patch_size(tmp_path):
  source = str(tmp_path / 'source')
  workdir_lib.save_config(source, configs.get_config())  # image and audio, 8x8 patches
  cfg = tiny.get_config()
  cfg.modalities.audio.patch_size = (16, 16)
  cfg.modalities.video.patch_size = (2, 16, 16)
  audio = probes.probe_config(cfg, source, 'audio_a', 0.1)
  video = probes.probe_config(cfg, source, 'video_a', 0.1)  # converted from image
  assert tuple(audio.modalities.audio.patch_size) == (8, 8)
  assert tuple(video.modalities.video.patch_size) == (2, 8, 8)
  assert list(audio.tasks) == ['audio_a'] and audio.tasks.audio_a.learning_rate == 0.1
  assert audio.model.to_dict() == configs.get_config().model.to_dict()
  assert audio.optimizer.idle_params == 'freeze_idle'
