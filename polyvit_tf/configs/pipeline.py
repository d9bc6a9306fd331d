"""The `pipeline` section of a config: what the TFX pipeline (pipelines/) reads, never training.

  thresholds.<task>, regression_tolerance   the blessing (docs/pipeline.md)
  training          where the Trainer's loop runs (docs/training.md "Where the Trainer runs"):
                    'in_pod' (the component's own pod, with the configured strategy) or
                    'vertex' (a Vertex AI CustomJob started by TFX's Vertex training extension)
  resources.<node>  what a Kubeflow component's pod asks for: cpu ('4', '500m'), memory
                    ('16G', '32Gi'), accelerator_type ('NVIDIA_TESLA_T4'; on open-source KFP
                    also a Kubernetes resource name such as 'nvidia.com/gpu'),
                    accelerator_count, node_selector ('key=value,...'; open-source KFP only).
                    Empty / 0 = not requested. One entry per pipeline node (ids as in the
                    compiled spec), so every key can be set on the command line.
  vertex            the CustomJob of training='vertex': project, region, image ('' = the
                    pipeline's), the chief's machine and accelerators, worker_count more
                    replicas of the same machine (MultiWorkerMirroredStrategy)
  infra_validator   open-source Kubeflow (target kfp) only: TF Serving on the cluster loads
                    the model before Pusher
"""

from __future__ import annotations

from typing import Iterable

import ml_collections

TRAINING_MODES = ('in_pod', 'vertex')
# Pipeline node ids (pipelines/pipeline.py), the per-task ones as <prefix>_<task>.
NODES = ('PolyViTExampleGen', 'StatisticsGen', 'Trainer', 'PolyViTEvaluator', 'InfraValidator',
         'Pusher', 'TFLiteExport')
TASK_NODE_PREFIXES = ('schema', 'validator', 'gate')


def node_ids(tasks: Iterable[str]) -> list[str]:
  """Every node id the pipeline of these tasks can have."""
  return list(NODES) + [f'{p}_{t}' for t in sorted(tasks) for p in TASK_NODE_PREFIXES]


def resource_request() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(cpu='', memory='', accelerator_type='',
                                        accelerator_count=0, node_selector=''))


def section(tasks: Iterable[str]) -> ml_collections.ConfigDict:
  tasks = list(tasks)
  return ml_collections.ConfigDict(dict(
      # The blessing: every task's primary metric (mAP for multi-label tasks, top-1
      # otherwise) must reach its threshold and may not fall more than the tolerance below
      # the served model's.
      thresholds={task: 0.0 for task in tasks},
      regression_tolerance=0.02,
      training=TRAINING_MODES[0],
      resources={node: resource_request() for node in node_ids(tasks)},
      vertex=dict(
          project='', region='', image='', service_account='',
          machine_type='n1-standard-8', accelerator_type='', accelerator_count=0,
          worker_count=0,
          # MultiWorkerMirroredStrategy cannot lose a replica: restart them all, and they
          # resume from the chief's newest checkpoint (docs/training.md).
          restart_job_on_worker_restart=True),
      infra_validator=dict(
          enabled=True,
          tensorflow_serving_image='tensorflow/serving', tensorflow_serving_tag='2.16.1',
          service_account='',  # '' = the component pod's
          max_loading_time_seconds=300, num_tries=3,
          # Hard deadline of the model server pod (cleanup if the validator dies).
          active_deadline_seconds=3600),
  ))
