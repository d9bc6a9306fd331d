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
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading

import tensorflow as tf
from absl import logging

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.model import weights
from polyvit_tf.model.polyvit import PolyViT
from polyvit_tf.train import strategy as strategy_lib


def rng_states(model: PolyViT) -> dict[str, tf.Variable]:
  """Every SeedGenerator state variable of the model's layers, by a stable name."""
  states = {}
  for name, layer in model.layers().items():
    found = [v for v in layer.non_trainable_variables if 'seed_generator_state' in v.path]
    for i, v in enumerate(found):
      states[f'{name}_{i}'] = v
  return states


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
    write_dir = self.directory
    self._tmp = None
    if not self.is_chief:
      self._tmp = tempfile.mkdtemp(prefix='polyvit_worker_ckpt_')
      write_dir = self._tmp
    self.manager = tf.train.CheckpointManager(self.checkpoint, write_dir,
                                              max_to_keep=max_to_keep, checkpoint_name='ckpt')
    self.step = step

  def latest(self) -> str | None:
    return tf.train.latest_checkpoint(self.directory)

  def restore_latest(self) -> str | None:
    """Restores the newest checkpoint of the work directory (all nodes); None if none."""
    path = self.latest()
    if path is None:
      return None
    self.checkpoint.restore(path).assert_existing_objects_matched()
    return path

  def save(self) -> str:
    path = self.manager.save(checkpoint_number=int(self.step.numpy()))
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
