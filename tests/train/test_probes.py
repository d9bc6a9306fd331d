"""Linear probes: frozen (cross-modally converted) encoder, new heads, lr chosen on validation."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.configs import paper
from polyvit_tf.configs import specs
from polyvit_tf.configs import tiny
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.data import pipeline as data_pipeline
from polyvit_tf.data import synthetic as data_synthetic
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights
from polyvit_tf.train import probes
from tests.train import configs
from tests.train import synthetic

ROOT = pathlib.Path(__file__).resolve().parents[2]


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


def test_table9_probe_protocol():
  cfg = paper.get_config('table9_probes')
  assert len(cfg.tasks) == 11
  for task in ('caltech101', 'sun397', 'dmlab', 'dtd', 'kitti_distance', 'patch_camelyon'):
    t = cfg.tasks[task]
    assert probes.task_learning_rates(cfg, task) == [0.03, 0.1, 0.3]  # grid search
    assert (t.train_steps, t.warmup_steps, t.batch_size, t.head_init) == (
        2500, 200, 512, 'lecun_normal')
    assert not specs.resolve(cfg).data[task].augment  # "We don't use augmentation"
  fixed = {'epic_kitchens': 0.5, 'something_something_v2': 0.4, 'kinetics600': 0.1,
           'moments_in_time_audio': 0.5, 'kinetics400_audio': 0.5}
  for task, rate in fixed.items():
    t = cfg.tasks[task]
    assert probes.task_learning_rates(cfg, task) == [rate] and t.head_init == 'zeros'
    assert t.eval_views == (12 if t.modality == 'video' else 4)  # multi-crop evaluation
  assert cfg.tasks.kinetics600.train_steps == round(30 * 363_000 / 64)  # 30 epochs
  assert cfg.tasks.something_something_v2.mixup_alpha == 0.3
  assert probes.task_learning_rates(cfg, 'dtd', [0.2]) == [0.2]  # the CLI's override
  cfg.tasks.dtd.probe_learning_rates = (0.1, -1.0)
  with pytest.raises(ConfigError, match='tasks.dtd.probe_learning_rates'):
    probes.task_learning_rates(cfg, 'dtd')
  del cfg.tasks.dtd['probe_learning_rates']
  assert probes.task_learning_rates(cfg, 'dtd') == list(cfg.eval.probe_learning_rates)


def test_probe_cli_reads_table9(tmp_path):
  source = str(tmp_path / 'source')
  workdir_lib.save_config(source, paper.get_config('table2_b_adapt6'))  # no weights needed
  env = {**os.environ, 'PYTHONPATH': str(ROOT), 'TF_CPP_MIN_LOG_LEVEL': '2'}
  proc = subprocess.run(
      [sys.executable, '-m', 'polyvit_tf.probe',
       '--config=polyvit_tf/configs/paper.py:table9_probes', f'--source={source}',
       '--dry_run'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  plan = json.loads(proc.stdout)
  assert sorted(plan) == sorted(paper.probe_tasks())
  assert plan['caltech101'] == {
      'modality': 'image', 'learning_rates': [0.03, 0.1, 0.3], 'train_steps': 2500,
      'warmup_steps': 200, 'batch_size': 512, 'augment': False, 'mixup_alpha': 0.0,
      'label_smoothing': 0.0, 'eval_views': 1, 'head_init': 'lecun_normal',
      'patch_size': [16, 16]}
  assert plan['kinetics600']['learning_rates'] == [0.1]
  assert plan['kinetics600']['train_steps'] == 170_156 and plan['kinetics600']['augment']
  assert plan['something_something_v2']['mixup_alpha'] == 0.3
  assert plan['kinetics400_audio']['eval_views'] == 4
  assert not (tmp_path / 'probe').exists()


class _Recording:
  """The real input pipeline, remembering the configs the probe trains with."""

  def __init__(self):
    self.train_configs = []

  def train_dataset(self, config, task, **kwargs):
    self.train_configs.append((config, task))
    return data_pipeline.train_dataset(config, task, **kwargs)

  def eval_dataset(self, config, task, **kwargs):
    return data_pipeline.eval_dataset(config, task, **kwargs)


def _epoch(config, task, seed, n):
  ds = data_pipeline.train_dataset(config, task, seed=seed, batch_size=n)
  (batch,) = ds.take(1).as_numpy_iterator()
  return sorted(map(bytes, batch['inputs'].reshape(n, -1).astype(np.float32)))


def test_image_probes_run_without_augmentation(tmp_path):
  source = str(tmp_path / 'source')
  _source(source)  # image (16 x 16) + audio encoder
  cfg = configs.get_config()
  probe = paper.probe_tasks()['dtd']  # a Table 9 image probe at the test's scale
  probe.update(num_classes=5, train_steps=3, warmup_steps=1, batch_size=4,
               probe_learning_rates=(0.1,))
  cfg.tasks = ml_collections.ConfigDict({'dtd_small': probe})
  cfg = data_synthetic.write_synthetic_tfrecords(cfg, str(tmp_path / 'data'),
                                                 examples_per_class=2)
  recording = _Recording()
  results = probes.run_probe(cfg, source, str(tmp_path / 'probe'), data=recording)
  assert results['dtd_small']['learning_rate'] == 0.1
  assert results['dtd_small']['eval']['num_examples'] == 10
  (used, task), = set((c.to_json(), t) for c, t in recording.train_configs)
  used = ml_collections.ConfigDict(json.loads(used))
  assert not specs.resolve(used).data[task].augment
  # One epoch of training inputs (10 images) is the same for any seed: no crop, no flip.
  assert _epoch(used, task, 0, 10) == _epoch(used, task, 1, 10)
  used.tasks[task].data.augment = True  # the co-training image default would differ
  assert _epoch(used, task, 0, 10) != _epoch(used, task, 1, 10)
