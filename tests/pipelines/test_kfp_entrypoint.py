"""PolyViTEvaluator through the KFP v2 container entrypoint, fed as the open-source driver feeds it.

The evaluator runs as `python -m pipelines.kfp_entrypoint <the spec's args>` with `{{$}}` an
ExecutorInput built the way the driver builds it: parameters in `parameterValues`, input
artifacts named by their ML Metadata id with the producer's instance schema and their custom
properties as metadata (numbers as doubles, plus `display_name` and `store_session_info`), and
the `executor-logs` output the driver adds. The blessing it writes must carry the same
properties as the same executor run in-process the way LocalDagRunner runs it, first with
nothing served (no baseline), then with the candidate pushed (baseline = it, not new). The
model always predicts a minority class: below chance, so it is not blessed under the default
threshold (0.0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tfx import version as tfx_version
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as kfp_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from pipelines import compile_kubeflow
from pipelines import examples as examples_lib
from pipelines import kfp_entrypoint
from pipelines import kfp_spec
from pipelines import rehearse_kubeflow
from pipelines import served_model
from pipelines.components import evaluator as evaluator_lib
from pipelines.trainer_module import copy_tree
from polyvit_tf.configs import demo

pytestmark = pytest.mark.slow

TASK = 'digit_groups'
MINORITY = 2  # 2_5_8: three of ten digits, against four of ten for 0_3_6_9
VERSION = '1700000000'
BLESSING_TYPE = {'instanceSchema': 'title: tfx.ModelBlessing\ntype: object\n'}


def _config(data_dir: str):
  config = demo.get_config('small')
  config.tasks = {TASK: config.tasks[TASK]}
  config.tasks[TASK].data.data_dir = data_dir
  config.pipeline.thresholds = {TASK: 0.0}  # the default: no threshold configured
  return config


def _constant_model(directory: str, num_classes: int) -> None:
  """A SavedModel whose `digit_groups` signature always scores MINORITY highest."""
  logits = tf.constant(np.eye(num_classes, dtype=np.float32)[MINORITY] * 4.0)

  class Constant(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec((None, 32, 32, 3), tf.float32, name='image')])
    def serve(self, image):
      return {'logits': tf.tile(logits[None], [tf.shape(image)[0], 1])}

  module = Constant()
  tf.saved_model.save(module, directory, signatures={TASK: module.serve})


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('entrypoint'))
  config = _config(os.path.join(root, 'demo_data'))
  examples_uri, model_uri = os.path.join(root, 'examples'), os.path.join(root, 'model')
  serving_dir = os.path.join(root, 'serving')
  counts = examples_lib.write_splits(examples_lib.data_only(config), examples_uri)
  _constant_model(path_utils.serving_model_path(model_uri), 3)
  spec = compile_kubeflow.compile_spec(config, 'polyvit-tf:test', os.path.join(root, 'kfp'),
                                       serving_dir)
  task = spec['root']['dag']['tasks']['PolyViTEvaluator']
  _, executor = kfp_spec.executor_of(spec, task)
  component = spec['components']['PolyViTEvaluator']
  # The upstream artifacts as ExampleGen's and Trainer's entrypoints reported them, recorded
  # and read back the way the launcher and the driver do.
  examples = standard_artifacts.Examples()
  examples.uri, examples.split_names = examples_uri, json.dumps(sorted(counts))
  for split, n in counts.items():
    examples.set_int_custom_property(f'num_examples/{split}', n)
  model = standard_artifacts.Model()
  model.uri = model_uri
  store = rehearse_kubeflow.Store(os.path.join(root, 'store.json'))
  inputs = {}
  for key, artifact in (('examples', examples), ('model', model)):
    reported = json.loads(json.dumps(kfp_utils._get_json_metadata_mapping(artifact)))  # pylint: disable=protected-access
    record = {'uri': artifact.uri, 'metadata': reported,
              'type': component['inputDefinitions']['artifacts'][key]['artifactType']}
    inputs[key] = {'artifacts': [store.runtime_artifact(store.record_artifact(key, record))]}
  parameters = {k: v['runtimeValue']['constant'] for k, v in task['inputs']['parameters'].items()}
  return dict(root=root, config=config, model_uri=model_uri, examples_uri=examples_uri,
              serving_dir=serving_dir, container=executor['container'], inputs=inputs,
              parameters=parameters, component=component)


def _through_entrypoint(setup, run: str) -> tuple[dict, dict]:
  """(blessing metadata, executor input) of one entrypoint run."""
  out = os.path.join(setup['root'], run)
  outputs = {key: {'artifacts': [{'uri': os.path.join(out, key), 'type': spec['artifactType']}]}
             for key, spec in setup['component']['outputDefinitions']['artifacts'].items()}
  outputs['executor-logs'] = {'artifacts': [{'uri': os.path.join(out, 'executor-logs'),
                                             'type': {'schemaTitle': 'system.Artifact'}}]}
  for value in outputs.values():
    os.makedirs(value['artifacts'][0]['uri'], exist_ok=True)
  executor_input = {'inputs': {'parameterValues': setup['parameters'],
                               'artifacts': setup['inputs']},
                    'outputs': {'artifacts': outputs, 'parameters': {},
                                'outputFile': os.path.join(out, 'output_metadata.json')}}
  container = setup['container']
  argv = [a.replace('{{$}}', json.dumps(executor_input)) for a in
          container['command'] + container['args']]
  assert argv[:3] == ['python', '-m', 'pipelines.kfp_entrypoint']
  done = subprocess.run([sys.executable] + argv[1:], capture_output=True, text=True,
                        timeout=600, env={**os.environ, 'PYTHONPATH': os.getcwd()})
  assert done.returncode == 0, done.stderr[-3000:]
  with open(executor_input['outputs']['outputFile']) as f:
    executor_output = json.load(f)
  assert set(executor_output['artifacts']) == {'blessing', 'evaluation'}  # logs: the launcher's
  return executor_output['artifacts']['blessing']['artifacts'][0]['metadata'], executor_input


def _in_process(setup, run: str) -> dict:
  """The blessing's properties from the same executor run as LocalDagRunner runs it."""
  examples = standard_artifacts.Examples()
  examples.uri = setup['examples_uri']
  examples.split_names = json.loads(json.dumps(setup['inputs']['examples']['artifacts'][0][
      'metadata']['split_names']))
  examples.id = 3
  model = standard_artifacts.Model()
  model.uri, model.id = setup['model_uri'], 7
  evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
  for key, artifact in (('evaluation', evaluation), ('blessing', blessing)):
    artifact.uri = os.path.join(setup['root'], run, key)
    os.makedirs(artifact.uri, exist_ok=True)
  outputs = {'evaluation': [evaluation], 'blessing': [blessing]}
  executor = evaluator_lib.PolyViTEvaluator.EXECUTOR_SPEC.executor_class()
  executor.Do({'examples': [examples], 'model': [model]}, outputs, setup['parameters'])
  return {k: blessing.get_custom_property(k) for k in blessing.mlmd_artifact.custom_properties}


def _as_metadata(properties: dict) -> dict:
  """How the entrypoint reports properties: ints as floats, plus the `tfx_version` tag that
  both runners' launchers add after the executor (LocalDagRunner's when it publishes)."""
  out = {k: float(v) if isinstance(v, int) else v for k, v in properties.items()}
  return {**out, 'tfx_version': tfx_version.__version__}


def test_tfx_entrypoint_alone_cannot_parse_the_drivers_log_output():
  logs = {'artifacts': [{'uri': '/tmp/x', 'type': {'schemaTitle': 'system.Artifact'}}]}
  from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  with pytest.raises(ImportError, match='system.Artifact'):
    kfp_utils.parse_raw_artifact_dict(
        {'executor-logs': json_format.ParseDict(logs, pipeline_spec_pb2.ArtifactList())})
  filtered, dropped = kfp_entrypoint.tfx_outputs_only(json.dumps(
      {'outputs': {'artifacts': {'executor-logs': logs, 'blessing': {'artifacts': [
          {'uri': '/tmp/b', 'type': BLESSING_TYPE}]}}}}))
  assert dropped == ['executor-logs']
  assert list(json.loads(filtered)['outputs']['artifacts']) == ['blessing']


def test_nothing_served_below_chance_is_not_blessed_and_matches_local(setup):
  metadata, executor_input = _through_entrypoint(setup, 'first')
  assert executor_input['inputs']['artifacts']['model']['artifacts'][0]['name'] == '2'
  fingerprint = served_model.fingerprint(path_utils.serving_model_path(setup['model_uri']))
  assert metadata['blessed'] == 0.0 and metadata['new_model'] == 1.0
  assert metadata['version'] == 1.0  # nothing served: the first version
  assert metadata['reasons'].startswith('version 1: the next version under ')
  assert metadata['current_model'] == setup['model_uri']
  assert metadata['current_model_fingerprint'] == fingerprint
  assert not any(k.startswith('baseline') or k.endswith('_id') for k in metadata)
  assert 'must beat the trivial baseline, majority-class rate' in metadata['reasons']
  assert metadata['reasons'].endswith('FAILED')
  blessing_uri = executor_input['outputs']['artifacts']['blessing']['artifacts'][0]['uri']
  assert os.listdir(blessing_uri) == ['NOT_BLESSED']
  metrics_uri = executor_input['outputs']['artifacts']['evaluation']['artifacts'][0]['uri']
  with open(os.path.join(metrics_uri, 'metrics.json')) as f:
    candidate = json.load(f)['candidate'][TASK]
  assert candidate['top1'] < candidate['trivial_top1']
  local = _as_metadata(_in_process(setup, 'first_local'))
  assert local == metadata, set(local.items()) ^ set(metadata.items())


def test_the_served_model_is_the_baseline_and_not_new(setup):
  served = os.path.join(setup['serving_dir'], VERSION)
  copy_tree(path_utils.serving_model_path(setup['model_uri']), served)  # as Pusher pushes
  os.makedirs(os.path.join(setup['serving_dir'], '1800000000'))  # an unfinished push: skipped
  metadata, _ = _through_entrypoint(setup, 'second')
  assert metadata['baseline_model'] == served
  assert metadata['baseline_version'] == float(VERSION)
  assert metadata['baseline_model_fingerprint'] == metadata['current_model_fingerprint']
  assert metadata['new_model'] == 0.0 and metadata['blessed'] == 0.0
  # The candidate is the served model: its version is the served one (the unfinished push
  # above it is not served, and the candidate is not pushed again).
  assert metadata['version'] == float(VERSION)
  assert 'served model' in metadata['reasons']
  local = _as_metadata(_in_process(setup, 'second_local'))
  assert local == metadata, set(local.items()) ^ set(metadata.items())
