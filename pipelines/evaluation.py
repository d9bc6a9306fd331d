"""Evaluates an exported SavedModel per task on the Examples artifact's eval splits.

The model that gets pushed is the model that is evaluated: each task's tensor signature is
called on the eval pipeline's preprocessed views (polyvit_tf.data.pipeline.eval_dataset,
multi-crop where configured), and the views are combined and scored exactly as the trainer's
evaluator does (polyvit_tf.train.metrics).
"""

from __future__ import annotations

import ml_collections
import tensorflow as tf

from pipelines import trivial_baseline
from polyvit_tf.data import pipeline as data_pipeline
from polyvit_tf.model import spec as spec_lib
from polyvit_tf.train import metrics as metrics_lib


def evaluate_saved_model(saved_model_dir: str, config: ml_collections.ConfigDict,
                         split: str = 'eval') -> dict[str, dict]:
  """{task: {'top1', 'top5', 'loss', ['map'], 'num_examples', 'trivial_top1', ['trivial_map']}}
  of the SavedModel (trivial_*: pipelines/trivial_baseline.py, on the same examples)."""
  loaded = tf.saved_model.load(saved_model_dir)
  averaging = metrics_lib.view_averaging(config)
  results = {}
  for task in spec_lib.task_names(config):
    spec = spec_lib.task_spec(config, task)
    signature = loaded.signatures[task]
    acc = metrics_lib.TaskMetrics(spec.loss, spec.multilabel, averaging)
    trivial = trivial_baseline.TrivialBaseline(spec.multilabel)
    for batch in data_pipeline.eval_dataset(config, task, split=split):
      inputs = batch['inputs']
      b, v = inputs.shape[0], inputs.shape[1]
      flat = tf.reshape(inputs, (b * v,) + tuple(inputs.shape[2:]))
      logits = signature(**{spec.modality: flat})['logits']
      acc.update(tf.reshape(logits, (b, v, -1)).numpy(), batch['labels'].numpy(),
                 batch['mask'].numpy())
      trivial.update(batch['labels'].numpy(), batch['mask'].numpy())
    results[task] = {**acc.result(), **trivial.result()}
  return results
