"""TFX's InfraValidator on Kubeflow Pipelines v2: TF Serving on Kubernetes loads the model.

TFX 1.16's KFP v2 compiler cannot compile the standard component: its step builder
(tfx/orchestration/kubeflow/v2/step_builder.py) raises NotImplementedError for
`isinstance(node, components.InfraValidator)`. And TFX's executor, run as a plain container
under the v2 backend, would not work either:
  - its KubernetesRunner requires KFP_POD_NAME and KFP_NAMESPACE (kube_utils.is_inside_kfp);
    the v2 backend's pods set KFP_POD_NAME and KFP_POD_UID only (kubeflow/pipelines
    backend/src/v2/compiler/argocompiler/common.go), so it raises "KubernetesRunner should be
    running inside KFP";
  - it copies the model into the TF Serving layout under the executor's tmp dir, which TFX's
    KFP v2 entrypoint puts beside the executor output file (/tmp/kfp_outputs/.temp/ on the
    open-source backend: the component pod's own disk), and the model server pod it creates
    mounts nothing but a ReadWriteMany PVC, so the server could not see the model.

So this component is InfraValidator with TFX's own spec (InfraValidatorSpec: model in,
InfraBlessing out, ServingSpec / ValidationSpec / RequestSpec parameters) and TFX's own
executor, changed in exactly those two places: KFP_NAMESPACE is taken from the pod's service
account namespace when the orchestrator did not set it, and the TF Serving copy of the model
is staged under the blessing artifact's URI (the pipeline root, gs:// or s3://, which TF
Serving reads itself) and removed after validation. TFX's KubernetesRunner then creates the
`tensorflow/serving:<tag>` pod in the pipeline's namespace (owned by the component's pod),
waits until it runs, polls GetModelStatus until the model is AVAILABLE (or the deadline),
retries `num_tries` times and deletes the pod. The blessing is TFX's: INFRA_BLESSED /
INFRA_NOT_BLESSED and the `blessed` custom property, which Pusher's executor checks.

Requests: LOAD_ONLY (no RequestSpec). TFX's request builder (request_builder.py) makes
PredictRequests only for a signature with ONE string input of shape [None] holding serialized
tf.Example records (or Classify / Regress signatures). Ours do not take tf.Examples: the
tensor signatures take float tensors (the builder refuses them), image / audio `<task>_raw`
take file bytes (the builder would accept the shape and every request would fail to decode
a tf.Example as JPEG / WAV), video `<task>_raw` takes (None, None) (refused). With `<task>_examples`
signatures (issue 17 item 2) the requests become possible, but one RequestSpec reads one split,
and each task's examples live in its own `<task>_eval` split. Warm-up requests per task run
anyway: TF Serving replays the model's assets.extra/tf_serving_warmup_requests (one request
per signature) while loading it, and a failed warm-up fails the load; see docs/pipeline.md.

The pod's service account needs create / get / delete on pods and get on pods/log in its
namespace (the default `pipeline-runner` of a KFP install has them).
"""

from __future__ import annotations

import os

from absl import logging
from tfx import types
from tfx.components.infra_validator import executor as tfx_executor
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import infra_validator_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import kube_utils

from polyvit_tf.configs.errors import ConfigError

SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace'
STAGING_DIR = 'serving_model'


class InfraValidatorError(ConfigError):
  """A `pipeline.infra_validator` setting that cannot be used."""


def ensure_kfp_namespace(namespace_file: str = SERVICE_ACCOUNT_NAMESPACE) -> str | None:
  """Sets KFP_NAMESPACE from the pod's service account when the orchestrator did not."""
  if os.environ.get(kube_utils.KFP_NAMESPACE):
    return os.environ[kube_utils.KFP_NAMESPACE]
  if not os.path.exists(namespace_file):
    return None
  with open(namespace_file) as f:
    namespace = f.read().strip()
  if namespace:
    os.environ[kube_utils.KFP_NAMESPACE] = namespace
  return namespace or None


class Executor(tfx_executor.Executor):
  """TFX's InfraValidator executor, with the model staged where the server pod can read it."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    namespace = ensure_kfp_namespace()
    logging.info('InfraValidator: namespace %s, pod %s', namespace,
                 os.environ.get(kube_utils.KFP_POD_NAME))
    blessing = output_dict[standard_component_specs.BLESSING_KEY][0]
    self._staging_base = os.path.join(blessing.uri, STAGING_DIR)
    super().Do(input_dict, output_dict, exec_properties)

  def _get_tmp_dir(self) -> str:
    # TFX stages the TF Serving copy of the model under the tmp dir and deletes it after
    # validation (its own cleanup); here that dir is in the pipeline root.
    staging = getattr(self, '_staging_base', None)
    return os.path.join(staging, '') if staging else super()._get_tmp_dir()


class PolyViTInfraValidator(base_component.BaseComponent):
  """InfraValidator (TFX's spec and executor) that the KFP v2 compiler can express."""

  SPEC_CLASS = standard_component_specs.InfraValidatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, model: types.BaseChannel,
               serving_spec: infra_validator_pb2.ServingSpec,
               validation_spec: infra_validator_pb2.ValidationSpec | None = None):
    spec = standard_component_specs.InfraValidatorSpec(
        model=model, examples=None, blessing=types.Channel(type=standard_artifacts.InfraBlessing),
        serving_spec=serving_spec, validation_spec=validation_spec, request_spec=None)
    super().__init__(spec=spec)


def serving_spec(section, model_name: str) -> infra_validator_pb2.ServingSpec:
  """TF Serving `<image>:<tag>` on Kubernetes, from `pipeline.infra_validator`."""
  return infra_validator_pb2.ServingSpec(
      tensorflow_serving=infra_validator_pb2.TensorFlowServing(
          image_name=str(section.tensorflow_serving_image),
          tags=[str(section.tensorflow_serving_tag)]),
      kubernetes=infra_validator_pb2.KubernetesConfig(
          service_account_name=str(section.service_account or ''),
          active_deadline_seconds=int(section.active_deadline_seconds)),
      model_name=model_name)


def validation_spec(section) -> infra_validator_pb2.ValidationSpec:
  return infra_validator_pb2.ValidationSpec(
      max_loading_time_seconds=int(section.max_loading_time_seconds),
      num_tries=int(section.num_tries))


def create(model: types.BaseChannel, section, model_name: str) -> PolyViTInfraValidator:
  """The InfraValidator node of `pipeline.infra_validator` (id `InfraValidator`)."""
  for key, low, high in (('max_loading_time_seconds', 10, 3600), ('num_tries', 1, 10),
                         ('active_deadline_seconds', 60, 86400)):
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
      raise InfraValidatorError(f'pipeline.infra_validator.{key}={value!r}: an integer in '
                       f'[{low}, {high}]')
  if not str(section.tensorflow_serving_tag or ''):
    raise InfraValidatorError('pipeline.infra_validator.tensorflow_serving_tag is empty')
  return PolyViTInfraValidator(model=model, serving_spec=serving_spec(section, model_name),
                               validation_spec=validation_spec(section)).with_id(
                                   'InfraValidator')

