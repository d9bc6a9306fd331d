"""`pipeline.training`: in_pod (the Trainer's pod) and vertex (TFX's Vertex AI extension).

The Vertex AI CustomJob is built by TFX's own code from the compiled Trainer's custom_config
(training_clients.VertexJobClient.create_training_job, what the extension's executor calls
before it submits) and converted to the API's CustomJob message; nothing reaches the network.
"""

import json
import os
import threading
import time

import pytest
from tfx.types import standard_artifacts

from pipelines import compile_kubeflow
from pipelines import kfp_spec
from pipelines import pipeline as pipeline_lib
from pipelines import rehearse_vertex
from pipelines import trainer_module
from pipelines import training_modes
from polyvit_tf.configs import demo
from polyvit_tf.train import strategy as strategy_lib

IMAGE = 'us-docker.pkg.dev/my-project/repo/polyvit-tf:test'
ROOTS = ('gs://bucket/root', 'gs://bucket/serving')
VERTEX_EXECUTOR = 'tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor'


def _vertex_config(**vertex):
  config = demo.get_config()
  config.pipeline.training = 'vertex'
  config.pipeline.vertex.update(project='my-project', region='us-central1')
  config.pipeline.vertex.update(vertex)
  return config


def _trainer_custom_config(spec) -> dict:
  return json.loads(rehearse_vertex.trainer_params(spec)['custom_config'])


def _custom_job(spec, region: str = 'us-central1') -> dict:
  """TFX's CustomJob for the compiled Trainer, stopping before the API call."""
  examples = standard_artifacts.Examples()
  examples.uri = 'gs://bucket/root/polyvit/run/PolyViTExampleGen/examples'
  examples.split_names = '["digits_train", "digits_eval"]'
  model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
  model.uri = 'gs://bucket/root/polyvit/run/Trainer/model'
  model_run.uri = 'gs://bucket/root/polyvit/run/Trainer/model_run'
  return rehearse_vertex.job_from_params(rehearse_vertex.trainer_params(spec),
                                         {'examples': [examples]},
                                         {'model': [model], 'model_run': [model_run]}, region)


@pytest.fixture(scope='module')
def vertex_spec():
  config = _vertex_config(machine_type='n1-standard-8', accelerator_type='NVIDIA_TESLA_T4',
                          accelerator_count=2, worker_count=3)
  return compile_kubeflow.compile_spec(config, IMAGE, *ROOTS, target='vertex')['pipelineSpec']


def test_vertex_mode_compiles_to_tfx_vertex_trainer(vertex_spec):
  assert kfp_spec.backend_problems(vertex_spec) == []
  _, executor = kfp_spec.executor_of(vertex_spec, kfp_spec.all_tasks(vertex_spec)['Trainer'])
  assert executor['container']['args'][:2] == ['--executor_class_path', VERTEX_EXECUTOR]
  custom = _trainer_custom_config(vertex_spec)
  assert custom['ai_platform_enable_vertex'] is True
  assert custom['ai_platform_vertex_region'] == 'us-central1'
  assert custom['ai_platform_training_args']['project'] == 'my-project'
  assert 'pipeline' not in json.loads(custom['config'])  # as in_pod: cached by training only


def test_vertex_custom_job_from_tfx_has_chief_and_worker_pools(vertex_spec):
  from google.cloud import aiplatform_v1  # pylint: disable=g-import-not-at-top
  custom_job = _custom_job(vertex_spec)
  # The message JobServiceClient.create_custom_job builds from the dict: field names and
  # enum values (accelerator types) are checked here.
  message = aiplatform_v1.CustomJob(custom_job)
  chief, workers = message.job_spec.worker_pool_specs
  for pool, replicas in ((chief, 1), (workers, 3)):
    assert pool.replica_count == replicas
    assert pool.machine_spec.machine_type == 'n1-standard-8'
    assert pool.machine_spec.accelerator_type == aiplatform_v1.AcceleratorType.NVIDIA_TESLA_T4
    assert pool.machine_spec.accelerator_count == 2
    assert pool.container_spec.image_uri == IMAGE
    command = list(pool.container_spec.command)
    assert command[:5] == ['python', '-m', 'tfx.scripts.run_executor', '--executor_class_path',
                           'tfx.components.trainer.executor.GenericExecutor']
    exec_properties = json.loads(command[command.index('--exec-properties') + 1])
    assert exec_properties['run_fn'] == 'pipelines.trainer_module.run_fn'
  assert message.job_spec.scheduling.restart_job_on_worker_restart
  assert message.display_name.startswith('tfx_')


def test_vertex_tpu_vm_is_one_pool_and_needs_the_local_tpu():
  config = _vertex_config(machine_type='ct5lp-hightpu-4t', worker_count=0)
  with pytest.raises(compile_kubeflow.SpecError, match="distribution.tpu='local'"):
    compile_kubeflow.compile_spec(config, IMAGE, *ROOTS, target='vertex')
  config.distribution.tpu = 'local'
  spec = compile_kubeflow.compile_spec(config, IMAGE, *ROOTS, target='kfp')
  job = _custom_job(spec)
  assert [(p['machine_spec'], p['replica_count']) for p in job['job_spec']['worker_pool_specs']
          ] == [({'machine_type': 'ct5lp-hightpu-4t'}, 1)]
  config.pipeline.vertex.worker_count = 1
  with pytest.raises(compile_kubeflow.SpecError, match='one replica'):
    compile_kubeflow.compile_spec(config, IMAGE, *ROOTS, target='vertex')


@pytest.mark.parametrize('change,message', [
    (lambda c: c.pipeline.vertex.update(project=''), 'pipeline.vertex.project'),
    (lambda c: c.pipeline.vertex.update(region='mars'), 'pipeline.vertex.region'),
    (lambda c: c.pipeline.vertex.update(accelerator_type='NVIDIA_TESLA_T5',
                                        accelerator_count=1), 'is not one of'),
    (lambda c: c.pipeline.vertex.update(accelerator_type='NVIDIA_L4'), 'both or neither'),
    (lambda c: c.pipeline.vertex.update(worker_count=65), '0 to 64'),
    (lambda c: (c.pipeline.vertex.update(worker_count=2),
                c.distribution.update(strategy='mirrored')), "'auto' or 'multi_worker'"),
    # 3 replicas do not divide digits' batch of 64.
    (lambda c: c.pipeline.vertex.update(worker_count=2), 'tasks.digit_groups.batch_size=32'),
    (lambda c: c.pipeline.resources.Trainer.update(accelerator_type='NVIDIA_L4',
                                                   accelerator_count=1),
     'give the accelerators in pipeline.vertex'),
    (lambda c: c.pipeline.update(training='tfjob'), "pipeline.training='tfjob'"),
])
def test_bad_vertex_configs_fail_at_compile_naming_the_key(change, message):
  config = _vertex_config()
  change(config)
  with pytest.raises(compile_kubeflow.SpecError, match=message):
    compile_kubeflow.compile_spec(config, IMAGE, *ROOTS, target='vertex')


def test_vertex_needs_a_kubeflow_target_and_a_gcs_root(tmp_path):
  with pytest.raises(training_modes.TrainingModeError, match='Kubeflow target only'):
    pipeline_lib.create_pipeline(_vertex_config(), pipeline_name='p',
                                 pipeline_root=str(tmp_path), serving_dir=str(tmp_path))
  with pytest.raises(compile_kubeflow.SpecError, match='needs a gs:// root'):
    compile_kubeflow.compile_spec(_vertex_config(), IMAGE, 's3://bucket/root',
                                  's3://bucket/serving', target='kfp')


def test_in_pod_accelerators_must_suit_the_strategy():
  config = demo.get_config()
  config.pipeline.resources.Trainer.update(accelerator_type='NVIDIA_L4', accelerator_count=3)
  with pytest.raises(compile_kubeflow.SpecError, match='3 GPUs'):
    compile_kubeflow.compile_spec(config, IMAGE, *ROOTS)
  config.pipeline.resources.Trainer.update(
      accelerator_type='TPU_V5_LITEPOD', accelerator_count=4,
      node_selector='cloud.google.com/gke-tpu-accelerator=tpu-v5-lite-podslice,'
                    'cloud.google.com/gke-tpu-topology=2x2')
  with pytest.raises(compile_kubeflow.SpecError, match="distribution.tpu='local'"):
    compile_kubeflow.compile_spec(config, IMAGE, *ROOTS)
  config.distribution.tpu = 'local'
  spec = compile_kubeflow.compile_spec(config, IMAGE, *ROOTS)
  _, executor = kfp_spec.executor_of(spec, kfp_spec.all_tasks(spec)['Trainer'])
  assert executor['container']['resources']['accelerator']['resourceType'] == 'google.com/tpu'


def test_auto_strategy_reads_the_tf_config_vertex_sets(monkeypatch):
  # The shape Vertex AI sets for worker pool 0 (chief) and 1 (workers).
  tf_config = {'cluster': {'chief': ['cmle-training-workerpool0-0:2222'],
                           'worker': ['cmle-training-workerpool1-0:2222',
                                      'cmle-training-workerpool1-1:2222']},
               'task': {'type': 'worker', 'index': 0}, 'environment': 'cloud',
               'job': {'worker_pool_specs': []}}
  monkeypatch.setenv('TF_CONFIG', json.dumps(tf_config))
  assert strategy_lib._tf_config_tasks() == 3  # pylint: disable=protected-access
  # TF's own rule, which MultiWorkerMirroredStrategy's should_checkpoint (the trainer's and
  # run_fn's "chief") follows: with a chief in the cluster, worker 0 is not the chief.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.distribute import multi_worker_util  # pylint: disable=g-direct-tensorflow-import
  resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
  spec = resolver.cluster_spec()
  assert not multi_worker_util.is_chief(spec, resolver.task_type, resolver.task_id)
  assert multi_worker_util.is_chief(spec, 'chief', 0)


def test_non_chief_waits_for_the_chiefs_complete_export(tmp_path, monkeypatch):
  serving = str(tmp_path / 'serving')
  with pytest.raises(TimeoutError, match='saved_model.pb within 0 s'):
    trainer_module.wait_for_chief_export(serving, timeout=0.2)
  src = tmp_path / 'export'
  (src / 'variables').mkdir(parents=True)
  for name in ('saved_model.pb', 'fingerprint.pb', 'variables/variables.index'):
    (src / name).write_bytes(b'x' * 10)
  copied = []
  real_copy = trainer_module.tf.io.gfile.copy

  def recording_copy(a, b, overwrite=False):
    copied.append(os.path.relpath(b, serving))
    real_copy(a, b, overwrite=overwrite)

  monkeypatch.setattr(trainer_module.tf.io.gfile, 'copy', recording_copy)
  monkeypatch.setattr(trainer_module, '_POLL_SECONDS', 0.05)
  writer = threading.Timer(0.3, trainer_module.copy_tree, (str(src), serving))
  start = time.monotonic()
  writer.start()
  trainer_module.wait_for_chief_export(serving, timeout=30)
  writer.join()
  assert 0.25 < time.monotonic() - start < 10
  assert copied[-1] == 'saved_model.pb' and len(copied) == 3



def test_replicas_get_the_tf_config_vertex_assigns(vertex_spec):
  job = _custom_job(vertex_spec)
  plan = rehearse_vertex.replicas(job, [2001, 2002, 2003, 2004])
  cluster = {'chief': ['localhost:2001'],
             'worker': ['localhost:2002', 'localhost:2003', 'localhost:2004']}
  assert [(kind, index) for kind, index, _, _ in plan] == [
      ('chief', 0), ('worker', 0), ('worker', 1), ('worker', 2)]
  assert all(tf_config['cluster'] == cluster and tf_config['task'] == {
      'type': kind, 'index': index} for kind, index, _, tf_config in plan)
  assert all(command[:3] == ['python', '-m', 'tfx.scripts.run_executor']
             for _, _, command, _ in plan)
  with pytest.raises(ValueError, match='4 replicas need as many ports'):
    rehearse_vertex.replicas(job, [2001])
