r"""Lists past pipeline runs from ML Metadata, with per-task metrics and blessing.

  python -m pipelines.list_runs --root=<dir>            # the local runner's sqlite store
  python -m pipelines.list_runs --metadata=<file.sqlite>
"""

from __future__ import annotations

import dataclasses
import datetime
import os

from absl import app
from absl import flags
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipelines import layout



@dataclasses.dataclass
class RunSummary:
  run_id: str
  started: str
  states: dict[str, str]  # node -> execution state
  metrics: dict[str, dict[str, float]]  # task -> metric -> value
  blessed: bool | None
  new_model: bool | None  # False: the candidate is the served model (not pushed again)
  pushed_to: str | None
  tflite: list[str]
  version: int | None = None  # the candidate's version (pipelines/versioning.py)


def _props(artifact: metadata_store_pb2.Artifact) -> dict:
  out = {}
  for key, value in artifact.custom_properties.items():
    kind = value.WhichOneof('value')
    out[key] = getattr(value, kind) if kind else None
  return out


def node_id(store: metadata_store.MetadataStore, execution: metadata_store_pb2.Execution) -> str:
  """The pipeline node (component id) an execution belongs to, from its `node` context."""
  node_type = store.get_context_type('node').id
  for context in store.get_contexts_by_execution(execution.id):
    if context.type_id == node_type:
      return context.name.split('.', 1)[-1]  # '<pipeline>.<node id>'
  return '?'


def executions_of(store: metadata_store.MetadataStore, node: str) -> list:
  """Every execution of pipeline node `node`, oldest first."""
  return [e for e in store.get_executions() if node_id(store, e) == node]


def summarize(store: metadata_store.MetadataStore) -> list[RunSummary]:
  """One summary per pipeline run, oldest first."""
  run_type = store.get_context_type('pipeline_run')
  types = {t.id: t.name for t in store.get_artifact_types()}
  state_names = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
  runs = []
  for context in sorted(store.get_contexts_by_type(run_type.name), key=lambda c: c.id):
    executions = store.get_executions_by_context(context.id)
    states = {node_id(store, e): state_names.get(e.last_known_state, '?') for e in executions}
    events = store.get_events_by_execution_ids([e.id for e in executions])
    out_ids = {ev.artifact_id for ev in events
               if ev.type in (metadata_store_pb2.Event.OUTPUT,
                              metadata_store_pb2.Event.DECLARED_OUTPUT)}
    artifacts = store.get_artifacts_by_id(list(out_ids)) if out_ids else []
    metrics: dict[str, dict[str, float]] = {}
    blessed, new_model, pushed_to, tflite, version = None, None, None, [], None
    for a in artifacts:
      kind, props = types.get(a.type_id), _props(a)
      if kind == 'ModelEvaluation':
        for key, value in props.items():
          if '/' in key:
            task, metric = key.split('/', 1)
            metrics.setdefault(task, {})[metric] = value
      elif kind == 'ModelBlessing':
        blessed = props.get('blessed') == 1
        new_model = props.get('new_model', 1) == 1
        version = props.get('version')
      elif kind == 'PushedModel' and props.get('pushed') == 1:
        pushed_to = props.get('pushed_destination')
      elif kind == 'Model' and props.get('format') == 'tflite':
        tflite.append(props.get('path') or a.uri)
    started = datetime.datetime.fromtimestamp(context.create_time_since_epoch / 1000)
    runs.append(RunSummary(context.name, started.isoformat(timespec='seconds'), states,
                           metrics, blessed, new_model, pushed_to, tflite, version))
  return runs


def format_runs(runs: list[RunSummary]) -> str:
  lines = []
  for r in runs:
    verdict = {True: 'BLESSED', False: 'not blessed', None: 'not evaluated'}[r.blessed]
    failed = [n for n, s in r.states.items() if s == 'FAILED']
    lines.append(f'run {r.run_id}  started {r.started}  {verdict}'
                 + (f'  FAILED at {", ".join(failed)}' if failed else ''))
    for task, m in sorted(r.metrics.items()):
      lines.append(f'  {task:<24}' + '  '.join(f'{k}={v:.4f}' for k, v in sorted(m.items())
                                                if isinstance(v, float)))
    if r.pushed_to:
      lines.append(f'  pushed to {r.pushed_to} (version {r.version})')
    elif r.blessed and r.new_model is False:
      lines.append(f'  the model is the one being served (version {r.version}, Trainer '
                   'cached): not pushed again')
    for path in r.tflite:
      lines.append(f'  tflite {path}')
  return '\n'.join(lines) if lines else 'no runs recorded'


def open_store(path: str) -> metadata_store.MetadataStore:
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no ML Metadata store (has the pipeline run here?)')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = path
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
  return metadata_store.MetadataStore(config)


def main(argv):
  del argv
  root, metadata = flags.FLAGS.root, flags.FLAGS.metadata
  if not (metadata or root):
    raise app.UsageError('Give --root or --metadata.')
  print(format_runs(summarize(open_store(metadata or layout.metadata_path(root)))))


if __name__ == '__main__':
  # Flags are defined here only, so importing this module (run_local does) defines none.
  flags.DEFINE_string('root', None, 'Pipeline root directory of run_local.')
  flags.DEFINE_string('metadata', None, 'ML Metadata sqlite file (overrides --root).')
  app.run(main)
