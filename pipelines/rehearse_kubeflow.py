r"""Executes a compiled Kubeflow spec as open-source Kubeflow Pipelines v2 would, on this machine.

  python -m pipelines.rehearse_kubeflow --spec=polyvit_kfp.yaml --root=/tmp/rehearsal [--docker]

The spec is loaded with KFP's own loader (kfp.components.load_component_from_file) and checked
against the open-source backend's rules (pipelines/kfp_spec.py). KFP 2.13's local runner
(kfp.local) cannot execute it: a task with a `triggerPolicy.condition` raises
NotImplementedError, its SubprocessRunner refuses container components, it names artifacts by
output key (the driver passes the ML Metadata id), adds no `executor-logs` output and keeps no
cache between runs. So this module plays KFP's driver and launcher
(kubeflow/pipelines backend/src/v2/driver, component/launcher_v2.go), per task:
  driver    inputs resolved from upstream outputs (artifact `name` = its id in the store,
            `uri`, `metadata` = its custom properties as the driver converts them, `type` =
            the producer's instance schema), parameters in `parameterValues`; the trigger
            condition evaluated on that input (pipelines/kfp_cel.py): false = SKIPPED; the
            cache key of the driver (input artifact names, parameter values, output specs,
            image, command, args): a COMPLETE execution with that key is reused = CACHED;
            outputs provisioned at <pipeline root>/<pipeline>/<run>/<task>/<uuid>/<name>,
            `executor-logs` included (PUBLISH_LOGS=true, the backend's default), output
            metadata file /tmp/kfp_outputs/output_metadata.json;
  launcher  parameter defaults added, placeholders ({{$}} and the others) substituted in the
            container's command and args exactly as the spec gives them, the command run (in
            the spec's image with --docker; without it in this environment, `python` being
            this interpreter), the log teed into `executor-logs`, the executor output merged
            into the output artifacts, which are recorded in the store.
The store (<root>/kfp_store.json) stands in for the cluster's ML Metadata and cache server.
Artifacts live under <root>/pipeline_root (as `create_run_from_pipeline_package(...,
pipeline_root=...)` overrides the spec's default root). With --docker, <root> is mounted at
the same path and the task's metadata directory at /tmp/kfp_outputs, with no network.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid

from absl import app
from absl import flags
from google.protobuf import json_format
from kfp import components
from kfp.pipeline_spec import pipeline_spec_pb2

from pipelines import kfp_cel
from pipelines import kfp_spec

OUTPUT_METADATA_FILE = '/tmp/kfp_outputs/output_metadata.json'  # the launcher's path
LOGS_OUTPUT = 'executor-logs'
_LOGS_TYPE = {'schemaTitle': 'system.Artifact'}


@dataclasses.dataclass
class TaskResult:
  task: str
  state: str  # COMPLETE, CACHED, SKIPPED, FAILED, NOT_RUN (an upstream task failed)
  seconds: float
  detail: str = ''
  cpu_seconds: float = 0.0  # user + system of the task's process (local runs only)


class RehearsalError(RuntimeError):
  """The spec cannot be executed, or a task failed (the message names it)."""


class Store:
  """Artifacts and executions, standing in for the cluster's ML Metadata and cache server."""

  def __init__(self, path: str):
    self.path, self.lock = path, threading.Lock()
    self.data = {'artifacts': {}, 'executions': []}
    if os.path.exists(path):
      with open(path) as f:
        self.data = json.load(f)

  def save(self) -> None:
    with self.lock:
      tmp = self.path + '.tmp'
      with open(tmp, 'w') as f:
        json.dump(self.data, f, indent=1, sort_keys=True)
      os.replace(tmp, self.path)

  def record_artifact(self, output_name: str, artifact: dict) -> str:
    """The launcher's RecordArtifact: metadata -> MLMD custom properties; returns the id."""
    properties = {k: _mlmd_value(v) for k, v in artifact.get('metadata', {}).items()}
    properties.setdefault('display_name', {'string': output_name})
    properties.setdefault('store_session_info', {'string': '{"Provider":"local"}'})
    type_ = artifact.get('type', {})
    schema = type_.get('instanceSchema') or f'title: {type_.get("schemaTitle", "")}'
    with self.lock:
      artifact_id = str(len(self.data['artifacts']) + 1)
      self.data['artifacts'][artifact_id] = {'uri': artifact['uri'], 'schema': schema,
                                             'custom_properties': properties}
    return artifact_id

  def runtime_artifact(self, artifact_id: str) -> dict:
    """The driver's ToRuntimeArtifact of a stored artifact."""
    a = self.data['artifacts'][artifact_id]
    return {'name': artifact_id, 'uri': a['uri'], 'type': {'instanceSchema': a['schema']},
            'metadata': {k: _struct_value(v) for k, v in a['custom_properties'].items()}}

  def add_execution(self, record: dict) -> None:
    with self.lock:
      self.data['executions'].append(record)

  def cached(self, fingerprint: str) -> dict | None:
    with self.lock:
      for record in reversed(self.data['executions']):
        if record['fingerprint'] == fingerprint and record['state'] == 'COMPLETE':
          return record
    return None


def _mlmd_value(value):
  """metadata.StructValueToMLMDValue (numbers become doubles, bools ints)."""
  if isinstance(value, bool):
    return {'int': int(value)}
  if isinstance(value, (int, float)):
    return {'double': float(value)}
  if isinstance(value, str):
    return {'string': value}
  if isinstance(value, list):
    return {'struct': {'list': value}}
  if isinstance(value, dict):
    return {'struct': {'struct': value}}
  raise RehearsalError(f'unsupported metadata value {value!r}')


def _struct_value(value: dict):
  """The driver's MLMD value -> protobuf Value (ints and doubles both become numbers)."""
  kind, v = next(iter(value.items()))
  return float(v) if kind in ('int', 'double') else v


def _value_to_text(value) -> str:
  """metadata.PbValueToText: how the driver turns a non-string value into a STRING input."""
  if isinstance(value, str):
    return value
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if isinstance(value, float):
    return repr(int(value)) if value.is_integer() else repr(value)
  return json.dumps(value, separators=(',', ':'))


class Rehearsal:
  """One run of a compiled spec (see the module docstring)."""

  def __init__(self, spec: dict, root: str, docker: bool, image: str = '',
               parallelism: int = 2, publish_logs: bool = True, docker_cmd: str = 'docker'):
    self.spec, self.root, self.docker = spec, os.path.abspath(root), docker
    self.image_override, self.parallelism = image, max(1, parallelism)
    self.publish_logs, self.docker_cmd = publish_logs, docker_cmd
    self.run_id = uuid.uuid4().hex[:12]
    name = spec['pipelineInfo']['name']
    self.run_root = os.path.join(self.root, 'pipeline_root', name, self.run_id)
    self.task_dir = os.path.join(self.root, 'tasks', self.run_id)
    self.store = Store(os.path.join(self.root, 'kfp_store.json'))
    self.outputs: dict[str, dict[str, str]] = {}  # task -> output key -> artifact id
    self.parameters: dict[str, dict] = {}  # task -> output parameter values
    self.log_lock = threading.Lock()

  # ---- driver ---------------------------------------------------------------------------
  def _inputs(self, name: str, task: dict, component: dict) -> dict:
    parameters = {}
    root_inputs = self.spec['root'].get('inputDefinitions', {}).get('parameters', {})
    for key, spec in task.get('inputs', {}).get('parameters', {}).items():
      if 'runtimeValue' in spec:
        parameters[key] = spec['runtimeValue']['constant']
      elif 'componentInputParameter' in spec:
        parameters[key] = root_inputs[spec['componentInputParameter']]['defaultValue']
      elif 'taskOutputParameter' in spec:
        out = spec['taskOutputParameter']
        parameters[key] = self.parameters[out['producerTask']][out['outputParameterKey']]
      else:
        raise RehearsalError(f'task {name}: parameter {key}: {sorted(spec)} not supported')
    for key, spec in component.get('inputDefinitions', {}).get('parameters', {}).items():
      if key in parameters and spec.get('parameterType') == 'STRING':
        parameters[key] = _value_to_text(parameters[key])
    artifacts = {}
    for key, spec in task.get('inputs', {}).get('artifacts', {}).items():
      if 'taskOutputArtifact' not in spec:
        raise RehearsalError(f'task {name}: artifact {key}: {sorted(spec)} not supported')
      out = spec['taskOutputArtifact']
      artifact_id = self.outputs[out['producerTask']][out['outputArtifactKey']]
      artifacts[key] = {'artifacts': [self.store.runtime_artifact(artifact_id)]}
    return {'parameterValues': parameters, 'artifacts': artifacts}

  def _provision_outputs(self, name: str, component: dict, local_metadata: str) -> dict:
    salt = uuid.uuid4().hex
    specs = dict(component.get('outputDefinitions', {}).get('artifacts', {}))
    if self.publish_logs:
      specs[LOGS_OUTPUT] = {'artifactType': _LOGS_TYPE}
    artifacts = {}
    for key, spec in specs.items():
      artifact = {'uri': os.path.join(self.run_root, name, salt, key),
                  'type': spec['artifactType']}
      if spec.get('metadata'):
        artifact['metadata'] = spec['metadata']
      artifacts[key] = {'artifacts': [artifact]}
    params = {key: {'outputFile': os.path.join(os.path.dirname(local_metadata), 'params', key)}
              for key in component.get('outputDefinitions', {}).get('parameters', {})}
    return {'artifacts': artifacts, 'parameters': params,
            'outputFile': OUTPUT_METADATA_FILE if self.docker else local_metadata}

  def _fingerprint(self, executor_input: dict, component: dict, container: dict) -> str:
    """cacheutils.GenerateCacheKey's fields, hashed."""
    inputs, outputs = executor_input['inputs'], executor_input['outputs']
    key = {
        'inputArtifactNames': {k: [a['name'] for a in v['artifacts']]
                               for k, v in inputs['artifacts'].items()},
        'inputParameterValues': inputs['parameterValues'],
        'outputArtifactsSpec': {k: {'type': v['artifacts'][0]['type'],
                                    'metadata': v['artifacts'][0].get('metadata', {})}
                                for k, v in outputs['artifacts'].items()},
        'outputParametersSpec': {
            k: component['outputDefinitions']['parameters'][k]['parameterType']
            for k in outputs['parameters']},
        'containerSpec': {'image': container['image'],
                          'cmdArgs': container.get('command', []) + container.get('args', [])},
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

  # ---- launcher -------------------------------------------------------------------------
  @staticmethod
  def _placeholders(executor_input: dict) -> dict[str, str]:
    """launcher_v2.getPlaceholders (local paths are the uris here)."""
    message = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
    out = {'{{$}}': json_format.MessageToJson(message, indent=None)}
    for key, value in executor_input['inputs']['parameterValues'].items():
      out[f"{{{{$.inputs.parameters['{key}']}}}}"] = _value_to_text(value)
    for side in ('inputs', 'outputs'):
      for key, value in executor_input[side]['artifacts'].items():
        uri = value['artifacts'][0]['uri']
        out[f"{{{{$.{side}.artifacts['{key}'].uri}}}}"] = uri
        out[f"{{{{$.{side}.artifacts['{key}'].path}}}}"] = uri
    for key, value in executor_input['outputs']['parameters'].items():
      out[f"{{{{$.outputs.parameters['{key}'].output_file}}}}"] = value['outputFile']
    return out

  def _command(self, container: dict, executor_input: dict, task_dir: str) -> list[str]:
    placeholders = self._placeholders(executor_input)
    argv = []
    for part in container.get('command', []) + container.get('args', []):
      for placeholder, value in placeholders.items():
        part = part.replace(placeholder, value)
      argv.append(part)
    if self.docker:
      image = self.image_override or container['image']
      return [self.docker_cmd, 'run', '--rm', '--network=none',
              '--name', f'polyvit-rehearsal-{self.run_id}-{os.path.basename(task_dir)}',
              '-v', f'{self.root}:{self.root}',
              '-v', f'{os.path.join(task_dir, "kfp_outputs")}:/tmp/kfp_outputs',
              image] + argv
    if argv and argv[0] == 'python':  # as kfp.local's SubprocessRunner does
      argv[0] = sys.executable
    return argv

  def _prepare_dirs(self, executor_input: dict, task_dir: str) -> None:
    """Output folders; a local filesystem also needs the artifact directories that an object
    store does not (TFX writes into artifact uris directly)."""
    paths = [os.path.join(task_dir, 'kfp_outputs', 'params')]
    for value in executor_input['outputs']['artifacts'].values():
      paths.append(value['artifacts'][0]['uri'])
    for path in paths:
      os.makedirs(path, exist_ok=True)
    if self.docker and os.getuid() == 0:  # the image's user must write there
      uid, gid = self._image_user()
      for path in paths:
        while path.startswith(self.root + os.sep):
          os.chown(path, uid, gid)
          path = os.path.dirname(path)

  def _image_user(self) -> tuple[int, int]:
    if not hasattr(self, '_user'):
      image = self.image_override or next(
          e['container']['image'] for e in self.spec['deploymentSpec']['executors'].values()
          if 'container' in e)
      user = subprocess.run([self.docker_cmd, 'image', 'inspect', '-f', '{{.Config.User}}',
                             image], check=True, capture_output=True, text=True).stdout.strip()
      uid, _, gid = (user or '0:0').partition(':')
      self._user = (int(uid), int(gid or uid))
    return self._user

  @staticmethod
  def _execute(argv: list[str], log_path: str) -> tuple[int, float]:
    """(exit code, CPU seconds) of the command, its output teed to `log_path`."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, 'wb') as log:
      process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
      _, status, usage = os.wait4(process.pid, 0)
      process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime

  def _record_outputs(self, name: str, executor_input: dict, executor_output: dict,
                      component: dict) -> tuple[dict[str, str], dict]:
    ids = {}
    for key, value in executor_input['outputs']['artifacts'].items():
      artifact = copy.deepcopy(value['artifacts'][0])
      produced = executor_output.get('artifacts', {}).get(key, {}).get('artifacts', [])
      if produced:  # launcher_v2.mergeRuntimeArtifacts
        if produced[0].get('uri'):
          artifact['uri'] = produced[0]['uri']
        artifact.setdefault('metadata', {}).update(produced[0].get('metadata', {}))
      ids[key] = self.store.record_artifact(key, artifact)
    parameters = dict(executor_output.get('parameterValues', {}))
    for key, value in executor_input['outputs']['parameters'].items():
      if key not in parameters:
        kind = component['outputDefinitions']['parameters'][key]['parameterType']
        with open(value['outputFile']) as f:
          text = f.read()
        parameters[key] = text if kind == 'STRING' else json.loads(text)
    return ids, parameters

  # ---- one task, and the DAG -------------------------------------------------------------
  def run_task(self, name: str) -> TaskResult:
    start = time.time()
    task = self.spec['root']['dag']['tasks'][name]
    component = self.spec['components'][task['componentRef']['name']]
    _, executor = kfp_spec.executor_of(self.spec, task)
    if 'container' not in executor:
      raise RehearsalError(f'task {name}: only container executors run here')
    container = executor['container']
    task_dir = os.path.join(self.task_dir, name)
    local_metadata = os.path.join(task_dir, 'kfp_outputs', 'output_metadata.json')
    executor_input = {'inputs': self._inputs(name, task, component)}
    condition = task.get('triggerPolicy', {}).get('condition', '')
    record = {'run_id': self.run_id, 'task': name, 'fingerprint': '', 'outputs': {},
              'output_parameters': {}}
    if condition:
      try:
        triggered = kfp_cel.evaluate(condition, json_format.MessageToDict(
            json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput()),
            preserving_proto_field_name=True))
      except kfp_cel.ConditionError as e:
        raise RehearsalError(f'task {name}: condition {condition!r}: {e}') from e
      if not triggered:
        self.store.add_execution({**record, 'state': 'SKIPPED'})
        return TaskResult(name, 'SKIPPED', time.time() - start, f'condition false: {condition}')
    executor_input['outputs'] = self._provision_outputs(name, component, local_metadata)
    fingerprint = self._fingerprint(executor_input, component, container)
    record['fingerprint'] = fingerprint
    cached = self.store.cached(fingerprint) if task.get('cachingOptions', {}).get(
        'enableCache') else None
    if cached:
      self.outputs[name], self.parameters[name] = cached['outputs'], cached['output_parameters']
      self.store.add_execution({**record, 'state': 'CACHED', 'outputs': cached['outputs'],
                                'output_parameters': cached['output_parameters']})
      return TaskResult(name, 'CACHED', time.time() - start, f'from run {cached["run_id"]}')
    # launcher: parameter defaults, placeholders, folders, the command, outputs.
    for key, spec in component.get('inputDefinitions', {}).get('parameters', {}).items():
      if key not in executor_input['inputs']['parameterValues'] and 'defaultValue' in spec:
        executor_input['inputs']['parameterValues'][key] = spec['defaultValue']
    self._prepare_dirs(executor_input, task_dir)
    argv = self._command(container, executor_input, task_dir)
    log_path = executor_input['outputs']['artifacts'].get(LOGS_OUTPUT, {}).get(
        'artifacts', [{'uri': os.path.join(task_dir, 'log')}])[0]['uri']
    if os.path.isdir(log_path):
      os.rmdir(log_path)  # the log is a file artifact
    code, cpu = self._execute(argv, log_path)
    executor_output = {}
    if os.path.exists(local_metadata):
      with open(local_metadata) as f:
        executor_output = json.load(f)
    if code != 0:
      self.store.add_execution({**record, 'state': 'FAILED'})
      return TaskResult(name, 'FAILED', time.time() - start,
                        f'exit status {code}; log {log_path}:\n' + _tail(log_path), cpu)
    ids, parameters = self._record_outputs(name, executor_input, executor_output, component)
    self.outputs[name], self.parameters[name] = ids, parameters
    self.store.add_execution({**record, 'state': 'COMPLETE', 'outputs': ids,
                              'output_parameters': parameters})
    return TaskResult(name, 'COMPLETE', time.time() - start, f'log {log_path}', cpu)

  def run(self, echo=print) -> list[TaskResult]:
    problems = kfp_spec.backend_problems(self.spec)
    if problems:
      raise RehearsalError('the open-source KFP backend would refuse this spec:\n  '
                           + '\n  '.join(problems))
    os.makedirs(self.run_root, exist_ok=True)
    if self.docker and os.getuid() == 0:
      uid, gid = self._image_user()
      for path in (self.root, os.path.join(self.root, 'pipeline_root'),
                   os.path.dirname(self.run_root), self.run_root):
        os.chown(path, uid, gid)
    tasks = self.spec['root']['dag']['tasks']
    pending = {n: set(t.get('dependentTasks', [])) for n, t in tasks.items()}
    results: dict[str, TaskResult] = {}
    running: dict[concurrent.futures.Future, str] = {}
    failed = False
    with concurrent.futures.ThreadPoolExecutor(self.parallelism) as pool:
      while pending or running:
        ready = sorted(n for n, deps in pending.items()
                       if not failed and all(d in results for d in deps))
        for name in ready[:self.parallelism - len(running)]:
          del pending[name]
          running[pool.submit(self.run_task, name)] = name
        if not running:
          for name in sorted(pending):
            results[name] = TaskResult(name, 'NOT_RUN', 0.0, 'an upstream task failed')
          break
        done, _ = concurrent.futures.wait(running, return_when='FIRST_COMPLETED')
        for future in done:
          name = running.pop(future)
          try:
            result = future.result()
          except RehearsalError as e:
            result = TaskResult(name, 'FAILED', 0.0, str(e))
          results[name] = result
          failed = failed or result.state == 'FAILED'
          echo(f'{result.task:28s} {result.state:9s} {result.seconds:7.1f} s'
               + ('' if self.docker else f' (cpu {result.cpu_seconds:6.1f} s)')
               + (f'  {result.detail.splitlines()[0]}' if result.detail else ''))
        self.store.save()
    ordered = [results[n] for n in _topological(tasks)]
    summary = os.path.join(self.root, 'rehearsals', f'{self.run_id}.json')
    os.makedirs(os.path.dirname(summary), exist_ok=True)
    with open(summary, 'w') as f:
      json.dump({'run_id': self.run_id, 'docker': self.docker,
                 'tasks': [dataclasses.asdict(r) for r in ordered]}, f, indent=1)
    return ordered


def _topological(tasks: dict) -> list[str]:
  order, seen = [], set()

  def visit(name):
    if name not in seen:
      seen.add(name)
      for dep in sorted(tasks[name].get('dependentTasks', [])):
        visit(dep)
      order.append(name)

  for name in sorted(tasks):
    visit(name)
  return order


def _tail(path: str, lines: int = 30) -> str:
  try:
    with open(path, errors='replace') as f:
      return ''.join(f.readlines()[-lines:])
  except OSError:
    return ''


def load_spec(path: str) -> dict:
  """The PipelineSpec of `path`, loaded by KFP's own component loader (which validates it)."""
  component = components.load_component_from_file(path)
  return json_format.MessageToDict(component.pipeline_spec)


def rehearse(spec_path: str, root: str, docker: bool = False, image: str = '',
             parallelism: int = 2, echo=print) -> list[TaskResult]:
  """Runs the spec once under `root` (see the module docstring); returns every task's result."""
  return Rehearsal(load_spec(spec_path), root, docker, image, parallelism).run(echo)


def _define_flags() -> None:
  flags.DEFINE_string('spec', None, 'Compiled spec (pipelines.compile_kubeflow --target=kfp).')
  flags.DEFINE_string('root', None, 'Directory of the run: artifacts, store, task logs.')
  flags.DEFINE_bool('docker', False, "Run every task in the spec's image with Docker.")
  flags.DEFINE_string('image', '', "With --docker: run this image instead of the spec's.")
  flags.DEFINE_integer('parallelism', 2, 'Tasks run at once (KFP runs ready tasks in '
                       'parallel).')


def main(argv):
  del argv
  f = flags.FLAGS
  if not f.spec or not f.root:
    raise app.UsageError('--spec and --root are required.')
  start = time.time()
  results = rehearse(f.spec, f.root, f.docker, f.image, f.parallelism)
  failed = [r for r in results if r.state in ('FAILED', 'NOT_RUN')]
  print(f'\nrehearsal of {f.spec} ({"docker" if f.docker else "local"}) in '
        f'{time.time() - start:.0f} s under {os.path.abspath(f.root)}:')
  for r in results:
    print(f'  {r.task:28s} {r.state:9s} {r.seconds:7.1f} s'
          + ('' if f.docker else f'  (cpu {r.cpu_seconds:6.1f} s)'))
  for r in failed:
    print(f'\n{r.task}: {r.state}: {r.detail}')
  if failed:
    sys.exit(1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
