"""What each Kubeflow component's pod asks for, from `config.pipeline.resources.<node id>`.

Every field is checked (format and a stated limit) before anything is compiled; a bad one is
a ResourceError naming `pipeline.resources.<node>.<field>`. Written into the compiled spec
through TFX's platform config (`component.with_platform_config(ResourceSpec)`, which TFX
1.16's KFP v2 step builder copies into the executor's `container.resources`):

  cpu      -> resourceCpuLimit ('4', '500m') and the deprecated cpuLimit (float), as KFP's
              own `set_cpu_limit` writes them (older backends read the float). Kubernetes
              takes a limit without a request as the request too; Vertex AI Pipelines picks
              the machine from the limits.
  memory   -> resourceMemoryLimit ('16G', '32Gi') and memoryLimit (float, GB).
  accelerator_type / accelerator_count -> accelerator.{resourceType, resourceCount} (and the
              deprecated type / count). Vertex AI takes its accelerator names
              (NVIDIA_TESLA_T4, TPU_V3, ...: google.cloud.aiplatform_v1 AcceleratorType).
              The open-source backend uses the type as the Kubernetes resource name of the
              limit, so for target kfp an NVIDIA_* name becomes `nvidia.com/gpu` plus a node
              selector on GKE's label `cloud.google.com/gke-accelerator` (nvidia-tesla-t4),
              a TPU_* name becomes `google.com/tpu` and needs the GKE TPU labels in
              node_selector; a name with '/' (nvidia.com/gpu, amd.com/gpu) is used as it is.
  node_selector ('k=v,k=v', kfp only) -> the KFP Kubernetes platform spec
              (kfp-kubernetes' KubernetesExecutorConfig.nodeSelector), a second YAML document.
"""

from __future__ import annotations

import dataclasses
import re

import ml_collections
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from polyvit_tf.configs.errors import ConfigError

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec

FIELDS = ('cpu', 'memory', 'accelerator_type', 'accelerator_count', 'node_selector')
MAX_CPU = 1024.0                 # cores
MAX_MEMORY_BYTES = 16 * 2**40    # 16 TiB
MAX_ACCELERATORS = 16            # per pod / machine
MAX_NODE_SELECTOR_LABELS = 16
# KFP's own validation of cpu / memory strings (kfp.dsl.PipelineTask.set_cpu_limit / ...).
_CPU = re.compile(r'^([0-9]*[.])?[0-9]+m?$')
_MEMORY = re.compile(r'^([0-9]+)(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$')
_MEMORY_UNITS = {'': 1, 'K': 10**3, 'M': 10**6, 'G': 10**9, 'T': 10**12, 'P': 10**15,
                 'E': 10**18, 'Ki': 2**10, 'Mi': 2**20, 'Gi': 2**30, 'Ti': 2**40,
                 'Pi': 2**50, 'Ei': 2**60}
# Kubernetes label keys (optional DNS prefix) and values.
_LABEL_KEY = re.compile(r'^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?'
                        r'[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$')
_LABEL_VALUE = re.compile(r'^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$')
_RESOURCE_NAME = re.compile(r'^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*'
                            r'[A-Za-z0-9])?$')
GKE_ACCELERATOR_LABEL = 'cloud.google.com/gke-accelerator'
GKE_TPU_LABEL = 'cloud.google.com/gke-tpu-accelerator'


class ResourceError(ConfigError):
  """A `pipeline.resources` entry that cannot be requested."""


@dataclasses.dataclass(frozen=True)
class Request:
  """One node's validated request ('' / 0 = not requested)."""
  node: str
  cpu: str = ''
  memory: str = ''
  accelerator_type: str = ''
  accelerator_count: int = 0
  node_selector: tuple[tuple[str, str], ...] = ()

  @property
  def empty(self) -> bool:
    return not (self.cpu or self.memory or self.accelerator_type or self.node_selector)


def vertex_accelerator_types() -> tuple[str, ...]:
  """Vertex AI's accelerator names (google.cloud.aiplatform_v1 AcceleratorType)."""
  from google.cloud.aiplatform_v1.types import accelerator_type  # pylint: disable=g-import-not-at-top
  return tuple(n for n in accelerator_type.AcceleratorType.__members__
               if n != 'ACCELERATOR_TYPE_UNSPECIFIED')


def cpu_cores(cpu: str) -> float:
  return float(cpu[:-1]) / 1000 if cpu.endswith('m') else float(cpu)


def memory_bytes(memory: str) -> int:
  number, unit = _MEMORY.match(memory).groups()
  return int(number) * _MEMORY_UNITS[unit or '']


def _parse_node_selector(field: str, text: str) -> tuple[tuple[str, str], ...]:
  labels = {}
  for item in filter(None, (p.strip() for p in text.split(','))):
    key, sep, value = item.partition('=')
    key, value = key.strip(), value.strip()
    if not sep or not _LABEL_KEY.match(key) or len(key) > 253 or not _LABEL_VALUE.match(value):
      raise ResourceError(f'{field}: {item!r} is not a Kubernetes label key=value')
    labels[key] = value
  if len(labels) > MAX_NODE_SELECTOR_LABELS:
    raise ResourceError(f'{field}: {len(labels)} labels, at most {MAX_NODE_SELECTOR_LABELS}')
  return tuple(sorted(labels.items()))


def parse(node: str, entry: ml_collections.ConfigDict, target: str) -> Request:
  """The validated Request of one `pipeline.resources.<node>` entry for `target`."""
  prefix = f'pipeline.resources.{node}'
  unknown = sorted(set(entry.keys()) - set(FIELDS))
  if unknown:
    raise ResourceError(f'{prefix}: unknown fields {unknown} (fields: {list(FIELDS)})')
  cpu = str(entry.get('cpu', '') or '').strip()
  memory = str(entry.get('memory', '') or '').strip()
  kind = str(entry.get('accelerator_type', '') or '').strip()
  count = entry.get('accelerator_count', 0) or 0
  if cpu:
    if not _CPU.match(cpu) or not 0 < cpu_cores(cpu) <= MAX_CPU:
      raise ResourceError(f'{prefix}.cpu={cpu!r}: a number of cores (e.g. 4, 0.5, 500m) '
                          f'in (0, {MAX_CPU:g}]')
  if memory:
    if not _MEMORY.match(memory) or not 0 < memory_bytes(memory) <= MAX_MEMORY_BYTES:
      raise ResourceError(f'{prefix}.memory={memory!r}: an amount such as 16G or 32Gi, '
                          'at most 16Ti')
  if isinstance(count, bool) or not isinstance(count, int):
    raise ResourceError(f'{prefix}.accelerator_count={count!r}: an integer')
  if kind:
    names = vertex_accelerator_types()
    if '/' in kind:
      if target != 'kfp' or not _RESOURCE_NAME.match(kind):
        raise ResourceError(f'{prefix}.accelerator_type={kind!r}: Kubernetes resource names '
                            'are for target kfp only; Vertex AI takes one of '
                            f'{list(names)}')
    elif kind not in names:
      raise ResourceError(f'{prefix}.accelerator_type={kind!r} is not one of {list(names)}'
                          + (' or a Kubernetes resource name (nvidia.com/gpu)'
                             if target == 'kfp' else ''))
  if kind and not 1 <= count <= MAX_ACCELERATORS:
    raise ResourceError(f'{prefix}.accelerator_count={count}: 1 to {MAX_ACCELERATORS} '
                        f'with accelerator_type {kind!r}')
  if count and not kind:
    raise ResourceError(f'{prefix}.accelerator_count={count} without an accelerator_type')
  selector = _parse_node_selector(f'{prefix}.node_selector',
                                  str(entry.get('node_selector', '') or ''))
  if selector and target != 'kfp':
    raise ResourceError(f'{prefix}.node_selector: only for target kfp (Vertex AI chooses '
                        'machines by the cpu / memory / accelerator request)')
  if target == 'kfp' and kind.startswith('TPU_') and not dict(selector).get(GKE_TPU_LABEL):
    raise ResourceError(f'{prefix}.accelerator_type={kind!r} on Kubernetes needs the GKE TPU '
                        f'node labels in node_selector ({GKE_TPU_LABEL}=..., '
                        'cloud.google.com/gke-tpu-topology=...)')
  return Request(node, cpu, memory, kind, int(count), selector)


def requests(config: ml_collections.ConfigDict, nodes: list[str],
             target: str) -> dict[str, Request]:
  """The non-empty requests of `config` for the pipeline's `nodes`. An entry for a node the
  pipeline does not have is an error unless it requests nothing (configs carry an entry for
  every node any pipeline of their tasks can have)."""
  section = config.get('pipeline', {}).get('resources', {}) or {}
  result = {}
  for node in sorted(section.keys()):
    request = parse(node, section[node], target)
    if request.empty:
      continue
    if node not in nodes:
      raise ResourceError(f'pipeline.resources.{node}: the pipeline has no node {node!r} '
                          f'(nodes: {sorted(nodes)})')
    result[node] = request
  return result


def kubernetes_accelerator(request: Request) -> tuple[str, dict[str, str]]:
  """(Kubernetes resource name, node labels) of an accelerator on open-source KFP."""
  kind = request.accelerator_type
  if '/' in kind:
    return kind, {}
  if kind.startswith('TPU_'):
    return 'google.com/tpu', {}
  return 'nvidia.com/gpu', {GKE_ACCELERATOR_LABEL: kind.lower().replace('_', '-')}


def resource_spec(request: Request, target: str) -> ResourceSpec:
  """The ResourceSpec TFX writes into the component's container spec."""
  spec = ResourceSpec()
  if request.cpu:
    spec.resource_cpu_limit = request.cpu
    spec.cpu_limit = cpu_cores(request.cpu)
  if request.memory:
    spec.resource_memory_limit = request.memory
    spec.memory_limit = memory_bytes(request.memory) / 10**9
  if request.accelerator_type:
    kind = (kubernetes_accelerator(request)[0] if target == 'kfp'
            else request.accelerator_type)
    spec.accelerator.resource_type = kind
    spec.accelerator.resource_count = str(request.accelerator_count)
    spec.accelerator.type = kind
    spec.accelerator.count = request.accelerator_count
  return spec


def node_labels(request: Request, target: str) -> dict[str, str]:
  """The node selector of a request on target kfp (empty on vertex)."""
  if target != 'kfp':
    return {}
  labels = kubernetes_accelerator(request)[1] if request.accelerator_type else {}
  labels.update(dict(request.node_selector))
  return labels


def apply(components, reqs: dict[str, Request], target: str) -> None:
  """Sets each requested component's platform config (its ResourceSpec)."""
  for component in components:
    request = reqs.get(component.id)
    if request is not None:
      component.with_platform_config(resource_spec(request, target))


def platform_spec(spec: dict, reqs: dict[str, Request], target: str) -> dict | None:
  """The KFP PlatformSpec document (node selectors) for the compiled `spec`, or None."""
  from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s_pb2  # pylint: disable=g-import-not-at-top
  executors = {}
  for node, request in sorted(reqs.items()):
    labels = node_labels(request, target)
    if not labels:
      continue
    component = spec['root']['dag']['tasks'][node]['componentRef']['name']
    label = spec['components'][component]['executorLabel']
    config = k8s_pb2.KubernetesExecutorConfig(
        node_selector=k8s_pb2.NodeSelector(labels=labels))
    executors[label] = json_format.MessageToDict(config)
  if not executors:
    return None
  doc = {'platforms': {'kubernetes': {'deploymentSpec': {'executors': executors}}}}
  json_format.ParseDict(doc, pipeline_spec_pb2.PlatformSpec())  # what kfp.Client parses
  return doc
