"""Evaluation of every task: multi-crop averaging, metrics over all replicas, reports.

Eval data (`data.eval_dataset`) is finite, padded to full batches with mask 0, and carries V
views per example (multi-crop: video temporal x spatial views, audio clips; V = 1 for images).
The eval step runs all B x V views through the task's model on every replica and gathers
logits, labels and masks from every replica of every worker; the host averages each
example's views and computes top-1/top-5/loss (and mAP for multi-label tasks) over all real
examples (see metrics.py). Reports: <workdir>/eval/metrics.json (split 'eval'; the TFX
Evaluator reads it) or metrics_<split>.json, plus a Markdown table report_<split>.md.
"""

from __future__ import annotations

import json
import math
import os
from typing import Sequence

import ml_collections
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.train import metrics as metrics_lib
from polyvit_tf.train import strategy as strategy_lib
from polyvit_tf.train.steps import StepFactory

SPLITS = ('eval', 'validation', 'train')


class Evaluator:
  """Evaluates a run's model on a split of every task."""

  def __init__(self, config: ml_collections.ConfigDict, strategy: tf.distribute.Strategy,
               steps: StepFactory, data):
    self.config, self.strategy, self.steps, self.data = config, strategy, steps, data

  def _dataset(self, task: str, split: str):
    config, data, strategy = self.config, self.data, self.strategy
    max_examples = int(config.eval.get('max_examples', 0) or 0)
    global_batch = int(config.eval.batch_size)

    def fn(ctx: tf.distribute.InputContext):
      ds = data.eval_dataset(config, task, split=split, input_context=ctx)
      if max_examples > 0:
        local_replicas = max(1, ctx.num_replicas_in_sync // ctx.num_input_pipelines)
        ds = ds.take(math.ceil(max_examples / global_batch) * local_replicas)
      return strategy_lib.adapt_dataset(ds, strategy)

    return self.strategy.distribute_datasets_from_function(fn)

  def evaluate(self, split: str = 'eval',
               tasks: Sequence[str] | None = None) -> dict[str, dict]:
    """{task: {'top1', 'top5', 'loss', ['map'], 'num_examples'}} on `split`."""
    if split not in SPLITS:
      raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    results = {}
    model = self.steps.model
    for task in tasks or model.task_names:
      spec = model.task(task)
      acc = metrics_lib.TaskMetrics(spec.loss, spec.multilabel,
                                    metrics_lib.view_averaging(self.config))
      step = self.steps.eval_step(task)
      for batch in self._dataset(task, split):
        logits, labels, mask = step(batch)
        acc.update(logits.numpy(), labels.numpy(), mask.numpy())
      results[task] = acc.result()
    return results


def metrics_path(workdir: str, split: str = 'eval') -> str:
  name = 'metrics.json' if split == 'eval' else f'metrics_{split}.json'
  return os.path.join(workdir, workdir_lib.EVAL, name)


def format_table(results: dict[str, dict], title: str = '') -> str:
  """A Markdown table of per-task metrics (percentages)."""
  pct = lambda x: 'n/a' if x is None or x != x else f'{100 * x:.2f}'  # noqa: E731
  lines = ([f'### {title}', ''] if title else []) + [
      '| task | top-1 (%) | top-5 (%) | loss | mAP (%) | examples |',
      '|---|---|---|---|---|---|']
  for task, m in results.items():
    lines.append(f'| {task} | {pct(m["top1"])} | {pct(m["top5"])} | {m["loss"]:.4f} | '
                 f'{pct(m.get("map"))} | {m["num_examples"]} |')
  return '\n'.join(lines) + '\n'


def write_report(workdir: str, results: dict[str, dict], split: str = 'eval',
                 step: int | None = None) -> str:
  """Writes metrics JSON and a Markdown table under <workdir>/eval/; returns the JSON path."""
  path = metrics_path(workdir, split)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(results, f, indent=2, sort_keys=True)
  title = f'{split} split' + (f' at step {step}' if step is not None else '')
  with tf.io.gfile.GFile(os.path.join(os.path.dirname(path), f'report_{split}.md'), 'w') as f:
    f.write(format_table(results, title))
  return path
