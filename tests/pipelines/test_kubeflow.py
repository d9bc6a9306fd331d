"""The pipeline compiles to specs the open-source KFP v2 backend and Vertex AI accept."""

import copy
import importlib
import json

import pytest
import yaml
from kfp import components
from kfp.client import client as kfp_client

from pipelines import compile_kubeflow
from pipelines import kfp_entrypoint
from pipelines import kfp_spec
from polyvit_tf.configs import demo

EXPECTED = {'PolyViTExampleGen', 'StatisticsGen', 'Trainer', 'PolyViTEvaluator', 'InfraValidator',
            'Pusher', 'TFLiteExport'}
IMAGE = 'example.com/polyvit-tf:test'


@pytest.fixture(scope='module')
def kfp_file(tmp_path_factory):
  out = tmp_path_factory.mktemp('kfp') / 'polyvit.yaml'
  compile_kubeflow.compile_pipeline(demo.get_config(), IMAGE, str(out), 'gs://bucket/root',
                                    'gs://bucket/serving')
  return str(out)


@pytest.fixture(scope='module')
def spec(kfp_file):
  return kfp_spec.load(kfp_file)


def test_kfp_target_is_a_plain_pipeline_spec_kfp_accepts(kfp_file, spec):
  doc = yaml.safe_load(open(kfp_file))
  assert 'pipelineSpec' not in doc and doc['pipelineInfo']['name'] == 'polyvit'
  assert doc['schemaVersion'] == '2.1.0' and doc['defaultPipelineRoot'] == 'gs://bucket/root'
  # What kfp.Client().create_run_from_pipeline_package / upload_pipeline read the file with.
  pipeline_doc = kfp_client._extract_pipeline_yaml(kfp_file)  # pylint: disable=protected-access
  assert pipeline_doc.pipeline_spec.schema_version == '2.1.0'
  assert components.load_component_from_file(kfp_file).name == 'polyvit'
  assert kfp_spec.backend_problems(spec) == []


def test_no_resolver_and_every_component_present(spec):
  executors = spec['deploymentSpec']['executors'].values()
  assert all(set(e) == {'container'} for e in executors)
  names = set(kfp_spec.all_tasks(spec))
  tasks = sorted(demo.get_config().tasks.keys())
  per_task = {f'{kind}_{t}' for t in tasks for kind in ('schema', 'validator', 'gate')}
  assert EXPECTED | per_task == names, sorted(names ^ (EXPECTED | per_task))


def test_parameters_are_schema_2_1_parameter_values(spec):
  evaluator = spec['components']['PolyViTEvaluator']['inputDefinitions']['parameters']
  assert evaluator == {'config_json': {'parameterType': 'STRING'},
                       'serving_dir': {'parameterType': 'STRING'}}
  task = spec['root']['dag']['tasks']['PolyViTEvaluator']
  assert task['inputs']['parameters']['serving_dir'] == {
      'runtimeValue': {'constant': 'gs://bucket/serving'}}
  assert 'cachingOptions' not in task  # reads what is served: never from the cache
  assert spec['root']['dag']['tasks']['Trainer']['cachingOptions'] == {'enableCache': True}


def test_push_and_tflite_run_only_for_a_blessed_new_model_and_read_their_own_inputs(spec):
  tasks = kfp_spec.all_tasks(spec)
  for name, key in (('Pusher', 'model_blessing'), ('TFLiteExport', 'blessing')):
    condition = tasks[name]['triggerPolicy']['condition']
    assert condition == (
        f"(inputs.artifacts['{key}'].artifacts[0].metadata['blessed'] == 1.0) && "
        f"(inputs.artifacts['{key}'].artifacts[0].metadata['new_model'] == 1.0)")
    assert 'PolyViTEvaluator' in tasks[name]['dependentTasks']


def test_trainer_waits_for_every_validation_gate(spec):
  trainer = kfp_spec.all_tasks(spec)['Trainer']
  gates = {f'gate_{t}' for t in demo.get_config().tasks.keys()}
  assert gates <= set(trainer['dependentTasks'])


def test_every_container_runs_the_entrypoint_on_an_importable_executor(spec):
  for executor in spec['deploymentSpec']['executors'].values():
    c = executor['container']
    assert c['image'] == IMAGE
    assert c['command'] == list(compile_kubeflow.ENTRYPOINT)
    assert importlib.import_module(c['command'][2]) is kfp_entrypoint
    args = c['args']
    assert args[args.index('--json_serialized_invocation_args') + 1] == '{{$}}'
    module, _, cls = args[args.index('--executor_class_path') + 1].rpartition('.')
    assert hasattr(importlib.import_module(module), cls), (module, cls)


def test_vertex_target_is_a_pipeline_job(tmp_path):
  out = tmp_path / 'polyvit.json'
  compile_kubeflow.compile_pipeline(demo.get_config('small'), IMAGE, str(out),
                                    'gs://bucket/root', 'gs://bucket/serving', target='vertex')
  job = json.loads(out.read_text())
  assert job['runtimeConfig'] == {'gcsOutputDirectory': 'gs://bucket/root'}
  assert job['pipelineSpec']['schemaVersion'] == '2.1.0'
  assert kfp_spec.backend_problems(job['pipelineSpec']) == []
  assert kfp_spec.load(str(out)) == job['pipelineSpec']


@pytest.mark.parametrize('target,root,serving,message', [
    ('kfp', '', 'gs://b/s', '--pipeline_root is required'),
    ('kfp', 'gs://b/r', '', '--serving_dir is required'),
    ('kfp', 'minio://mlpipeline/v2', 'gs://b/s', 'TensorFlow cannot write minio://'),
    ('kfp', 'relative/root', 'gs://b/s', 'needs one of'),
    ('vertex', '/abs/root', 'gs://b/s', 'needs one of'),
    ('argo', 'gs://b/r', 'gs://b/s', '--target must be one of'),
])
def test_cluster_locations_are_required_and_checked(target, root, serving, message):
  with pytest.raises(compile_kubeflow.SpecError, match=message):
    compile_kubeflow.check_locations(target, root, serving)


def test_local_paths_are_allowed_for_the_rehearsal_with_a_warning():
  warnings = compile_kubeflow.check_locations('kfp', '/tmp/root', 's3://bucket/serving')
  assert len(warnings) == 1 and 'rehearsal' in warnings[0]


def test_out_suffix_matches_the_target():
  with pytest.raises(compile_kubeflow.SpecError, match='kfp.Client reads YAML only'):
    compile_kubeflow.compile_pipeline(None, IMAGE, 'x.json', 'gs://b/r', 'gs://b/s')


def test_backend_rules_catch_what_the_open_source_backend_refuses(spec):
  bad = copy.deepcopy(spec)
  bad['schemaVersion'] = '2.0.0'
  bad['deploymentSpec']['executors']['r_executor'] = {'resolver': {}}
  pusher = bad['root']['dag']['tasks']['Pusher']
  pusher['triggerPolicy']['condition'] = (
      "inputs.artifacts['_PolyViTEvaluator.blessing'].artifacts[0].metadata['blessed'] == 1.0")
  pusher['dependentTasks'].append('latest_blessed_model_resolver')
  problems = '\n'.join(kfp_spec.backend_problems(bad))
  assert "schemaVersion '2.0.0'" in problems
  assert "['resolver'] executors are not implemented" in problems
  assert "condition reads artifact '_PolyViTEvaluator.blessing'" in problems
  assert "unknown upstream task 'latest_blessed_model_resolver'" in problems
