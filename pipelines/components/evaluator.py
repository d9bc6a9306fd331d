"""PolyViTEvaluator: per-task metrics of the candidate and of the served model, and the blessing.

The baseline is the model the serving directory serves now (pipelines/served_model.py), found
by the evaluator itself: no resolver node, so the pipeline runs on open-source Kubeflow
Pipelines (which has no resolver executor) and behaves the same under every orchestrator.

Outputs a ModelEvaluation artifact (metrics.json, and every metric as a custom property
`<task>/<metric>` so ML Metadata shows it) and a ModelBlessing artifact in the form Pusher
reads (a BLESSED / NOT_BLESSED file with the reasons, custom property `blessed`), with:
  current_model, current_model_fingerprint   the candidate's uri and content fingerprint
  baseline_model, baseline_version, baseline_model_fingerprint   the served model, if any
  new_model    0 when the candidate is the served model itself (same fingerprint), so the
               pipeline does not push the same model twice
  version      the candidate's version: the served one when new_model is 0, else the next
               under the serving dir; Pusher pushes there, TFLiteExport records it
               (pipelines/versioning.py); metrics.json has it too
  reasons      the version line, then one line per task: the bound that applied and the
               outcome
There are no `*_model_id` properties: artifact ids mean different things under different
orchestrators (TFX's KFP entrypoint passes a hash of KFP's artifact name), uris and
fingerprints do not.
"""


import copy
import json
import os

import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import saved_model_pb2
from tfx import v1 as tfx
from tfx.utils import path_utils

from pipelines import blessing as blessing_lib
from pipelines import evaluation as evaluation_lib
from pipelines import examples as examples_lib
from pipelines import served_model
from pipelines import versioning
from polyvit_tf.configs import io as config_io
from polyvit_tf.configs import specs as specs_lib

Model = tfx.types.standard_artifacts.Model


def thresholds(config) -> dict[str, float]:
  pipeline = config.get('pipeline') or {}
  return {t: float(v) for t, v in dict(pipeline.get('thresholds') or {}).items()}


def tolerance(config) -> float:
  pipeline = config.get('pipeline') or {}
  return float(pipeline.get('regression_tolerance', 0.02))


def signature_names(saved_model_dir: str) -> set[str]:
  """The SavedModel's signature keys, read from saved_model.pb without loading the model."""
  proto = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(os.path.join(saved_model_dir, 'saved_model.pb'), 'rb') as f:
    proto.ParseFromString(f.read())
  return {k for graph in proto.meta_graphs for k in graph.signature_def}


def evaluate_served(served: served_model.ServedModel, config) -> dict[str, dict]:
  """Metrics of the served model on the tasks it has (a task added since has no baseline)."""
  config = copy.deepcopy(config)
  have = signature_names(served.path)
  for task in specs_lib.resolve(config).task_names:
    if task not in have:
      logging.info('PolyViTEvaluator: the served model has no signature %r', task)
      del config.tasks[task]
  if not config.tasks:
    return {}
  return evaluation_lib.evaluate_saved_model(served.path, config)


def evaluate_and_bless(config, model_uri: str, serving_dir: str) -> tuple[dict, dict]:
  """(report for metrics.json, blessing custom properties) of the candidate at `model_uri`."""
  candidate_dir = path_utils.serving_model_path(model_uri)
  candidate = evaluation_lib.evaluate_saved_model(candidate_dir, config)
  served = served_model.latest(serving_dir)
  baseline = evaluate_served(served, config) if served else None
  decision = blessing_lib.decide(candidate, baseline, thresholds(config), tolerance(config))
  current = served_model.fingerprint(candidate_dir)
  new_model = served is None or served.fingerprint != current
  version = versioning.candidate_version(serving_dir, served, current)
  reasons = [versioning.describe(version, serving_dir, new_model), *decision.reasons]
  properties = {'blessed': int(decision.blessed), 'current_model': model_uri,
                'current_model_fingerprint': current, 'new_model': int(new_model),
                versioning.VERSION_KEY: version, 'reasons': '\n'.join(reasons)}
  if served:
    properties.update(baseline_model=served.path, baseline_version=served.version,
                      baseline_model_fingerprint=served.fingerprint)
  report = {'candidate': candidate, 'baseline': baseline, 'blessed': decision.blessed,
            versioning.VERSION_KEY: version, 'reasons': reasons,
            'thresholds': thresholds(config),
            'regression_tolerance': tolerance(config),
            'served_model': served and {'path': served.path, 'version': served.version,
                                        'fingerprint': served.fingerprint}}
  return report, properties


def _set(artifact, key: str, value) -> None:
  if isinstance(value, float):
    artifact.set_float_custom_property(key, value)
  elif isinstance(value, int):
    artifact.set_int_custom_property(key, value)
  else:
    artifact.set_string_custom_property(key, str(value))


@tfx.dsl.components.component
def PolyViTEvaluator(  # pylint: disable=invalid-name
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[Model],
    evaluation: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    config_json: tfx.dsl.components.Parameter[str],
    serving_dir: tfx.dsl.components.Parameter[str]):
  """Evaluates `model` and the model served from `serving_dir` (if any), and blesses."""
  config = examples_lib.config_for_examples(config_io.loads(config_json), examples.uri)
  report, properties = evaluate_and_bless(config, model.uri, serving_dir)
  for line in report['reasons']:
    logging.info('PolyViTEvaluator: %s', line)
  with tf.io.gfile.GFile(os.path.join(evaluation.uri, 'metrics.json'), 'w') as f:
    json.dump(report, f, indent=2, sort_keys=True)
  for task, metrics in report['candidate'].items():
    for name, value in metrics.items():
      _set(evaluation, f'{task}/{name}', value)
  evaluation.set_int_custom_property('blessed', properties['blessed'])

  name = 'BLESSED' if properties['blessed'] else 'NOT_BLESSED'
  with tf.io.gfile.GFile(os.path.join(blessing.uri, name), 'w') as f:
    f.write(properties['reasons'] + '\n')
  for key, value in properties.items():
    _set(blessing, key, value)
