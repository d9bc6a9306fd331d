"""The training loop in one process: outputs, learning rates used, idle policy, NaN stop,
accumulated updates, and config errors raised before any data is read."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf import train
from polyvit_tf import workdir as workdir_lib
from polyvit_tf.configs import io as config_io
from polyvit_tf.model import weights
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.train import loop
from tests.train import configs
from tests.train import synthetic


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A full 10-step run of the two-task config, recording the rate passed to every step."""
  workdir = str(tmp_path_factory.mktemp('run'))
  trainer = loop.Trainer(configs.get_config(), workdir, data=synthetic)
  used = []
  make = trainer.steps.step_fn

  def spy(kind):
    fn = make(kind)

    def step(iterators, lr):
      used.append((kind.task, float(lr)))
      return fn(iterators, lr)
    return step

  trainer.steps.step_fn = spy
  trainer.train()
  trainer.evaluate('eval')
  trainer.close()
  return workdir, trainer, used


def test_work_directory_outputs(trained):
  workdir, trainer, _ = trained
  with open(os.path.join(workdir, 'eval', 'metrics.json')) as f:
    metrics = json.load(f)
  assert sorted(metrics) == ['audio_a', 'image_a']
  assert sorted(metrics['image_a']) == ['loss', 'num_examples', 'top1', 'top5']
  assert sorted(metrics['audio_a']) == ['loss', 'map', 'num_examples', 'top1', 'top5']
  assert all(m['num_examples'] == synthetic.EVAL_EXAMPLES for m in metrics.values())
  for task in ('audio_a', 'image_a'):
    assert tf.io.gfile.glob(os.path.join(workdir, 'tensorboard', task, 'events.*'))
  assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints')).endswith('ckpt-10')
  assert config_io.load(workdir_lib.config_path(workdir)).to_dict() == \
      configs.get_config().to_dict()
  assert int(trainer.step.numpy()) == 10
  assert {t: int(v.numpy()) for t, v in trainer.positions.items()} == {'image_a': 6,
                                                                       'audio_a': 4}


def test_each_step_uses_its_task_rate_at_the_global_step(trained):
  _, trainer, used = trained
  assert len(used) == 10
  for step, (task, rate) in enumerate(used):
    assert task == trainer.schedule.step_at(step).task
    assert rate == pytest.approx(trainer.rates(task, step), rel=1e-6)
  assert used[0][1] == 0.0 and max(r for _, r in used) > 0.1


def test_run_and_evaluate_public_api_resume_a_finished_run(trained):
  workdir, trainer, _ = trained
  results = train.run(configs.get_config(), workdir, data=synthetic)  # nothing left to train
  final = weights.get(trainer.model)
  on_disk = workdir_lib.load_model(workdir)[1]
  for name, value in weights.get(on_disk).items():
    np.testing.assert_array_equal(value, final[name])
  again = train.evaluate(configs.get_config(), workdir, data=synthetic, split='eval')
  for task in results:
    assert again[task]['top1'] == results[task]['top1']
    assert again[task]['loss'] == pytest.approx(results[task]['loss'], abs=1e-6)
  val = train.evaluate(configs.get_config(), workdir, data=synthetic, split='validation')
  assert os.path.exists(os.path.join(workdir, 'eval', 'metrics_validation.json'))
  assert val['image_a']['num_examples'] == synthetic.EVAL_EXAMPLES


def test_a_different_config_in_the_same_workdir_is_refused(trained):
  cfg = configs.get_config()
  cfg.tasks.image_a.learning_rate = 0.2
  with pytest.raises(ConfigError, match='tasks.image_a.learning_rate'):
    loop.Trainer(cfg, trained[0], data=synthetic)


@pytest.mark.parametrize('policy', ['freeze_idle', 'shared_momentum'])
def test_idle_parameter_policy(tmp_path, policy):
  """Task by task: image_a (6 steps), then audio_a. The audio head never sampled during the
  image phase stays still under both policies (zero momentum); during the audio phase the
  image head (and image tokenizer) stays still only under 'freeze_idle'."""
  cfg = configs.get_config()
  cfg.schedule.name = 'task_by_task'
  cfg.schedule.task_order = ('image_a', 'audio_a')
  cfg.optimizer.idle_params = policy
  trainer = loop.Trainer(cfg, str(tmp_path), data=synthetic)
  start = weights.get(trainer.model)
  trainer.num_steps = 6
  trainer.train()
  mid = weights.get(trainer.model)
  trainer.num_steps = 9
  trainer.train()
  end = weights.get(trainer.model)
  trainer.close()
  for name in ('head_audio_a/kernel', 'head_audio_a/bias', 'tokenizer_audio/kernel'):
    np.testing.assert_array_equal(mid[name], start[name])
  assert not np.array_equal(mid['head_image_a/kernel'], start['head_image_a/kernel'])
  assert not np.array_equal(end['shared_block_1/mlp_in/kernel'],
                            mid['shared_block_1/mlp_in/kernel'])
  idle = ('head_image_a/kernel', 'tokenizer_image/kernel')
  if policy == 'freeze_idle':
    for name in idle:
      np.testing.assert_array_equal(end[name], mid[name])
  else:  # the paper: one momentum state keeps moving the idle image parameters
    for name in idle:
      assert np.abs(end[name] - mid[name]).max() > 1e-6


def test_non_finite_loss_stops_naming_task_and_step(tmp_path):
  cfg = configs.get_config()
  cfg.train.checkpoint_every_steps = 2
  trainer = loop.Trainer(cfg, str(tmp_path), data=synthetic.Provider(nan_batches={'image_a': 3}))
  bad_step = [s for s in range(trainer.num_steps)
              if trainer.schedule.step_at(s).tasks == ('image_a',)][3]
  with pytest.raises(loop.NonFiniteLossError, match=f"step {bad_step} \\(task 'image_a'\\)"):
    trainer.train()
  last_good = bad_step // 2 * 2
  latest = tf.train.latest_checkpoint(os.path.join(str(tmp_path), 'checkpoints'))
  assert latest.endswith(f'ckpt-{last_good}')
  in_memory = weights.get(trainer.model)  # the bad update was not applied either
  assert all(np.isfinite(v).all() for v in in_memory.values())
  _, saved = workdir_lib.load_model(str(tmp_path))
  assert all(np.isfinite(v).all() for v in weights.get(saved).values())
  trainer.close()


def test_accumulated_schedule_makes_one_update_per_round(tmp_path):
  cfg = configs.get_config('equiv')
  cfg.schedule.name = 'accumulated'
  trainer = loop.Trainer(cfg, str(tmp_path), data=synthetic)
  trainer.train()
  assert trainer.num_steps == (6 + 4) // 2
  assert int(trainer.optimizer.iterations.numpy()) == 5
  assert {t: int(v.numpy()) for t, v in trainer.positions.items()} == {'image_a': 5,
                                                                       'audio_a': 5}
  assert trainer.rates.base['*'] == 0.1
  trainer.close()


@pytest.mark.parametrize('key,value,match', [
    ('schedule.name', 'round_robin', 'schedule.name'),
    ('schedule.task_order', ('image_a', 'speech'), 'schedule.task_order.*speech'),
    ('tasks.audio_a.modality', 'smell', 'tasks.audio_a.modality'),
    ('modalities.image.input_size', (20, 16), 'modalities.image.input_size'),
    ('model.num_heads', 3, 'model.num_heads'),
    ('optimizer.idle_params', 'drift', 'optimizer.idle_params'),
    ('distribution.strategy', 'horovod', 'distribution.strategy'),
    ('tasks.image_a.batch_size', 0, 'tasks.image_a.batch_size'),
    ('eval.view_averaging', 'median', 'eval.view_averaging'),
])
def test_config_errors_before_any_data(tmp_path, key, value, match):
  cfg = configs.get_config()
  section, *rest = key.split('.')
  node = cfg[section]
  for part in rest[:-1]:
    node = node[part]
  node[rest[-1]] = value
  with pytest.raises(ConfigError, match=match):
    train.run(cfg, str(tmp_path), data=synthetic.refusing)
  assert not os.path.exists(os.path.join(str(tmp_path), 'checkpoints'))


def test_config_init_source_is_loaded_before_the_first_step(trained, tmp_path):
  source, trainer, _ = trained
  cfg = configs.get_config()
  cfg.init.source = f'polyvit:{source}'
  fresh = loop.Trainer(cfg, str(tmp_path), data=synthetic.refusing)  # reads no data
  loaded, final = weights.get(fresh.model), weights.get(trainer.model)
  for name, value in final.items():
    np.testing.assert_array_equal(loaded[name], value)
  fresh.close()


def test_run_reports_skipped_bad_examples(tmp_path):
  """With the real data pipeline, a corrupt image is skipped, logged and written out."""
  from polyvit_tf.data import errors
  from polyvit_tf.modalities import image as image_modality
  from polyvit_tf.data import records
  from polyvit_tf.data import synthetic as data_synthetic
  config = configs.get_config()
  config.tasks = {'image_a': config.tasks.image_a}
  config.tasks.image_a.train_steps = 2
  config = data_synthetic.write_synthetic_tfrecords(config, str(tmp_path / 'data'),
                                                     examples_per_class=1)
  directory = config.tasks.image_a.data.source.partition(':')[2]
  corrupt = image_modality.example('corrupt_scan', 3, b'not an image')
  for split in ('train', 'test'):  # the eval pass meets it whatever the training order
    good = [tf.train.Example.FromString(r.numpy()) for r in
            tf.data.TFRecordDataset(records.split_files(directory, split))]
    records.write_split(directory, split, good + [corrupt])
  errors.BAD_EXAMPLES.reset()
  train.run(config, str(tmp_path / 'run'))
  with open(tmp_path / 'run' / 'eval' / 'bad_examples.json') as f:
    report = json.load(f)
  assert report['distinct'] == {'image_a': {'undecodable or corrupt media': 1}}
  assert report['ids']['image_a'] == {'undecodable or corrupt media': ['corrupt_scan']}
