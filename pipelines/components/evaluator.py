"""PolyViTEvaluator: per-task metrics of the candidate (and baseline) model, and the blessing.

Outputs a ModelEvaluation artifact (metrics.json, and every metric as a custom property
`<task>/<metric>` so ML Metadata shows it) and a ModelBlessing artifact in the form the
standard Evaluator writes (a BLESSED / NOT_BLESSED file; custom properties `blessed`,
`current_model`, `current_model_id`, `baseline_model`, `baseline_model_id`), which Pusher and
the LatestBlessedModelStrategy resolver read, plus `new_model` (0 when the candidate is the
last blessed model itself, so the pipeline does not push it twice).
"""


import json
import os

import tensorflow as tf
from absl import logging
from tfx import v1 as tfx
from tfx.utils import path_utils

from pipelines import blessing as blessing_lib
from pipelines import evaluation as evaluation_lib
from pipelines import examples as examples_lib
from polyvit_tf.configs import io as config_io

Model = tfx.types.standard_artifacts.Model


def thresholds(config) -> dict[str, float]:
  pipeline = config.get('pipeline') or {}
  return {t: float(v) for t, v in dict(pipeline.get('thresholds') or {}).items()}


def tolerance(config) -> float:
  pipeline = config.get('pipeline') or {}
  return float(pipeline.get('regression_tolerance', 0.02))


@tfx.dsl.components.component
def PolyViTEvaluator(  # pylint: disable=invalid-name
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[Model],
    evaluation: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    config_json: tfx.dsl.components.Parameter[str],
    baseline_model: tfx.dsl.components.InputArtifact[Model] = None):
  """Evaluates `model` (and `baseline_model`, the last blessed one, if any) and blesses."""
  config = examples_lib.config_for_examples(config_io.loads(config_json), examples.uri)
  candidate = evaluation_lib.evaluate_saved_model(path_utils.serving_model_path(model.uri), config)
  baseline = None
  if baseline_model is not None:
    baseline = evaluation_lib.evaluate_saved_model(
        path_utils.serving_model_path(baseline_model.uri), config)
  decision = blessing_lib.decide(candidate, baseline, thresholds(config), tolerance(config))
  for line in decision.reasons:
    logging.info('PolyViTEvaluator: %s', line)

  report = {'candidate': candidate, 'baseline': baseline, 'blessed': decision.blessed,
            'reasons': list(decision.reasons), 'thresholds': thresholds(config),
            'regression_tolerance': tolerance(config)}
  with tf.io.gfile.GFile(os.path.join(evaluation.uri, 'metrics.json'), 'w') as f:
    json.dump(report, f, indent=2, sort_keys=True)
  for task, metrics in candidate.items():
    for name, value in metrics.items():
      if isinstance(value, float):
        evaluation.set_float_custom_property(f'{task}/{name}', value)
      else:
        evaluation.set_int_custom_property(f'{task}/{name}', int(value))
  evaluation.set_int_custom_property('blessed', int(decision.blessed))

  name = 'BLESSED' if decision.blessed else 'NOT_BLESSED'
  with tf.io.gfile.GFile(os.path.join(blessing.uri, name), 'w') as f:
    f.write('\n'.join(decision.reasons) + '\n')
  blessing.set_int_custom_property('blessed', int(decision.blessed))
  blessing.set_string_custom_property('current_model', model.uri)
  blessing.set_int_custom_property('current_model_id', model.id)
  # 0 when the candidate IS the last blessed model (its Trainer came from the cache).
  blessing.set_int_custom_property(
      'new_model', int(baseline_model is None or baseline_model.id != model.id))
  if baseline_model is not None:
    blessing.set_string_custom_property('baseline_model', baseline_model.uri)
    blessing.set_int_custom_property('baseline_model_id', baseline_model.id)
