"""Where the Trainer's loop runs: `config.pipeline.training` (docs/training.md).

  in_pod  the standard TFX Trainer: run_fn trains in the component's own pod with the
          configured strategy (`distribution.strategy='auto'`: MirroredStrategy over the
          pod's GPUs, TPUStrategy with `distribution.tpu='local'` on a TPU VM node).
  vertex  TFX's Vertex AI training extension (tfx.extensions.google_cloud_ai_platform
          Trainer): the component's pod submits a Vertex AI CustomJob whose every replica runs
          TFX's GenericExecutor, i.e. the same run_fn, in `pipeline.vertex.image` (default: the
          pipeline image). Worker pools from `pipeline.vertex`: a chief, plus `worker_count`
          workers of the same machine (Vertex sets TF_CONFIG; `auto` then picks
          MultiWorkerMirroredStrategy), or one TPU VM (TPUStrategy, `distribution.tpu='local'`).

Checks before anything compiles (TrainingModeError naming the key): the mode, the project
and region, machine and accelerators (Vertex AI's own names), TPU pools of one replica with
`distribution.tpu='local'`, a strategy that can use the replicas, and every task's batch
size (and eval.batch_size) divisible by the replicas the job will have.
"""

from __future__ import annotations

import re

import ml_collections
from tfx import v1 as tfx

from pipelines import resources as resources_lib
from polyvit_tf.configs import pipeline as pipeline_config
from polyvit_tf.configs.errors import ConfigError

MAX_WORKERS = 64
_MACHINE_TYPE = re.compile(r'^[a-z][a-z0-9-]{1,62}$')
_REGION = re.compile(r'^[a-z]+-[a-z]+[0-9]+$')
_PROJECT = re.compile(r'^[a-z][-a-z0-9]{4,28}[a-z0-9]$')
# Vertex AI's TPU VM machine types (the accelerator is part of the machine) and legacy TPUs.
_TPU_MACHINES = ('ct', 'cloud-tpu')


class TrainingModeError(ConfigError):
  """`pipeline.training` / `pipeline.vertex` cannot run."""


def mode(config: ml_collections.ConfigDict) -> str:
  name = config.pipeline.get('training', pipeline_config.TRAINING_MODES[0])
  if name not in pipeline_config.TRAINING_MODES:
    raise TrainingModeError(f'pipeline.training={name!r} is not one of '
                            f'{list(pipeline_config.TRAINING_MODES)}')
  return name


def _is_tpu(machine_type: str, accelerator_type: str) -> bool:
  return accelerator_type.startswith('TPU_') or machine_type.startswith(_TPU_MACHINES)


def _check_batches(config: ml_collections.ConfigDict, replicas: int, where: str) -> None:
  if replicas <= 1:
    return
  for task in sorted(config.tasks.keys()):
    batch = int(config.tasks[task].batch_size)
    if batch % replicas:
      raise TrainingModeError(f'tasks.{task}.batch_size={batch} is not divisible by the '
                              f'{replicas} replicas of {where}')
  if int(config.eval.batch_size) % replicas:
    raise TrainingModeError(f'eval.batch_size={config.eval.batch_size} is not divisible by '
                            f'the {replicas} replicas of {where}')


def _check_tpu_strategy(config: ml_collections.ConfigDict, where: str) -> None:
  d = config.distribution
  if d.strategy not in ('auto', 'tpu') or d.tpu != 'local':
    raise TrainingModeError(f'{where} is a TPU VM: set distribution.tpu=\'local\' (and '
                            f'strategy auto or tpu; have strategy={d.strategy!r}, '
                            f'tpu={d.tpu!r})')


def check_trainer_request(config: ml_collections.ConfigDict,
                          trainer: resources_lib.Request | None) -> None:
  """The Trainer pod's request fits the mode: in_pod, the strategy can use the accelerators
  the pod requests; vertex, the pod only submits the CustomJob (no accelerators)."""
  if trainer is None or not trainer.accelerator_type:
    return
  kind = trainer.accelerator_type
  if mode(config) == 'vertex':
    raise TrainingModeError(f'pipeline.resources.Trainer.accelerator_type={kind!r}: with '
                            "training='vertex' the Trainer's pod only submits the CustomJob; "
                            'give the accelerators in pipeline.vertex')
  if kind.startswith('TPU_') or kind == 'google.com/tpu':
    _check_tpu_strategy(config, 'pipeline.resources.Trainer')
    return
  if config.distribution.strategy in ('auto', 'mirrored'):
    _check_batches(config, trainer.accelerator_count,
                   f'MirroredStrategy over pipeline.resources.Trainer.accelerator_count='
                   f'{trainer.accelerator_count} GPUs')


def job_spec(config: ml_collections.ConfigDict, image: str) -> dict:
  """The CustomJobSpec (`ai_platform_training_args['job_spec']`) of `pipeline.vertex`."""
  v = config.pipeline.vertex
  machine = str(v.machine_type or '')
  kind = str(v.accelerator_type or '')
  count = int(v.accelerator_count or 0)
  workers = v.worker_count
  if not _MACHINE_TYPE.match(machine):
    raise TrainingModeError(f'pipeline.vertex.machine_type={machine!r}: a Vertex AI machine '
                            'type (n1-standard-8, a2-highgpu-1g, ct5lp-hightpu-4t, ...)')
  if kind and kind not in resources_lib.vertex_accelerator_types():
    raise TrainingModeError(f'pipeline.vertex.accelerator_type={kind!r} is not one of '
                            f'{list(resources_lib.vertex_accelerator_types())}')
  if bool(kind) != bool(count) or not 0 <= count <= resources_lib.MAX_ACCELERATORS:
    raise TrainingModeError(f'pipeline.vertex.accelerator_count={count} with accelerator_type '
                            f'{kind!r}: both or neither, count 1 to '
                            f'{resources_lib.MAX_ACCELERATORS}')
  if isinstance(workers, bool) or not isinstance(workers, int) or not (
      0 <= workers <= MAX_WORKERS):
    raise TrainingModeError(f'pipeline.vertex.worker_count={workers!r}: 0 to {MAX_WORKERS}')
  machine_spec = {'machine_type': machine}
  if kind:
    machine_spec.update(accelerator_type=kind, accelerator_count=count)
  strategy = config.distribution.strategy
  if _is_tpu(machine, kind):
    if workers:
      raise TrainingModeError(f'pipeline.vertex.worker_count={workers}: a TPU VM trains in '
                              'one replica (TPUStrategy over its chips); set it to 0')
    _check_tpu_strategy(config, f'pipeline.vertex.machine_type={machine!r}')
  else:
    if workers and strategy not in ('auto', 'multi_worker'):
      raise TrainingModeError(f'pipeline.vertex.worker_count={workers} needs '
                              "distribution.strategy 'auto' or 'multi_worker' (have "
                              f'{strategy!r}): the replicas would train alone')
    if strategy in ('auto', 'mirrored', 'multi_worker'):
      _check_batches(config, (1 + workers) * max(1, count),
                     f'{1 + workers} Vertex AI replicas x {max(1, count)} device(s)')
  container = {'image_uri': str(v.image or image)}
  pools = [{'machine_spec': dict(machine_spec), 'replica_count': 1,
            'container_spec': dict(container)}]
  if workers:
    pools.append({'machine_spec': dict(machine_spec), 'replica_count': workers,
                  'container_spec': dict(container)})
  spec = {'worker_pool_specs': pools,
          'scheduling': {'restart_job_on_worker_restart': bool(v.restart_job_on_worker_restart)}}
  if v.service_account:
    spec['service_account'] = str(v.service_account)
  return spec


def vertex_custom_config(config: ml_collections.ConfigDict, image: str) -> dict:
  """The Trainer's custom_config entries TFX's Vertex training extension reads."""
  from tfx.extensions.google_cloud_ai_platform import constants  # pylint: disable=g-import-not-at-top
  from tfx.extensions.google_cloud_ai_platform.trainer import executor  # pylint: disable=g-import-not-at-top
  v = config.pipeline.vertex
  if not _PROJECT.match(str(v.project or '')):
    raise TrainingModeError(f'pipeline.vertex.project={v.project!r}: the Google Cloud project '
                            'id the CustomJob runs in (required for training=vertex)')
  if not _REGION.match(str(v.region or '')):
    raise TrainingModeError(f'pipeline.vertex.region={v.region!r}: a Vertex AI region such '
                            'as us-central1 (required for training=vertex)')
  return {
      constants.ENABLE_VERTEX_KEY: True,
      constants.VERTEX_REGION_KEY: str(v.region),
      executor.TRAINING_ARGS_KEY: {'project': str(v.project),
                                   'job_spec': job_spec(config, image)},
  }


def trainer(config: ml_collections.ConfigDict, *, image: str, target: str | None,
            **trainer_args):
  """The Trainer component of `config`'s training mode (`trainer_args`: the Trainer's own
  arguments, custom_config included)."""
  name = mode(config)
  if name == 'in_pod':
    return tfx.components.Trainer(**trainer_args)
  if target is None:
    raise TrainingModeError("pipeline.training='vertex' runs from a Kubeflow target only "
                            '(pipelines.compile_kubeflow): the CustomJob reads the examples '
                            'from the pipeline root, which a local run keeps on local disk')
  from tfx.extensions.google_cloud_ai_platform.trainer import component  # pylint: disable=g-import-not-at-top
  custom = dict(trainer_args.pop('custom_config', {}) or {})
  custom.update(vertex_custom_config(config, image))
  return component.Trainer(custom_config=custom, **trainer_args)
