"""Evaluates an exported SavedModel per task on the Examples artifact's eval splits.

The model that gets pushed is the model that is evaluated, and scored the way it serves: each
task's tensor signature gives the logits of the eval pipeline's preprocessed views
(polyvit_tf.data.pipeline.eval_dataset, multi-crop where configured), and the views are
combined into probabilities by the one prediction path (polyvit_tf/model/prediction.py) that
the exported multi-view signatures and the trainer's evaluator use; metrics as the trainer's
(polyvit_tf.train.metrics).
"""

from __future__ import annotations

from typing import Iterator

import ml_collections
import tensorflow as tf

from pipelines import trivial_baseline
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import pipeline as data_pipeline
from polyvit_tf.model import prediction as prediction_lib
from polyvit_tf.train import metrics as metrics_lib


def task_predictions(loaded, config: ml_collections.ConfigDict, task: str,
                     split: str = 'eval') -> Iterator[tuple[prediction_lib.Prediction, dict]]:
  """(prediction, batch) of every eval batch of `task`: the loaded SavedModel's tensor
  signature on each view, the views combined by the one prediction path."""
  spec = specs_lib.resolve(config)
  signature, key = loaded.signatures[task], spec.task(task).modality
  logits_fn = lambda x: signature(**{key: x})['logits']  # noqa: E731
  predicting = prediction_lib.PredictionSpec.of(spec, task)
  for batch in data_pipeline.eval_dataset(config, task, split=split):
    yield prediction_lib.predict(logits_fn, batch['inputs'], predicting), batch


def evaluate_saved_model(saved_model_dir: str, config: ml_collections.ConfigDict,
                         split: str = 'eval') -> dict[str, dict]:
  """{task: {'top1', 'top5', 'loss', ['map'], 'num_examples', 'trivial_top1', ['trivial_map']}}
  of the SavedModel (trivial_*: pipelines/trivial_baseline.py, on the same examples)."""
  loaded = tf.saved_model.load(saved_model_dir)
  spec = specs_lib.resolve(config)
  results = {}
  for task in spec.task_names:
    t = spec.task(task)
    acc = metrics_lib.TaskMetrics(t.loss, t.multilabel, spec.eval.view_averaging)
    trivial = trivial_baseline.TrivialBaseline(t.multilabel)
    for p, batch in task_predictions(loaded, config, task, split):
      acc.update(p.logits.numpy(), p.probabilities.numpy(), batch['labels'].numpy(),
                 batch['mask'].numpy())
      trivial.update(batch['labels'].numpy(), batch['mask'].numpy())
    results[task] = {**acc.result(), **trivial.result()}
  return results
