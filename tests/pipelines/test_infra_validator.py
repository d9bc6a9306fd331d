"""InfraValidator (TF Serving on Kubernetes) sits between the evaluator and Pusher on
open-source Kubeflow.

Compiled: gated like Pusher, its condition reading its own inputs, Pusher taking its
`infra_blessing`; absent from local runs and from Vertex AI Pipelines (no Kubernetes API). Executed here (no Kubernetes, no TF Serving image):
TFX's executor with our two changes stages the TF Serving copy under the blessing's URI, fails
every try without a cluster, marks the model INFRA_NOT_BLESSED, removes the copy, and TFX's
Pusher then refuses to push.
"""

import json
import os

import pytest
from google.protobuf import json_format
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_executor
from tfx.proto import infra_validator_pb2
from tfx.types import standard_artifacts
from tfx.utils.model_paths import tf_serving_flavor

from pipelines import compile_kubeflow
from pipelines import kfp_cel
from pipelines import kfp_spec
from pipelines import pipeline as pipeline_lib
from pipelines.components import infra_validator
from polyvit_tf.configs import demo

IMAGE = 'example.com/polyvit-tf:test'
ROOTS = ('gs://bucket/root', 'gs://bucket/serving')


@pytest.fixture(scope='module')
def spec():
  return compile_kubeflow.compile_spec(demo.get_config(), IMAGE, *ROOTS)


def test_infra_validator_is_wired_between_evaluator_and_pusher(spec):
  assert kfp_spec.backend_problems(spec) == []
  tasks = kfp_spec.all_tasks(spec)
  infra, pusher = tasks['InfraValidator'], tasks['Pusher']
  _, executor = kfp_spec.executor_of(spec, infra)
  assert executor['container']['args'][:2] == [
      '--executor_class_path', 'pipelines.components.infra_validator.Executor']
  assert infra['inputs']['artifacts']['model']['taskOutputArtifact'] == {
      'producerTask': 'Trainer', 'outputArtifactKey': 'model'}
  assert pusher['inputs']['artifacts']['infra_blessing']['taskOutputArtifact'] == {
      'producerTask': 'InfraValidator', 'outputArtifactKey': 'blessing'}
  assert {'PolyViTEvaluator', 'Trainer'} <= set(infra['dependentTasks'])
  assert 'InfraValidator' in pusher['dependentTasks']
  serving = infra_validator_pb2.ServingSpec()
  json_format.Parse(infra['inputs']['parameters']['serving_spec']['runtimeValue']['constant'],
                    serving)
  assert serving.WhichOneof('serving_platform') == 'kubernetes'
  assert list(serving.tensorflow_serving.tags) == ['2.16.1']
  assert serving.tensorflow_serving.image_name == 'tensorflow/serving'
  assert 'request_spec' not in infra['inputs']['parameters']  # LOAD_ONLY (see the module)


def test_infra_validator_runs_only_for_a_blessed_new_model(spec):
  infra = kfp_spec.all_tasks(spec)['InfraValidator']
  condition = infra['triggerPolicy']['condition']
  key = '_PolyViTEvaluator.blessing'  # the compiler gives the task the evaluator's blessing
  assert infra['inputs']['artifacts'][key]['taskOutputArtifact'] == {
      'producerTask': 'PolyViTEvaluator', 'outputArtifactKey': 'blessing'}
  for blessed, new, expected in ((1.0, 1.0, True), (1.0, 0.0, False), (0.0, 1.0, False)):
    executor_input = {'inputs': {'artifacts': {key: {'artifacts': [
        {'metadata': {'blessed': blessed, 'new_model': new}}]}}}}
    assert kfp_cel.evaluate(condition, executor_input) is expected


def test_off_in_local_runs_on_vertex_and_when_disabled(tmp_path):
  local = pipeline_lib.create_pipeline(demo.get_config(), pipeline_name='p',
                                       pipeline_root=str(tmp_path), serving_dir=str(tmp_path))
  assert 'InfraValidator' not in {c.id for c in local.components}
  vertex = compile_kubeflow.compile_spec(demo.get_config(), IMAGE, *ROOTS, target='vertex')
  assert 'InfraValidator' not in kfp_spec.all_tasks(vertex['pipelineSpec'])
  config = demo.get_config()
  config.pipeline.infra_validator.enabled = False
  tasks = kfp_spec.all_tasks(compile_kubeflow.compile_spec(config, IMAGE, *ROOTS))
  assert 'InfraValidator' not in tasks and 'infra_blessing' not in tasks['Pusher']['inputs'][
      'artifacts']


def test_bad_settings_fail_at_compile():
  config = demo.get_config()
  config.pipeline.infra_validator.num_tries = 0
  with pytest.raises(compile_kubeflow.SpecError, match=r'pipeline.infra_validator.num_tries=0'):
    compile_kubeflow.compile_spec(config, IMAGE, *ROOTS)


def test_namespace_comes_from_the_service_account(tmp_path, monkeypatch):
  monkeypatch.delenv('KFP_NAMESPACE', raising=False)
  assert infra_validator.ensure_kfp_namespace(str(tmp_path / 'absent')) is None
  namespace = tmp_path / 'namespace'
  namespace.write_text('kubeflow-user\n')
  assert infra_validator.ensure_kfp_namespace(str(namespace)) == 'kubeflow-user'
  assert os.environ['KFP_NAMESPACE'] == 'kubeflow-user'
  monkeypatch.setenv('KFP_NAMESPACE', 'set-by-orchestrator')
  assert infra_validator.ensure_kfp_namespace(str(namespace)) == 'set-by-orchestrator'


def _artifacts(tmp_path):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'Trainer' / 'model')
  serving = os.path.join(model.uri, 'Format-Serving')
  os.makedirs(os.path.join(serving, 'variables'))
  for name in ('saved_model.pb', 'variables/variables.index'):
    with open(os.path.join(serving, name), 'wb') as f:
      f.write(b'not a real model: the server is never reached here')
  blessing = standard_artifacts.InfraBlessing()
  blessing.uri = str(tmp_path / 'InfraValidator' / 'blessing')
  os.makedirs(blessing.uri)
  return model, blessing


def test_model_is_staged_where_the_server_pod_reads_it(tmp_path):
  model, blessing = _artifacts(tmp_path)
  executor = infra_validator.Executor(base_executor.BaseExecutor.Context(
      tmp_dir=str(tmp_path / 'pod-local'), unique_id='1'))
  executor._staging_base = os.path.join(blessing.uri, infra_validator.STAGING_DIR)  # pylint: disable=protected-access
  path = executor._PrepareModelPath(  # pylint: disable=protected-access
      model, infra_validator_pb2.ServingSpec(
          tensorflow_serving=infra_validator_pb2.TensorFlowServing(tags=['2.16.1']),
          model_name='polyvit'))
  base, name, version = tf_serving_flavor.parse_model_path(path, expected_model_name='polyvit')
  assert base == os.path.join(blessing.uri, 'serving_model') and name == 'polyvit' and version
  assert sorted(os.listdir(path)) == ['saved_model.pb', 'variables']
  assert not os.path.exists(tmp_path / 'pod-local')


def test_without_a_cluster_the_model_is_not_infra_blessed_and_not_pushed(tmp_path,
                                                                         monkeypatch):
  monkeypatch.setenv('KFP_POD_NAME', 'polyvit-infravalidator-pod')
  model, blessing = _artifacts(tmp_path)
  executor = infra_validator.Executor(base_executor.BaseExecutor.Context(
      tmp_dir=str(tmp_path / 'pod-local'), unique_id='1'))
  config = demo.get_config()
  section = config.pipeline.infra_validator
  section.num_tries = 2
  executor.Do({'model': [model]}, {'blessing': [blessing]}, {
      'serving_spec': json_format.MessageToJson(
          infra_validator.serving_spec(section, 'polyvit')),
      'validation_spec': json_format.MessageToJson(infra_validator.validation_spec(section))})
  assert blessing.get_int_custom_property('blessed') == 0
  assert sorted(os.listdir(blessing.uri)) == ['INFRA_NOT_BLESSED']  # staged copy removed
  model_blessing = standard_artifacts.ModelBlessing()
  model_blessing.set_int_custom_property('blessed', 1)
  pusher = pusher_executor.Executor()
  assert not pusher.CheckBlessing({'model_blessing': [model_blessing],
                                   'infra_blessing': [blessing]})
  assert pusher.CheckBlessing({'model_blessing': [model_blessing]})
  assert json.loads(json_format.MessageToJson(infra_validator.serving_spec(
      section, 'polyvit')))['kubernetes']['activeDeadlineSeconds'] == 3600
