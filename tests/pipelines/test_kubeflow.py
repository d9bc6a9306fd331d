"""The pipeline compiles to a Kubeflow Pipelines v2 spec with valid container commands."""

import importlib
import json

import pytest

from pipelines import compile_kubeflow
from polyvit_tf.configs import demo

EXPECTED = {'PolyViTExampleGen', 'StatisticsGen', 'Trainer', 'PolyViTEvaluator', 'Pusher',
            'TFLiteExport'}
# The KFP v2 compiler splits the latest-blessed-model resolver into one task per channel.
RESOLVERS = {'latest_blessed_model_resolver-model-resolver',
             'latest_blessed_model_resolver-model-blessing-resolver'}


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
  out = tmp_path_factory.mktemp('kfp') / 'polyvit.json'
  compile_kubeflow.compile_pipeline(demo.get_config(), 'example.com/polyvit-tf:test', str(out),
                                    'gs://bucket/root', 'gs://bucket/serving')
  return json.loads(out.read_text())


def _all_tasks(spec) -> dict:
  """Tasks of the root DAG and of nested (condition) DAGs."""
  tasks = dict(spec['pipelineSpec']['root']['dag']['tasks'])
  for component in spec['pipelineSpec']['components'].values():
    tasks.update(component.get('dag', {}).get('tasks', {}))
  return tasks


def test_every_component_is_in_the_spec(spec):
  names = set(_all_tasks(spec))
  tasks = sorted(demo.get_config().tasks.keys())
  per_task = {f'{kind}_{t}' for t in tasks for kind in ('schema', 'validator', 'gate')}
  assert EXPECTED | RESOLVERS | per_task <= names, sorted((EXPECTED | per_task) - names)


def test_tflite_export_runs_only_for_a_blessed_model(spec):
  tflite = _all_tasks(spec)['TFLiteExport']
  condition = tflite['triggerPolicy']['condition']
  assert 'blessed' in condition and '1' in condition
  assert 'PolyViTEvaluator' in tflite['dependentTasks']


def test_trainer_waits_for_every_validation_gate(spec):
  trainer = _all_tasks(spec)['Trainer']
  gates = {f'gate_{t}' for t in demo.get_config().tasks.keys()}
  assert gates <= set(trainer['dependentTasks'])


def test_container_command_lines_are_valid(spec):
  executors = spec['pipelineSpec']['deploymentSpec']['executors']
  containers = [e['container'] for e in executors.values() if 'container' in e]
  assert len(containers) >= len(EXPECTED) - 1  # the resolver runs in the KFP backend
  for c in containers:
    assert c['image'] == 'example.com/polyvit-tf:test'
    command = c['command']
    assert command[:2] == ['python', '-m']
    importlib.import_module(command[2])  # the entry module exists in this environment
    args = c['args']
    for flag in ('--executor_class_path', '--json_serialized_invocation_args'):
      if flag == '--executor_class_path' and flag not in args:
        continue
      assert flag in args
    if '--executor_class_path' in args:
      module, _, cls = args[args.index('--executor_class_path') + 1].rpartition('.')
      assert hasattr(importlib.import_module(module), cls), (module, cls)


def test_spec_carries_the_pipeline_root(spec):
  assert spec['runtimeConfig']['gcsOutputDirectory'] == 'gs://bucket/root'
