r"""The container entrypoint of every component on Kubeflow: TFX's KFP v2 entrypoint, unchanged,
on the executor input the open-source KFP driver builds.

  python -m pipelines.kfp_entrypoint --executor_class_path=<class> \
      --json_serialized_invocation_args='{{$}}' [--json_serialized_inputs_spec_args=...]

Open-source Kubeflow Pipelines >= 2.5 (with PUBLISH_LOGS=true, its default) adds an output
artifact `executor-logs` of type `system.Artifact` to every container task: the launcher tees
the task's log into it and uploads it. TFX 1.16's entrypoint
(tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor) imports a Python class for
every output artifact's type and fails on that one ("Could not import system.Artifact") before
the executor starts. This module removes output artifacts whose type is not a TFX artifact
class from the executor input (the launcher still owns and uploads them) and then runs TFX's
entrypoint as its own `__main__`, with the same arguments otherwise.
"""

from __future__ import annotations

import json
import runpy
import sys

from absl import logging

TFX_ENTRYPOINT = 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'
_INVOCATION_FLAG = '--json_serialized_invocation_args'


def is_tfx_artifact_type(type_schema: dict) -> bool:
  """Whether TFX's entrypoint can map this ArtifactTypeSchema (JSON) to an artifact class."""
  from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils  # pylint: disable=g-import-not-at-top
  from tfx.types import artifact  # pylint: disable=g-import-not-at-top
  from tfx.utils import import_utils  # pylint: disable=g-import-not-at-top
  schema = json_format.ParseDict(type_schema, pipeline_spec_pb2.ArtifactTypeSchema())
  try:
    cls = import_utils.import_class_by_path(utils._retrieve_class_path(schema))  # pylint: disable=protected-access
  except (ImportError, AttributeError, ValueError):
    return False
  return isinstance(cls, type) and issubclass(cls, artifact.Artifact)


def tfx_outputs_only(executor_input_json: str) -> tuple[str, list[str]]:
  """The executor input without non-TFX output artifacts, and the names removed."""
  executor_input = json.loads(executor_input_json)
  outputs = executor_input.get('outputs', {}).get('artifacts', {})
  dropped = sorted(name for name, artifacts in outputs.items()
                   if not all(is_tfx_artifact_type(a.get('type', {}))
                              for a in artifacts.get('artifacts', [])))
  if not dropped:
    return executor_input_json, []
  for name in dropped:
    del outputs[name]
  return json.dumps(executor_input), dropped


def _rewrite_argv(argv: list[str]) -> list[str]:
  argv = list(argv)
  for i, arg in enumerate(argv):
    if arg == _INVOCATION_FLAG and i + 1 < len(argv):
      argv[i + 1], dropped = tfx_outputs_only(argv[i + 1])
    elif arg.startswith(_INVOCATION_FLAG + '='):
      value, dropped = tfx_outputs_only(arg[len(_INVOCATION_FLAG) + 1:])
      argv[i] = f'{_INVOCATION_FLAG}={value}'
    else:
      continue
    if dropped:
      logging.info('kfp_entrypoint: outputs the orchestrator added and TFX does not know, '
                   'left to the launcher: %s', dropped)
  return argv


def main() -> None:
  sys.argv = [TFX_ENTRYPOINT] + _rewrite_argv(sys.argv[1:])
  runpy.run_module(TFX_ENTRYPOINT, run_name='__main__', alter_sys=True)


if __name__ == '__main__':
  main()
