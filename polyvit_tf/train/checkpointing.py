"""Training checkpoints: everything an exact resume needs, and SIGTERM/preemption saves.

A training checkpoint (tf.train.CheckpointManager in <workdir>/checkpoints/) holds:
  model      polyvit_tf.model.weights.checkpoint(model) (what export/evaluation restore)
  optimizer  the shared optimizer state (slots, update count)
  step       the global step = the position in the schedule (a pure function of the config)
  data       per task, the number of training batches consumed (the data position; the
             pipeline resumes with skip_batches=that number)
  rng        the state of every stochastic-depth/dropout SeedGenerator of the model, so the
             drop masks after a resume are the ones the uninterrupted run draws.
Under MultiWorkerMirroredStrategy every worker saves (saving is collective) but only the
chief writes to the work directory; the others write to a temporary directory.

Resuming (`Checkpointer.resume`) tries the checkpoints newest first: one whose files are
missing, differ from its manifest (checkpoint_files.py) or fail to restore is reported (file,
reason) and the next older one is tried. The chief then sets the newer bad ones aside
(`checkpoints/set_aside/`, never deleted), removes TF's `ckpt-N_temp/` leftovers and rewrites
the `checkpoint` state file from the checkpoints themselves when it is garbage, empty or
stale. When checkpoints exist but none restores, CheckpointRestoreError lists them all; the
run never starts from step 0 over them unless `restart=True` (then they are set aside first).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import tempfile
import threading

import tensorflow as tf
from absl import logging

from polyvit_tf import error_text
from polyvit_tf import workdir as workdir_lib
from polyvit_tf.model import weights
from polyvit_tf.model.polyvit import PolyViT
from polyvit_tf.train import checkpoint_files as files_lib
from polyvit_tf.train import strategy as strategy_lib


def rng_states(model: PolyViT) -> dict[str, tf.Variable]:
  """Every SeedGenerator state variable of the model's layers, by a stable name."""
  states = {}
  for name, layer in model.layers().items():
    found = [v for v in layer.non_trainable_variables if 'seed_generator_state' in v.path]
    for i, v in enumerate(found):
      states[f'{name}_{i}'] = v
  return states


class CheckpointRestoreError(RuntimeError):
  """Checkpoints exist but none could be restored; `failures` lists (file, reason)."""

  def __init__(self, directory: str, failures: list[tuple[str, str]]):
    self.failures = failures
    lines = '\n'.join(f'  {f}: {r}' for f, r in failures)
    super().__init__(
        f'{directory}: no checkpoint could be restored:\n{lines}\nNothing was changed. '
        'Restore a good copy, or pass --restart to set these aside and train from step 0.')


@dataclasses.dataclass
class Resumed:
  """What `Checkpointer.resume` did: the checkpoint restored (None: fresh start), the
  checkpoints that failed (file, reason) and where files were moved."""
  path: str | None
  failures: list[tuple[str, str]]
  set_aside: list[str]


class Checkpointer:
  """Saves and restores the training state of a run in its work directory."""

  def __init__(self, workdir: str, model: PolyViT, optimizer, step: tf.Variable,
               data_positions: dict[str, tf.Variable], *, max_to_keep: int = 3,
               strategy: tf.distribute.Strategy | None = None):
    strategy = strategy or tf.distribute.get_strategy()
    self.is_chief = bool(strategy.extended.should_checkpoint)
    self.directory = workdir_lib.checkpoint_dir(workdir)
    self.checkpoint = tf.train.Checkpoint(
        model=weights.checkpoint(model), optimizer=optimizer, step=step,
        data=tf.train.Checkpoint(**data_positions),
        rng=tf.train.Checkpoint(**rng_states(model)))
    self._tmp = None
    self._write_dir = self.directory
    if not self.is_chief:
      self._tmp = tempfile.mkdtemp(prefix='polyvit_worker_ckpt_')
      self._write_dir = self._tmp
    self._max_to_keep = max_to_keep
    self._manager = None
    self.step = step

  @property
  def manager(self) -> tf.train.CheckpointManager:
    """Created after `resume` has put the state file right (it reads it once)."""
    if self._manager is None:
      self._manager = tf.train.CheckpointManager(
          self.checkpoint, self._write_dir, max_to_keep=self._max_to_keep,
          checkpoint_name=files_lib.NAME)
    return self._manager

  def latest(self) -> str | None:
    return tf.train.latest_checkpoint(self.directory)

  def _try(self, candidate: files_lib.Candidate) -> tuple[str, str] | None:
    found = files_lib.problem(candidate)
    if found:
      return found
    try:
      self.checkpoint.restore(candidate.prefix).assert_existing_objects_matched()
    except Exception as e:  # pylint: disable=broad-except
      return candidate.prefix, error_text.short(e, 300)
    return None

  def resume(self, restart: bool = False) -> Resumed:
    """Restores the newest checkpoint that restores (all nodes); see the module docstring."""
    listing = files_lib.scan(self.directory)
    real, leftovers = listing.real(), listing.leftovers()
    moved = []
    if listing.state.startswith('unreadable'):
      logging.warning('%s: state file %s; recovering from the checkpoint files.',
                      self.directory, listing.state)
    if restart and listing.candidates:
      if self.is_chief:
        paths = [p for c in listing.candidates for p in c.files()] + [
            os.path.join(self.directory, files_lib.STATE)]
        moved.append(files_lib.set_aside(self.directory, paths, 'restart',
                                         'set aside by --restart'))
        logging.warning('--restart: moved the checkpoints of %s to %s; training from step 0.',
                        self.directory, moved[-1])
      real, leftovers = [], []
    failures, restored = [], None
    for candidate in real:
      found = self._try(candidate)
      if found is None:
        restored = candidate
        if not candidate.manifest:
          logging.warning('%s has no manifest: checked by TF\'s restore only.', candidate.prefix)
        break
      failures.append(found)
      logging.warning('checkpoint %s cannot be restored: %s: %s; trying the next older one.',
                      candidate.prefix, *found)
    if real and restored is None:
      raise CheckpointRestoreError(self.directory, failures)
    if self.is_chief:
      moved += self._tidy(listing, real, leftovers, restored, failures)
    return Resumed(restored.prefix if restored else None, failures, moved)

  def _tidy(self, listing, real, leftovers, restored, failures) -> list[str]:
    """Chief only: sets aside what failed and what an interrupted save left, removes TF's
    temp directories, and makes the state file name the restored checkpoint."""
    moved = []
    files_lib.remove_temp(listing)
    bad = [c for c in real if restored is None or c.step > restored.step]
    for c, (path, reason) in zip(bad, failures):
      if not c.files():
        continue
      moved.append(files_lib.set_aside(self.directory, c.files(), c.prefix.rsplit('/', 1)[-1],
                                       f'{path}: {reason}'))
    for c in leftovers:
      moved.append(files_lib.set_aside(self.directory, c.files(), c.prefix.rsplit('/', 1)[-1],
                                       'leftover of an interrupted save (no index file)'))
    state = os.path.join(self.directory, files_lib.STATE)
    if restored is None and listing.state.startswith('unreadable') and tf.io.gfile.exists(state):
      # no checkpoint at all: the manager must not read that state file
      moved.append(files_lib.set_aside(self.directory, [state], files_lib.STATE,
                                       f'state file {listing.state}'))
    for path in moved:
      logging.warning('set aside: %s', path)
    if restored is not None:
      keep = [c for c in real if c.step < restored.step and c.index and c.data]
      if not files_lib.state_matches(listing, keep, restored):
        files_lib.write_state(listing, keep, restored)
        logging.warning('%s: state file rewritten (newest: %s).', self.directory,
                        restored.prefix)
    return moved

  def save(self) -> str:
    path = self.manager.save(checkpoint_number=int(self.step.numpy()))
    if self.is_chief:
      files_lib.write_manifest(path)
      files_lib.prune_manifests(self.directory)
    return os.path.join(self.directory, os.path.basename(path)) if self.is_chief else path

  def close(self) -> None:
    if self._tmp:
      shutil.rmtree(self._tmp, ignore_errors=True)


class PreemptionWatcher:
  """Turns SIGTERM into a flag the loop checks between steps (then it saves and stops).

  With several workers the flag is agreed on (an all-reduce sum) every `sync_every` steps,
  so all workers save the same step together.
  """

  def __init__(self, strategy: tf.distribute.Strategy, sync_every: int = 10):
    self._flag = threading.Event()
    self._strategy = strategy
    self._multi_worker = strategy_lib.is_multi_worker(strategy)
    self._sync_every = max(1, int(sync_every))
    self._previous = None
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_signal)
    if self._multi_worker:
      @tf.function
      def agree(flag):
        per_replica = strategy.run(lambda f: tf.identity(f), args=(flag,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
      self._agree = agree

  def _on_signal(self, signum, frame):  # pylint: disable=unused-argument
    logging.warning('SIGTERM received: saving a checkpoint after the current step.')
    self._flag.set()

  def request(self) -> None:
    self._flag.set()

  def should_stop(self, step: int) -> bool:
    if not self._multi_worker:
      return self._flag.is_set()
    if step % self._sync_every:
      return False
    flag = tf.constant(1.0 if self._flag.is_set() else 0.0)
    return bool(self._agree(flag).numpy() > 0)

  def close(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
