"""Linear probes (Sec. 5.4, Appendix D): a frozen encoder, a new linear head per task.

For every task of the probe config, and every learning rate of the task's grid, a Trainer with
only that task trains a fresh head (the task's `head_init`) for the task's train_steps, with its
warmup, batch size and data augmentation, while every other weight stays as loaded from the
source work directory (the encoder runs in inference mode: no stochastic depth). A task's grid
is `tasks.<t>.probe_learning_rates` when the task sets it (Table 9: {0.03, 0.1, 0.3} for the
image probes, one fixed rate for video and audio; `configs/paper.py:table9_probes`), else
`eval.probe_learning_rates`; the caller (CLI `--learning_rates`) may override both. With
several rates, the one with the best validation score (`eval.probe_split`; top-1, or mAP for
multi-label tasks) is selected and that run's eval-split metrics are reported; one rate needs
no validation run.

Weights come from `polyvit_tf.checkpoints.initialise_from_workdir`: same-named layers are
copied; a modality the source lacks is converted from one it has (Appendix D: frames summed
or repeated, position embeddings averaged / resized), per the config's `init` options. The
probe's encoder (model section) is the source's; tasks and modalities are the probe config's,
except that each probe tokenizer takes the (spatial) patch size of the source tokenizer it is
loaded or converted from (patch kernels cannot be resampled).
Outputs: <workdir>/<task>/lr_<lr>/ (one run each) and <workdir>/eval/probe.json + probe.md.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from polyvit_tf import modalities
from polyvit_tf import workdir as workdir_lib
from polyvit_tf.model import weights
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.train import evaluation
from polyvit_tf.train import loop


def probe_config(config: ml_collections.ConfigDict, source_workdir: str, task: str,
                 learning_rate: float) -> ml_collections.ConfigDict:
  """The single-task config of one probe run: the source's encoder, the probe task."""
  source = workdir_lib.load_config(source_workdir)
  cfg = ml_collections.ConfigDict(config.to_dict())
  cfg.model = ml_collections.ConfigDict(source.model.to_dict())
  tasks = {task: ml_collections.ConfigDict(config.tasks[task].to_dict())}
  tasks[task].learning_rate = float(learning_rate)
  cfg.tasks = ml_collections.ConfigDict(tasks)
  modality = tasks[task].modality
  cfg.modalities = ml_collections.ConfigDict({modality: config.modalities[modality].to_dict()})
  _use_source_patch(cfg, source, modality)
  cfg.schedule.name = 'weighted'
  cfg.schedule.task_order = ()
  # The encoder is frozen and only this task's head trains: idle parameters stay still.
  cfg.optimizer.idle_params = 'freeze_idle'
  if 'init' in cfg:
    cfg.init.source = ''  # the probe loads the source itself (init_fn below)
  return cfg


def _use_source_patch(cfg: ml_collections.ConfigDict, source: ml_collections.ConfigDict,
                      modality: str) -> None:
  """Gives the probe's tokenizer the source's (spatial) patch size: every tokenizer weight
  comes from the source, and patch kernels cannot be resampled (a modality the source lacks
  is converted from `init.crossmodal_source`, or image, video, audio in that order)."""
  from polyvit_tf.checkpoints import polyvit_ckpt  # pylint: disable=import-outside-toplevel
  if modality in source.modalities:
    ref = modality
  else:
    ref = cfg.init.get('crossmodal_source', '') if 'init' in cfg else ''
    ref = ref or next(m for m in polyvit_ckpt.crossmodal_order() if m in source.modalities)
  patch = tuple(cfg.modalities[modality].patch_size)
  new = modalities.get(modality).probe_patch_size(patch,
                                                  tuple(source.modalities[ref].patch_size))
  if new != patch:
    logging.info('Probe: modalities.%s.patch_size %s -> %s (the source %s tokenizer\'s).',
                 modality, patch, new, ref)
    cfg.modalities[modality].patch_size = new


def _initialiser(source_workdir: str, cfg: ml_collections.ConfigDict):
  def init(model) -> None:
    from polyvit_tf import checkpoints  # pylint: disable=import-outside-toplevel
    heads = {name: value for name, value in weights.get(model).items()
             if name.startswith('head_')}
    report = checkpoints.initialise_from_workdir(model, source_workdir,
                                                 checkpoints.init_options(cfg))
    weights.assign(model, heads, allow_missing=True)  # probes always start from a new head
    logging.info('Probe initialised from %s:\n%s', source_workdir, report)
  return init


def _finished(run_dir: str, task: str, split: str | None):
  """(validation, eval) metrics of a probe run that already finished, else None."""
  paths = [evaluation.metrics_path(run_dir, 'eval')]
  if split:
    paths.insert(0, evaluation.metrics_path(run_dir, split))
  if not all(tf.io.gfile.exists(p) for p in paths):
    return None
  found = []
  for path in paths:
    with tf.io.gfile.GFile(path) as f:
      found.append(json.load(f)[task])
  return (found[0], found[1]) if split else (None, found[0])


def _score(metrics: dict, multilabel: bool) -> float:
  value = metrics['map'] if multilabel else metrics['top1']
  return -np.inf if value != value else value


def task_learning_rates(config: ml_collections.ConfigDict, task: str,
                        override: Sequence[float] | None = None) -> list[float]:
  """The probe learning rates of `task`: `override`, else `tasks.<t>.probe_learning_rates`,
  else `eval.probe_learning_rates` (the config's are checked when it is resolved)."""
  if override:
    rates = [float(r) for r in override]
    if any(not r > 0 for r in rates):
      raise ConfigError(f'learning_rates must be positive, got {rates}.')
    return rates
  spec = specs_lib.resolve(config)
  return list(spec.training[task].probe_learning_rates or spec.eval.probe_learning_rates)


def plan(config: ml_collections.ConfigDict, source_workdir: str, *,
         learning_rates: Sequence[float] | None = None,
         tasks: Sequence[str] | None = None) -> dict[str, dict]:
  """The protocol of every probe run, checked before any data is read: {task: {learning
  rates, steps, warmup, batch size, augmentation, mixup, label smoothing, eval views, head
  init, patch size}}. Raises ConfigError naming the key of the first problem."""
  spec = specs_lib.resolve(config)
  out = {}
  for task in list(tasks or spec.task_names):
    spec.task(task)  # ConfigError naming the config's tasks
    rates = task_learning_rates(config, task, learning_rates)
    if (len(rates) > 1 and spec.eval.probe_split == 'validation'
        and not spec.data[task].splits['validation']):
      raise ConfigError(f'tasks.{task}.data.validation_split is empty; a learning-rate grid '
                        'search needs a validation split (or give one learning rate).')
    cfg = probe_config(config, source_workdir, task, rates[0])
    loop.validate_config(cfg)
    probe = specs_lib.resolve(cfg)
    t, training = probe.task(task), probe.training[task]
    out[task] = {
        'modality': t.modality, 'learning_rates': rates, 'train_steps': training.train_steps,
        'warmup_steps': training.warmup_steps, 'batch_size': training.batch_size,
        'augment': probe.data[task].augment, 'mixup_alpha': training.mixup_alpha,
        'label_smoothing': training.label_smoothing, 'eval_views': t.eval_views,
        'head_init': t.head_init, 'patch_size': list(probe.modality_of(task).patch_size)}
  return out


def run_probe(config: ml_collections.ConfigDict, source_workdir: str, workdir: str, *,
              data=None, learning_rates: Sequence[float] | None = None,
              tasks: Sequence[str] | None = None) -> dict:
  """Linear probes of the encoder in `source_workdir` on the tasks of `config`
  (`learning_rates` replaces every task's grid).

  Returns {task: {'learning_rate': best, 'validation': {lr: metrics}, 'eval': metrics}} and
  writes it to <workdir>/eval/probe.json (and a table to probe.md).
  """
  split = specs_lib.resolve(config).eval.probe_split
  # Every probe config is checked before any data is read.
  protocol = plan(config, source_workdir, learning_rates=learning_rates, tasks=tasks)
  results = {}
  for task, task_plan in protocol.items():
    rates = task_plan['learning_rates']
    multilabel = specs_lib.resolve(config).task(task).multilabel
    runs = {}
    for rate in rates:
      cfg = probe_config(config, source_workdir, task, rate)
      run_dir = os.path.join(workdir, task, f'lr_{rate:g}')
      runs[rate] = _finished(run_dir, task, split if len(rates) > 1 else None)
      if runs[rate]:
        continue
      trainer = loop.Trainer(cfg, run_dir, data=data, trainable='heads',
                             init_fn=_initialiser(source_workdir, cfg))
      try:
        trainer.train()
        validation = trainer.evaluate(split, write=True)[task] if len(rates) > 1 else None
        test = trainer.evaluate('eval', write=True)[task]
      finally:
        trainer.close()
      runs[rate] = (validation, test)
    best = max(rates, key=lambda r: _score(runs[r][0], multilabel) if runs[r][0] else 0.0)
    results[task] = {'learning_rate': best,
                     'validation': {f'{r:g}': runs[r][0] for r in rates if runs[r][0]},
                     'eval': runs[best][1]}
    logging.info('Probe %s: best learning rate %g, eval %s', task, best, runs[best][1])
  write_report(workdir, results, source_workdir)
  return results


def write_report(workdir: str, results: dict, source: str) -> str:
  path = os.path.join(workdir, workdir_lib.EVAL, 'probe.json')
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump({'source': source, 'tasks': results}, f, indent=2, sort_keys=True)
  pct = lambda x: 'n/a' if x is None or x != x else f'{100 * x:.2f}'  # noqa: E731
  lines = [f'### Linear probes of {source}', '',
           '| task | learning rate | top-1 (%) | top-5 (%) | mAP (%) | examples |',
           '|---|---|---|---|---|---|']
  for task, r in results.items():
    m = r['eval']
    lines.append(f'| {task} | {r["learning_rate"]:g} | {pct(m["top1"])} | {pct(m["top5"])} | '
                 f'{pct(m.get("map"))} | {m["num_examples"]} |')
  with tf.io.gfile.GFile(os.path.join(os.path.dirname(path), 'probe.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return path
