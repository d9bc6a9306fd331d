"""Resuming over damaged checkpoints of the tiny config: the damaged one is reported (file,
reason) and set aside, the next older one restored (its exact weights), no older checkpoint
is touched; a garbage or empty state file is rebuilt from the checkpoint files; leftovers of
an interrupted save are cleared away; with none restorable the run stops (exit 4) unless
--restart; a full disk leaves the last checkpoint restorable."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.model import weights
from polyvit_tf.train import checkpoint_files
from polyvit_tf.train import checkpointing
from polyvit_tf.train import loop
from tests.faults import configs
from tests.faults import corrupt
from tests.train import synthetic

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = 'ckpt-12.data-00000-of-00001'
INDEX = 'ckpt-12.index'


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A tiny-config trainer with checkpoints at steps 4, 8 and 12 (weights and optimizer
  slots moved between them, step and data positions as the schedule has them) and the
  weights at each. Nothing is trained: saving is what is under test."""
  workdir = str(tmp_path_factory.mktemp('ckpt_run'))
  trainer = loop.Trainer(configs.get_config(), workdir, data=synthetic)
  rng = np.random.default_rng(0)
  saved = {}
  for step in (4, 8, 12):
    slots = [v for per_name in trainer.optimizer.slots.values() for v in per_name.values()]
    for v in trainer.model.trainable_variables + slots:
      v.assign(v + rng.normal(scale=0.01, size=tuple(v.shape)).astype(np.float32))
    trainer.step.assign(step)
    for task, n in trainer.schedule.counts(step).items():
      trainer.positions[task].assign(n)
    trainer.save()
    saved[step] = weights.get(trainer.model)
  return types.SimpleNamespace(workdir=workdir, trainer=trainer, saved=saved)


def _copy(run, tmp_path, manifests=True) -> pathlib.Path:
  workdir = tmp_path / 'work'
  shutil.copytree(run.workdir, workdir)
  if not manifests:
    for m in (workdir / 'checkpoints').glob('*' + checkpoint_files.MANIFEST):
      m.unlink()
  return workdir


def _digests(directory: pathlib.Path, steps=(4, 8)) -> dict[str, str]:
  return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
          for s in steps for p in sorted(directory.glob(f'checkpoints/ckpt-{s}.*'))}


def _resume(run, workdir, **kwargs) -> checkpointing.Resumed:
  t = run.trainer
  return checkpointing.Checkpointer(str(workdir), t.model, t.optimizer, t.step, t.positions,
                                    max_to_keep=5).resume(**kwargs)


def _assert_weights_of(run, step):
  now = weights.get(run.trainer.model)
  assert int(run.trainer.step.numpy()) == step
  for name, value in run.saved[step].items():
    np.testing.assert_array_equal(now[name], value)


DAMAGE = {
    'data_truncated': (DATA, lambda p: corrupt.truncate(p, 1000)),
    'data_zeroed': (DATA, corrupt.zero),
    'data_bit_flipped': (DATA, lambda p: corrupt.flip_bit(p, os.path.getsize(p) // 2)),
    'data_deleted': (DATA, os.remove),
    'index_truncated': (INDEX, lambda p: corrupt.truncate(p, 100)),
}


@pytest.mark.parametrize('manifests', [True, False], ids=['manifest', 'tf_checks_only'])
@pytest.mark.parametrize('damage', sorted(DAMAGE))
def test_damaged_newest_checkpoint_falls_back_to_the_previous(run, tmp_path, damage,
                                                              manifests):
  workdir = _copy(run, tmp_path, manifests)
  before = _digests(workdir)
  name, hurt = DAMAGE[damage]
  hurt(str(workdir / 'checkpoints' / name))
  resumed = _resume(run, workdir)
  assert resumed.path == str(workdir / 'checkpoints' / 'ckpt-8')
  _assert_weights_of(run, 8)
  ((path, reason),) = resumed.failures
  assert 'ckpt-12' in path and reason
  print(f'{damage} ({"manifest" if manifests else "TF checks only"}): {path}: {reason}')
  assert _digests(workdir) == before  # 4 and 8 untouched
  (aside,) = resumed.set_aside
  assert {p.name for p in pathlib.Path(aside).iterdir()} >= {'REASON.txt', INDEX} - (
      {INDEX} if damage == 'index_deleted' else set())
  assert not (workdir / 'checkpoints' / INDEX).exists()
  assert tf.train.latest_checkpoint(str(workdir / 'checkpoints')).endswith('ckpt-8')


def test_bit_flip_tf_does_not_notice_is_caught_by_the_manifest(run, tmp_path):
  """A flipped bit in the index's footer padding restores without an error in TF; the
  manifest's SHA-256 catches it before anything is restored."""
  for manifests, step in ((False, 12), (True, 8)):
    workdir = _copy(run, tmp_path / str(manifests), manifests)
    index = workdir / 'checkpoints' / INDEX
    corrupt.flip_bit(index, os.path.getsize(index) - 20)
    resumed = _resume(run, workdir)
    assert resumed.path.endswith(f'ckpt-{step}')
    if manifests:
      assert resumed.failures == [(str(index), 'SHA-256 differs from the manifest '
                                               '(corrupted contents)')]


@pytest.mark.parametrize('state', ['garbage {{{', '', 'model_checkpoint_path: "ckpt-99"\n'])
def test_bad_state_file_is_rebuilt_and_nothing_is_overwritten(run, tmp_path, state):
  workdir = _copy(run, tmp_path)
  before = _digests(workdir, steps=(4, 8, 12))
  (workdir / 'checkpoints' / 'checkpoint').write_text(state)
  resumed = _resume(run, workdir)
  assert resumed.path.endswith('ckpt-12')
  _assert_weights_of(run, 12)
  listing = checkpoint_files.scan(str(workdir / 'checkpoints'))
  assert listing.state == 'ok'
  assert [c.step for c in listing.candidates if c.listed] == [12, 8, 4]
  # The run goes on from 12: the next save is 16 and 4, 8, 12 stay as they were.
  t = run.trainer
  ckpt = checkpointing.Checkpointer(str(workdir), t.model, t.optimizer, t.step, t.positions,
                                    max_to_keep=5)
  assert ckpt.resume().path.endswith('ckpt-12')
  t.step.assign(16)
  ckpt.save()
  t.step.assign(12)
  assert _digests(workdir, steps=(4, 8, 12)) == before
  assert [c.step for c in checkpoint_files.scan(str(workdir / 'checkpoints')).candidates
          if c.listed] == [16, 12, 8, 4]


def test_a_bad_state_file_alone_is_set_aside_and_the_run_starts(run, tmp_path):
  (tmp_path / 'checkpoints').mkdir()
  (tmp_path / 'checkpoints' / 'checkpoint').write_text('')  # TF's manager raised on it
  resumed = _resume(run, tmp_path)
  assert resumed.path is None and len(resumed.set_aside) == 1
  t = run.trainer
  ckpt = checkpointing.Checkpointer(str(tmp_path), t.model, t.optimizer, t.step, t.positions)
  ckpt.resume()
  t.step.assign(12)
  assert ckpt.save().endswith('ckpt-12')
  assert checkpoint_files.problem(checkpoint_files.scan(str(tmp_path / 'checkpoints'))
                                  .candidates[0]) is None


def test_leftovers_of_an_interrupted_save_are_cleared(run, tmp_path):
  workdir = _copy(run, tmp_path)
  checkpoints = workdir / 'checkpoints'
  before = _digests(workdir, steps=(4, 8, 12))
  temp = checkpoints / 'ckpt-16_temp'  # killed while writing shards
  temp.mkdir()
  shutil.copy(checkpoints / DATA, temp / 'part-00000-of-00001.data-00000-of-00001')
  shutil.copy(checkpoints / DATA, checkpoints / 'ckpt-16.data-00000-of-00001')  # killed in merge
  (checkpoints / 'ckpt-16.manifest.json.tmp123').write_text('{"half')
  resumed = _resume(run, workdir)
  assert resumed.path.endswith('ckpt-12') and not resumed.failures
  assert not temp.exists() and not (checkpoints / 'ckpt-16.manifest.json.tmp123').exists()
  (aside,) = resumed.set_aside
  assert (pathlib.Path(aside) / 'ckpt-16.data-00000-of-00001').exists()
  assert 'interrupted save' in (pathlib.Path(aside) / 'REASON.txt').read_text()
  assert _digests(workdir, steps=(4, 8, 12)) == before


def test_none_restorable_stops_and_restart_sets_them_aside(run, tmp_path):
  workdir = _copy(run, tmp_path)
  for step in (4, 8, 12):
    corrupt.zero(workdir / 'checkpoints' / f'ckpt-{step}.data-00000-of-00001')
  before = _digests(workdir, steps=(4, 8, 12))
  with pytest.raises(checkpointing.CheckpointRestoreError) as e:
    _resume(run, workdir)
  assert [f.rsplit('/', 1)[1] for f, _ in e.value.failures] == [
      f'ckpt-{s}.data-00000-of-00001' for s in (12, 8, 4)]
  assert 'pass --restart' in str(e.value)
  assert _digests(workdir, steps=(4, 8, 12)) == before  # nothing changed, nothing deleted
  trainer = loop.Trainer(configs.get_config(), str(workdir), data=synthetic, restart=True)
  assert trainer.resumed.path is None and int(trainer.step.numpy()) == 0
  (aside,) = trainer.resumed.set_aside
  assert len(list(pathlib.Path(aside).glob('ckpt-*.data-*'))) == 3
  assert 'restart' in (pathlib.Path(aside) / 'REASON.txt').read_text()
  assert checkpoint_files.scan(str(workdir / 'checkpoints')).candidates == []
  trainer.close()


@pytest.mark.slow
def test_cli_exits_4_listing_every_checkpoint(run, tmp_path):
  workdir = _copy(run, tmp_path)
  for step in (4, 8, 12):
    corrupt.truncate(workdir / 'checkpoints' / f'ckpt-{step}.index', 50)
  cmd = [sys.executable, '-m', 'polyvit_tf.train', f'--config={ROOT}/tests/faults/configs.py',
         f'--workdir={workdir}', '--data=tests.train.synthetic:refusing']
  env = {**os.environ, 'PYTHONPATH': str(ROOT), 'TF_CPP_MIN_LOG_LEVEL': '2',
         'CUDA_VISIBLE_DEVICES': ''}
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 4, proc.stderr[-3000:]
  for step in (4, 8, 12):
    assert f'ckpt-{step}.index: 50 bytes, the manifest says' in proc.stderr
  assert 'data was read' not in proc.stderr


def test_full_disk_keeps_the_last_checkpoint_restorable(run, tmp_path):
  """A tmpfs too small for a second checkpoint: the save fails with ENOSPC, the first one
  restores."""
  mount = tmp_path / 'small'
  mount.mkdir()
  size = 1024 * 1024  # one checkpoint (~350 KB) fits, the second's temp + merge does not
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(mount)],
                    capture_output=True).returncode:
    pytest.skip('cannot mount a tmpfs here (needs root)')
  try:
    t = run.trainer
    ckpt = checkpointing.Checkpointer(str(mount), t.model, t.optimizer, t.step, t.positions)
    ckpt.resume()
    t.step.assign(4)
    ckpt.save()
    filler = mount / 'filler'
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    filler.write_bytes(b'\0' * max(0, free - 200_000))
    t.step.assign(8)
    with pytest.raises((tf.errors.OpError, OSError), match='(?i)space'):
      ckpt.save()
    filler.unlink()
    resumed = _resume(run, mount)
    assert resumed.path.endswith('ckpt-4') and int(t.step.numpy()) == 4
    assert not list((mount / 'checkpoints').glob('*_temp'))
  finally:
    subprocess.run(['umount', str(mount)], check=False)
    run.trainer.step.assign(12)
