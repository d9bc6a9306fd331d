"""Per-node resources from `pipeline.resources` reach the compiled spec of both targets."""

import json
import re
import subprocess
import sys

import pytest
import yaml
from kfp.client import client as kfp_client

from pipelines import compile_kubeflow
from pipelines import kfp_spec
from pipelines import resources
from polyvit_tf.configs import demo
from polyvit_tf.configs import pipeline as pipeline_config

IMAGE = 'example.com/polyvit-tf:test'
ROOTS = ('gs://bucket/root', 'gs://bucket/serving')


def _config(**trainer):
  config = demo.get_config()
  config.pipeline.resources.Trainer.update(trainer)
  config.pipeline.resources.StatisticsGen.update(cpu='2', memory='8Gi')
  return config


def _resources(spec, task):
  _, executor = kfp_spec.executor_of(spec, kfp_spec.all_tasks(spec)[task])
  return executor['container'].get('resources')


@pytest.fixture(scope='module')
def kfp_file(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('kfp') / 'polyvit.yaml')
  config = _config(cpu='8', memory='32G', accelerator_type='NVIDIA_TESLA_T4',
                   accelerator_count=1, node_selector='cloud.google.com/gke-nodepool=gpu')
  compile_kubeflow.compile_pipeline(config, IMAGE, out, *ROOTS)
  return out


def test_kfp_spec_carries_the_requests_and_node_selectors(kfp_file):
  spec = kfp_spec.load(kfp_file)
  assert kfp_spec.backend_problems(spec) == []
  # The open-source driver makes the accelerator type the name of the pod's limit.
  assert _resources(spec, 'Trainer') == {
      'resourceCpuLimit': '8', 'cpuLimit': 8.0, 'resourceMemoryLimit': '32G',
      'memoryLimit': 32.0,
      'accelerator': {'resourceType': 'nvidia.com/gpu', 'resourceCount': '1',
                      'type': 'nvidia.com/gpu', 'count': '1'}}
  assert _resources(spec, 'StatisticsGen') == {
      'resourceCpuLimit': '2', 'cpuLimit': 2.0, 'resourceMemoryLimit': '8Gi',
      'memoryLimit': pytest.approx(8 * 2**30 / 1e9)}
  assert _resources(spec, 'PolyViTEvaluator') is None  # nothing requested
  # What kfp.Client uploads: the spec and the Kubernetes platform spec document.
  doc = kfp_client._extract_pipeline_yaml(kfp_file)  # pylint: disable=protected-access
  label = kfp_spec.executor_of(spec, kfp_spec.all_tasks(spec)['Trainer'])[0]
  k8s = doc.platform_spec.platforms['kubernetes'].deployment_spec.executors[label]
  assert dict(k8s['nodeSelector']['labels']) == {
      'cloud.google.com/gke-accelerator': 'nvidia-tesla-t4',
      'cloud.google.com/gke-nodepool': 'gpu'}
  assert set(doc.platform_spec.platforms['kubernetes'].deployment_spec.executors) == {label}


def test_vertex_job_carries_vertex_accelerator_names(tmp_path):
  out = str(tmp_path / 'polyvit.json')
  config = _config(cpu='8', memory='32G', accelerator_type='NVIDIA_TESLA_T4',
                   accelerator_count=1)
  compile_kubeflow.compile_pipeline(config, IMAGE, out, *ROOTS, target='vertex')
  job = json.load(open(out))
  spec = job['pipelineSpec']
  assert kfp_spec.backend_problems(spec) == []
  assert _resources(spec, 'Trainer')['accelerator'] == {
      'resourceType': 'NVIDIA_TESLA_T4', 'resourceCount': '1', 'type': 'NVIDIA_TESLA_T4',
      'count': '1'}
  assert _resources(spec, 'Trainer')['resourceMemoryLimit'] == '32G'


def test_command_line_overrides_reach_the_spec(tmp_path):
  out = tmp_path / 'cli.yaml'
  subprocess.run(
      [sys.executable, '-m', 'pipelines.compile_kubeflow',
       '--config=polyvit_tf/configs/demo.py', f'--image={IMAGE}',
       f'--pipeline_root={ROOTS[0]}', f'--serving_dir={ROOTS[1]}', f'--out={out}',
       '--config.pipeline.resources.Trainer.accelerator_type=NVIDIA_TESLA_T4',
       '--config.pipeline.resources.Trainer.accelerator_count=1'],
      check=True, capture_output=True, text=True)
  spec, platform = yaml.safe_load_all(open(out))
  assert _resources(spec, 'Trainer') == {
      'accelerator': {'resourceType': 'nvidia.com/gpu', 'resourceCount': '1',
                      'type': 'nvidia.com/gpu', 'count': '1'}}
  executors = platform['platforms']['kubernetes']['deploymentSpec']['executors']
  assert executors == {'Trainer_executor': {'nodeSelector': {'labels': {
      'cloud.google.com/gke-accelerator': 'nvidia-tesla-t4'}}}}


@pytest.mark.parametrize('node,field,value,message', [
    ('Trainer', 'cpu', 'lots', 'pipeline.resources.Trainer.cpu'),
    ('Trainer', 'cpu', '5000', 'in (0, 1024]'),
    ('Trainer', 'memory', '32GB', 'pipeline.resources.Trainer.memory'),
    ('Trainer', 'memory', '17Ti', 'at most 16Ti'),
    ('Trainer', 'accelerator_type', 'NVIDIA_TESLA_T5', 'is not one of'),
    ('Trainer', 'accelerator_count', 3, 'without an accelerator_type'),
    ('Trainer', 'node_selector', 'no-equals-sign', 'key=value'),
    ('schema_no_such_task', 'cpu', '1', "has no node 'schema_no_such_task'"),
])
def test_bad_requests_fail_before_compiling_naming_the_field(node, field, value, message):
  config = demo.get_config()
  if node not in config.pipeline.resources:
    config.pipeline.resources[node] = pipeline_config.resource_request()
  config.pipeline.resources[node][field] = value
  with pytest.raises(compile_kubeflow.SpecError, match=re.escape(message)):
    compile_kubeflow.compile_spec(config, IMAGE, *ROOTS)


def test_accelerator_limits_and_target_rules():
  entry = {'accelerator_type': 'NVIDIA_L4', 'accelerator_count': 17}
  with pytest.raises(resources.ResourceError, match='1 to 16'):
    resources.parse('Trainer', entry, 'kfp')
  with pytest.raises(resources.ResourceError, match='target kfp only'):
    resources.parse('Trainer', {'accelerator_type': 'nvidia.com/gpu',
                                'accelerator_count': 1}, 'vertex')
  with pytest.raises(resources.ResourceError, match='only for target kfp'):
    resources.parse('Trainer', {'node_selector': 'a=b'}, 'vertex')
  with pytest.raises(resources.ResourceError, match='GKE TPU'):
    resources.parse('Trainer', {'accelerator_type': 'TPU_V5_LITEPOD',
                                'accelerator_count': 4}, 'kfp')
  tpu = resources.parse('Trainer', {
      'accelerator_type': 'TPU_V5_LITEPOD', 'accelerator_count': 4,
      'node_selector': 'cloud.google.com/gke-tpu-accelerator=tpu-v5-lite-podslice,'
                       'cloud.google.com/gke-tpu-topology=2x2'}, 'kfp')
  assert resources.resource_spec(tpu, 'kfp').accelerator.resource_type == 'google.com/tpu'
  assert resources.node_labels(tpu, 'kfp') == {
      'cloud.google.com/gke-tpu-accelerator': 'tpu-v5-lite-podslice',
      'cloud.google.com/gke-tpu-topology': '2x2'}
  amd = resources.parse('Trainer', {'accelerator_type': 'amd.com/gpu',
                                    'accelerator_count': 2}, 'kfp')
  assert resources.node_labels(amd, 'kfp') == {}
  assert resources.resource_spec(amd, 'kfp').accelerator.resource_count == '2'
