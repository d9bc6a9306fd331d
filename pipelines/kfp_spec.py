"""Reading a compiled Kubeflow spec, and the rules the open-source KFP v2 backend applies to it.

`load` reads what pipelines.compile_kubeflow writes: a PipelineSpec (YAML, target kfp) or a
Vertex AI PipelineJob (JSON, target vertex; its `pipelineSpec` is taken). `backend_problems`
lists what the open-source backend would refuse when it turns the spec into an Argo workflow
(kubeflow/pipelines backend/src/v2/compiler/argocompiler: only container and importer
executors, no condition on an importer, no artifact iterator, every referenced component,
executor and upstream task present) or fail on at run time (the driver evaluates a task's
trigger condition against that task's own inputs, so it may name no other artifact).
"""

from __future__ import annotations

import json
import re

import yaml

SCHEMA_VERSION = '2.1.0'
_CONDITION_INPUT = re.compile(r"inputs\.artifacts\['([^']+)'\]")


def load(path: str) -> dict:
  """The PipelineSpec dict in `path` (YAML or JSON; a PipelineJob's `pipelineSpec`)."""
  with open(path) as f:
    text = f.read()
  doc = json.loads(text) if path.endswith('.json') else next(yaml.safe_load_all(text))
  if not isinstance(doc, dict):
    raise ValueError(f'{path}: not a pipeline spec')
  return doc.get('pipelineSpec', doc)


def all_tasks(spec: dict) -> dict[str, dict]:
  """Tasks of the root DAG and of nested DAG components, by task name."""
  tasks = dict(spec.get('root', {}).get('dag', {}).get('tasks', {}))
  for component in spec.get('components', {}).values():
    tasks.update(component.get('dag', {}).get('tasks', {}))
  return tasks


def executor_of(spec: dict, task: dict) -> tuple[str, dict]:
  """(executor label, ExecutorSpec dict) of a task whose component runs an executor."""
  component = spec['components'][task['componentRef']['name']]
  label = component['executorLabel']
  return label, spec['deploymentSpec']['executors'][label]


def backend_problems(spec: dict) -> list[str]:
  """What the open-source KFP v2 backend would refuse in `spec` (empty: nothing found)."""
  problems = []
  if not spec.get('pipelineInfo', {}).get('name'):
    problems.append('pipelineInfo.name is empty')
  if spec.get('schemaVersion') != SCHEMA_VERSION:
    problems.append(f'schemaVersion {spec.get("schemaVersion")!r}: parameters must be '
                    f'{SCHEMA_VERSION} (parameterValues, which the open-source driver fills)')
  executors = spec.get('deploymentSpec', {}).get('executors', {})
  for label, executor in sorted(executors.items()):
    kinds = set(executor) - {'container', 'importer'}
    if kinds:
      problems.append(f'executor {label}: {sorted(kinds)} executors are not implemented by '
                      'the open-source backend (only container and importer)')
  components = spec.get('components', {})
  for name, task in sorted(all_tasks(spec).items()):
    ref = task.get('componentRef', {}).get('name', '')
    if ref not in components:
      problems.append(f'task {name}: component {ref!r} not found')
      continue
    label = components[ref].get('executorLabel')
    if label is not None and label not in executors:
      problems.append(f'task {name}: executor {label!r} not found')
    if 'artifactIterator' in task:
      problems.append(f'task {name}: artifact iterators are not implemented')
    condition = task.get('triggerPolicy', {}).get('condition', '')
    if condition and label in executors and 'importer' in executors[label]:
      problems.append(f'task {name}: triggerPolicy.condition on an importer is not supported')
    own = set(task.get('inputs', {}).get('artifacts', {}))
    for key in _CONDITION_INPUT.findall(condition):
      if key not in own:
        problems.append(f'task {name}: condition reads artifact {key!r}, which is not one of '
                        f'its inputs {sorted(own)}')
  names = set(all_tasks(spec))
  for name, task in sorted(all_tasks(spec).items()):
    for upstream in task.get('dependentTasks', []):
      if upstream not in names:
        problems.append(f'task {name}: unknown upstream task {upstream!r}')
  return problems
