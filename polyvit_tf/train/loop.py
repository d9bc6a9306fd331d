"""The co-training loop: `run(config, workdir)` trains per the config and evaluates at the end.

The host walks the schedule (a pure function of the config and seed): step s is of kind
schedule.step_at(s) (one task, or every task for the accumulated schedule) and trains with the
kind's rate lr * factor(s) through that kind's traced step function, so every replica and
every worker runs the same step without communicating.
State lives on the device and in checkpoints (model, optimizer, global step, per-task data
positions, RNG states); a restarted run restores the newest checkpoint of its work directory
that restores (older ones are tried when the newest is corrupt; checkpointing.py), re-opens
each task's data stream at its position (skip_batches) and continues the schedule.
"""

from __future__ import annotations

import importlib
import os
import json
import time

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.configs import io as config_io
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.model import polyvit as polyvit_lib
from polyvit_tf.model import weights
from polyvit_tf.train import checkpointing
from polyvit_tf.train import evaluation
from polyvit_tf.train import lr as lr_lib
from polyvit_tf.train import optim
from polyvit_tf.train import schedules
from polyvit_tf.train import strategy as strategy_lib
from polyvit_tf.train import summaries as summaries_lib
from polyvit_tf.train.steps import StepFactory

# Sections that may change between a run and its resumption (they do not affect the result
# of a step; `pipeline` is read by the TFX pipeline only); any other difference from
# <workdir>/config.json is an error.
RESUMABLE_SECTIONS = ('train', 'eval', 'distribution', 'pipeline')


class NonFiniteLossError(RuntimeError):
  """The loss or the gradient norm became NaN/inf; the run stopped without updating."""


class Preempted(RuntimeError):
  """SIGTERM (preemption) arrived; a checkpoint was saved and the run stopped."""


def default_data():
  """The default data provider: polyvit_tf.data.pipeline (imported only when needed)."""
  return importlib.import_module('polyvit_tf.data.pipeline')


def load_provider(spec: str = ''):
  """A data provider named `module` or `module:attribute` ('' = the default pipeline): any
  object with train_dataset(config, task, *, seed, batch_size=None, input_context=None,
  skip_batches=0) and eval_dataset(config, task, *, split='eval', batch_size=None,
  input_context=None)."""
  if not spec:
    return default_data()
  module, _, attribute = spec.partition(':')
  provider = importlib.import_module(module)
  if attribute:
    provider = getattr(provider, attribute)
  for method in ('train_dataset', 'eval_dataset'):
    if not callable(getattr(provider, method, None)):
      raise ValueError(f'data provider {spec!r} has no {method}().')
  return provider


def validate_eval_config(config: ml_collections.ConfigDict) -> specs_lib.Specs:
  """Checks what an evaluation reads (model, tasks, modalities, data, eval, distribution);
  raises ConfigError naming the offending key. Returns the resolved specs."""
  return specs_lib.resolve(config).validate('model', 'tasks', 'modalities', 'data', 'eval',
                                            'distribution')


def validate_config(config: ml_collections.ConfigDict
                    ) -> tuple[schedules.Schedule, lr_lib.LearningRate]:
  """Checks every section the trainer uses (before any data is read); raises ConfigError
  naming the offending key. Returns the schedule and learning rates."""
  specs_lib.resolve(config).validate()
  schedule = schedules.build(config)
  return schedule, lr_lib.from_config(config, schedule)


def check_batch_sizes(config: ml_collections.ConfigDict, replicas: int, *,
                      training: bool = True) -> None:
  """Every global batch (the tasks' when `training`, the evaluation's) splits evenly over
  the strategy's replicas."""
  spec = specs_lib.resolve(config)
  sizes = {f'tasks.{t}.batch_size': spec.training[t].batch_size
           for t in spec.task_names} if training else {}
  sizes['eval.batch_size'] = spec.eval.batch_size
  for key, size in sizes.items():
    if size % replicas:
      raise ConfigError(f'{key}={size} is not divisible by the {replicas} replicas of the '
                        'strategy.')


def _flat(d: dict, prefix: str = '') -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def config_differences(a: ml_collections.ConfigDict, b: ml_collections.ConfigDict,
                       ignore=RESUMABLE_SECTIONS) -> list[str]:
  """Dotted keys whose values differ between two configs (outside `ignore` sections)."""
  fa = _flat(json.loads(a.to_json(sort_keys=True)))
  fb = _flat(json.loads(b.to_json(sort_keys=True)))
  keys = sorted(set(fa) | set(fb))
  return [k for k in keys if k.split('.')[0] not in ignore and fa.get(k) != fb.get(k)]


class Trainer:
  """Owns a run: strategy, model, optimizer, steps, checkpoints, summaries, evaluation.

  `trainable`: 'all' (co-training) or 'heads' (linear probes: the encoder is frozen and run
  in inference mode). `init_fn(model)` replaces `config.init` as the initialisation of a
  fresh run (the probe uses it to load a trained encoder). `restart`: train from step 0 even
  though the work directory has checkpoints (they are set aside, not deleted).
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, *, data=None,
               strategy: tf.distribute.Strategy | None = None, trainable: str = 'all',
               init_fn=None, restart: bool = False):
    self.schedule, self.rates = validate_config(config)
    if trainable not in ('all', 'heads'):
      raise ValueError(f"trainable must be 'all' or 'heads', got {trainable!r}")
    self._check_workdir_config(config, workdir)
    self.config, self.workdir = config, workdir
    self.spec = specs_lib.resolve(config)
    self.tasks = list(self.spec.task_names)
    override = self.spec.train.total_steps_override
    self.num_steps = (min(override, self.schedule.num_steps) if override
                      else self.schedule.num_steps)
    self.strategy = strategy or strategy_lib.from_config(config)
    check_batch_sizes(config, self.strategy.num_replicas_in_sync)
    self.data = data if data is not None else default_data()
    self.is_chief = bool(self.strategy.extended.should_checkpoint)
    with self.strategy.scope():
      self.model = polyvit_lib.build(config, seed=int(config.seed),
                                     mixed_precision=self.spec.train.mixed_precision)
      variables = self.model.trainable_variables
      if trainable == 'heads':
        heads = {id(v) for t in self.tasks for v in self.model.heads[t].trainable_variables}
        variables = [v for v in variables if id(v) in heads]
      self.optimizer = optim.Optimizer(config, variables)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
      self.positions = {t: tf.Variable(0, dtype=tf.int64, trainable=False, name=f'data_{t}')
                        for t in self.tasks}
    self.steps = StepFactory(self.model, self.optimizer, self.strategy, config,
                             step=self.step, data_positions=self.positions,
                             encoder_training=trainable == 'all')
    self.evaluator = evaluation.Evaluator(self.model, config, self.strategy, self.data)
    self.checkpointer = checkpointing.Checkpointer(
        workdir, self.model, self.optimizer, self.step, self.positions,
        max_to_keep=self.spec.train.max_checkpoints_to_keep, strategy=self.strategy)
    self.summaries = summaries_lib.Summaries(workdir, self.tasks, enabled=self.is_chief)
    self.resumed = self.checkpointer.resume(restart=restart)
    if self.resumed.path:
      logging.info('Resumed from %s at step %d.', self.resumed.path, int(self.step.numpy()))
    else:
      self._initialise(init_fn)
      if self.is_chief:
        workdir_lib.save_config(workdir, config)
    logging.info('%s; schedule %s: %d steps (%s); %d trainable tensors.',
                 strategy_lib.describe(self.strategy), self.schedule.name, self.num_steps,
                 ', '.join(f'{t}: {n}' for t, n in
                           self.schedule.counts(self.num_steps).items()),
                 len(variables))

  @staticmethod
  def _check_workdir_config(config, workdir):
    if not tf.io.gfile.exists(workdir_lib.config_path(workdir)):
      return
    saved = config_io.load(workdir_lib.config_path(workdir))
    diff = config_differences(saved, config)
    if diff:
      raise ConfigError(f'{workdir_lib.config_path(workdir)}: the work directory was started '
                        f'with a different config; differing keys: {diff}. Use a new '
                        '--workdir or the same config.')

  def _initialise(self, init_fn) -> None:
    if init_fn is not None:
      init_fn(self.model)
      return
    init = self.config.get('init')
    if init is not None and init.get('source'):
      from polyvit_tf import checkpoints  # pylint: disable=import-outside-toplevel
      report = checkpoints.initialise_from_config(self.model, self.config)
      logging.info('Initialised from %s:\n%s', init.source, report)

  # -------------------------------------------------------------------------- training
  def _iterator(self, task: str, skip: int):
    config, data, seed, strategy = self.config, self.data, int(self.config.seed), self.strategy

    def fn(ctx: tf.distribute.InputContext):
      # A step takes one per-replica batch for each of the pipeline's local replicas, so
      # `skip` steps are skip * local_replicas elements of this pipeline's stream.
      local_replicas = max(1, ctx.num_replicas_in_sync // ctx.num_input_pipelines)
      return strategy_lib.adapt_dataset(
          data.train_dataset(config, task, seed=seed, input_context=ctx,
                             skip_batches=skip * local_replicas),
          strategy)

    return iter(self.strategy.distribute_datasets_from_function(fn))

  def save(self) -> str:
    path = self.checkpointer.save()
    logging.info('Saved checkpoint %s', path)
    return path

  def train(self) -> int:
    """Runs the schedule from the current step to the end; returns the final step."""
    start, total = int(self.step.numpy()), self.num_steps
    expected = self.schedule.counts(start)
    actual = {t: int(v.numpy()) for t, v in self.positions.items()}
    if actual != expected:
      raise RuntimeError(f'checkpoint data positions {actual} do not match schedule '
                         f'{self.schedule.name} at step {start} ({expected}).')
    if start >= total:
      logging.info('Nothing to train: step %d of %d.', start, total)
      return start
    iterators = {t: self._iterator(t, actual[t]) for t in self.tasks}
    watcher = checkpointing.PreemptionWatcher(
        self.strategy, self.spec.train.preemption_sync_every_steps)
    progress = summaries_lib.Progress(total, start)
    train, log_every = self.spec.train, self.spec.train.log_every_steps
    last_saved = start
    try:
      for s in range(start, total):
        kind = self.schedule.step_at(s)
        rate = self.rates(kind.rate_key, s)
        t0 = time.monotonic()
        task_losses, norm, ok = self.steps.step_fn(kind)(
            tuple(iterators[t] for t in kind.tasks), tf.constant(rate, tf.float32))
        values = [float(l) for l in task_losses]
        seconds = (time.monotonic() - t0) / len(kind.tasks)
        for t, v in zip(kind.tasks, values):
          progress.record(t, v, float(norm), rate, self.spec.training[t].batch_size, seconds)
        loss_value, label = sum(values), kind.label
        if not bool(ok):
          raise NonFiniteLossError(
              f'Non-finite loss {loss_value} (gradient norm {float(norm)}) at step {s} '
              f'(task {label}); the update was not applied and training stopped. The last '
              f'good checkpoint is {self.checkpointer.latest() or "none (nothing saved yet)"}.')
        done = s + 1
        if done % log_every == 0 or done == total:
          progress.flush(done, self.summaries)
        if train.checkpoint_every_steps and done % train.checkpoint_every_steps == 0:
          self.save()
          last_saved = done
        if train.eval_every_steps and done % train.eval_every_steps == 0 and done < total:
          split = self.spec.eval.periodic_split
          results = self.evaluator.evaluate(split)
          self.summaries.eval(done, split, results)
          logging.info('Evaluation at step %d:\n%s', done,
                       evaluation.format_table(results, f'{split} split'))
        if watcher.should_stop(done):
          if last_saved != done:
            self.save()
          raise Preempted(f'Preempted (SIGTERM) at step {done}; checkpoint saved.')
      if last_saved != total:
        self.save()
    finally:
      watcher.close()
      self.summaries.flush()
    return total

  def evaluate(self, split: str = 'eval', write: bool = True) -> dict:
    results = self.evaluator.evaluate(split)
    step = int(self.step.numpy())
    self.summaries.eval(step, split, results)
    self.summaries.flush()
    if write and self.is_chief:
      evaluation.write_report(self.workdir, results, split, step)
    logging.info('\n%s', evaluation.format_table(results, f'{split} split at step {step}'))
    return results

  def close(self) -> None:
    self.checkpointer.close()


def run(config: ml_collections.ConfigDict, workdir: str, *, data=None,
        restart: bool = False) -> dict:
  """Trains per `config` in `workdir` (resuming from its newest good checkpoint, or from
  step 0 with `restart`), evaluates on the eval split, writes <workdir>/eval/metrics.json and
  returns {task: {'top1', 'top5', 'loss', ['map'], 'num_examples'}}."""
  trainer = Trainer(config, workdir, data=data, restart=restart)
  try:
    trainer.train()
    results = trainer.evaluate('eval')
    report_bad_examples(workdir, write=trainer.is_chief)
    return results
  finally:
    trainer.close()


def report_bad_examples(workdir: str, *, write: bool = True) -> dict:
  """Logs the examples the data pipelines skipped (per task and reason, with ids) and
  writes them to <workdir>/eval/bad_examples.json; returns {task: {reason: count}}."""
  from polyvit_tf.data import errors  # pylint: disable=g-import-not-at-top
  summary = errors.BAD_EXAMPLES.summary()
  if summary:
    logging.warning('skipped bad examples:\n%s', errors.BAD_EXAMPLES.report())
  if write:
    path = os.path.join(workdir, workdir_lib.EVAL, 'bad_examples.json')
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, 'w') as f:
      json.dump({'distinct': summary, 'events': errors.BAD_EXAMPLES.events(),
                 'ids': {t: errors.BAD_EXAMPLES.ids(t) for t in summary}}, f, indent=2,
                sort_keys=True)
  return summary


def evaluate(config: ml_collections.ConfigDict, workdir: str, *, data=None,
             split: str = 'eval', checkpoint: str | None = None,
             strategy: tf.distribute.Strategy | None = None) -> dict:
  """Evaluates the newest (or the given) checkpoint of `workdir` on `split` of every task,
  writes <workdir>/eval/metrics[_<split>].json and report_<split>.md, returns the metrics."""
  validate_eval_config(config)
  if split not in evaluation.SPLITS:
    raise ConfigError(f'split: {split!r} is not one of {list(evaluation.SPLITS)}.')
  strategy = strategy or strategy_lib.from_config(config)
  check_batch_sizes(config, strategy.num_replicas_in_sync, training=False)
  data = data if data is not None else default_data()
  path = checkpoint or workdir_lib.latest_checkpoint(workdir)
  _, model = workdir_lib.load_model(workdir, path, config=config, strategy=strategy,
                                    training_precision=True)
  results = evaluation.Evaluator(model, config, strategy, data).evaluate(split)
  if strategy.extended.should_checkpoint:
    evaluation.write_report(workdir, results, split)
  logging.info('\n%s', evaluation.format_table(results, f'{split} split ({path})'))
  return results


def final_weights(trainer: Trainer) -> dict[str, np.ndarray]:
  """The model's trainable weights by name (tests and tools compare runs with it)."""
  return weights.get(trainer.model)
