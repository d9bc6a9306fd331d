"""Evaluation of every task: multi-crop predictions, metrics over all replicas, reports.

Eval data (`data.eval_dataset`) is finite, padded to full batches with mask 0, and carries V
views per example (multi-crop: video temporal x spatial views, audio clips; V = 1 for images).
The eval step runs every view through the task's model on every replica and combines each
example's views into its prediction (polyvit_tf/model/prediction.py, the path the exported
signatures and the TFX evaluator take), then gathers predictions, labels and masks from
every replica of every worker; the host computes top-1/top-5/loss (and mAP for multi-label
tasks) over all real examples (metrics.py). Reports: <workdir>/eval/metrics.json (split
'eval'; the TFX Evaluator reads it) or metrics_<split>.json, plus a Markdown table
report_<split>.md.
"""

from __future__ import annotations

import json
import math
import os
from typing import Sequence

import ml_collections
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.model import prediction as prediction_lib
from polyvit_tf.model.polyvit import PolyViT
from polyvit_tf.train import metrics as metrics_lib
from polyvit_tf.train import strategy as strategy_lib

SPLITS = tuple(specs_lib.SPLIT_FIELDS)


class Evaluator:
  """Evaluates a model on a split of every task, under a tf.distribute strategy."""

  def __init__(self, model: PolyViT, config: ml_collections.ConfigDict,
               strategy: tf.distribute.Strategy, data):
    self.model, self.config, self.strategy, self.data = model, config, strategy, data
    self.spec = specs_lib.resolve(config)
    self._steps: dict = {}
    self._replica: dict = {}

  def replica_fn(self, task: str):
    """(batch) -> (logits, probabilities, labels, mask) of one replica's batch of `task`;
    with `train.use_xla` a jit_compile tf.function (compiled whole, as on a TPU)."""
    self.eval_step(task)
    return self._replica[task]

  def eval_step(self, task: str):
    """tf.function (distributed batch) -> (logits (B, C), probabilities (B, C), labels,
    mask): the task's predictions, gathered from every replica of every worker."""
    if task in self._steps:
      return self._steps[task]
    keras_model = self.model.model_for(task)
    predicting = prediction_lib.PredictionSpec.of(self.spec, task)
    strategy = self.strategy

    def replica_eval(batch):
      p = prediction_lib.predict(lambda x: keras_model(x, training=False), batch['inputs'],
                                 predicting)
      return (p.logits, p.probabilities, tf.cast(batch['labels'], tf.float32),
              tf.cast(batch['mask'], tf.float32))

    if self.spec.train.use_xla and not strategy_lib.is_tpu(strategy):
      replica_eval = tf.function(replica_eval, jit_compile=True)  # a TPU compiles it itself

    @tf.function
    def step(batch):
      # A plain callable, so every replica calls the compiled function on its own device
      # (a tf.function passed to a mirrored strategy over CPUs is lifted over all of them).
      out = strategy.run(lambda b: replica_eval(b), args=(batch,))  # pylint: disable=unnecessary-lambda
      return tuple(strategy.gather(o, axis=0) for o in out)

    self._steps[task], self._replica[task] = step, replica_eval
    return step

  def _dataset(self, task: str, split: str):
    config, data, strategy = self.config, self.data, self.strategy
    max_examples, global_batch = self.spec.eval.max_examples, self.spec.eval.batch_size

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
    for task in tasks or self.model.task_names:
      t = self.spec.task(task)
      acc = metrics_lib.TaskMetrics(t.loss, t.multilabel, self.spec.eval.view_averaging)
      step = self.eval_step(task)
      for batch in self._dataset(task, split):
        logits, probabilities, labels, mask = step(batch)
        acc.update(logits.numpy(), probabilities.numpy(), labels.numpy(), mask.numpy())
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
