r"""Runs the Vertex AI CustomJob of `pipeline.training='vertex'` on this machine, as Vertex would.

  python -m pipelines.rehearse_vertex --config=polyvit_tf/configs/demo.py:small \
      --root=/tmp/vertex_rehearsal --config.pipeline.vertex.worker_count=1

The pipeline is compiled for Kubeflow (pipelines.compile_kubeflow) with training='vertex'; the
Trainer's exec properties are taken from the compiled spec, the examples written from the
config's sources (pipelines.examples.write_splits) under --root, and TFX's own code
(VertexJobClient.create_training_job, what the Vertex training extension's executor calls
before it submits) builds the CustomJob: nothing reaches the network. Every replica of every
worker pool then runs that job's container command as a local process with the TF_CONFIG
Vertex AI sets (cluster `chief` = pool 0, `worker` = pool 1, on loopback ports): TFX's
GenericExecutor and our run_fn, under MultiWorkerMirroredStrategy when there are workers.
Exit status 0 when every replica exits 0 and the chief's SavedModel is complete.

What only Vertex AI shows: machines, accelerators, the image pulled from a registry, gs://
artifacts, restarts (`restart_job_on_worker_restart`), the service account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

CHIEF, WORKER = 'chief', 'worker'
_PLACEHOLDER_ROOTS = ('gs://rehearsal/root', 'gs://rehearsal/serving')


def job_from_params(params: dict, inputs: dict, outputs: dict, region: str) -> dict:
  """The CustomJob TFX's Vertex training extension builds from the Trainer's exec properties
  (`params`, as compiled) and artifacts, stopping before its API client exists."""
  from tfx.extensions.google_cloud_ai_platform import training_clients  # pylint: disable=g-import-not-at-top
  job_args = dict(json.loads(params['custom_config'])['ai_platform_training_args'])
  job_args.pop('project')  # as runner.start_cloud_training does first
  client = training_clients.VertexJobClient.__new__(training_clients.VertexJobClient)
  client._region = region  # pylint: disable=protected-access  (no gapic client: no network)
  return client.create_training_job(inputs, outputs, params,
                                    'tfx.components.trainer.executor.GenericExecutor',
                                    job_args, None, None)


def trainer_params(spec: dict) -> dict:
  """The compiled Trainer task's exec properties (runtime constants)."""
  from pipelines import kfp_spec  # pylint: disable=g-import-not-at-top
  return {k: v['runtimeValue']['constant'] for k, v in
          kfp_spec.all_tasks(spec)['Trainer']['inputs']['parameters'].items()}


def custom_job(config, root: str, image: str = 'polyvit-tf:dev') -> tuple[dict, dict]:
  """(CustomJob TFX builds for `config`'s Trainer, the Trainer's output artifacts by key),
  with the examples written under `root`."""
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from pipelines import compile_kubeflow  # pylint: disable=g-import-not-at-top
  from pipelines import examples as examples_lib  # pylint: disable=g-import-not-at-top
  spec = compile_kubeflow.compile_spec(config, image, *_PLACEHOLDER_ROOTS)
  examples = standard_artifacts.Examples()
  examples.uri = os.path.join(root, 'examples')
  examples.split_names = json.dumps(examples_lib.all_splits(config))
  examples_lib.write_splits(config, examples.uri)
  outputs = {'model': [standard_artifacts.Model()], 'model_run': [standard_artifacts.ModelRun()]}
  for key, (artifact,) in outputs.items():
    artifact.uri = os.path.join(root, 'Trainer', key)
  job = job_from_params(trainer_params(spec), {'examples': [examples]}, outputs,
                        str(config.pipeline.vertex.region))
  return job, outputs


def replicas(job: dict, ports: list[int]) -> list[tuple[str, int, list[str], dict]]:
  """(task type, index, command, TF_CONFIG) of every replica, as Vertex AI assigns them."""
  pools = job['job_spec']['worker_pool_specs']
  kinds = [CHIEF, WORKER][:len(pools)]
  if len(pools) > 2:
    raise ValueError('only chief and worker pools are rehearsed (no parameter servers)')
  counts = [int(p.get('replica_count', 1)) for p in pools]
  if len(ports) != sum(counts):
    raise ValueError(f'{sum(counts)} replicas need as many ports, got {len(ports)}')
  cluster, it = {}, iter(ports)
  for kind, count in zip(kinds, counts):
    cluster[kind] = [f'localhost:{next(it)}' for _ in range(count)]
  result = []
  for kind, count, pool in zip(kinds, counts, pools):
    for index in range(count):
      tf_config = {'cluster': cluster, 'task': {'type': kind, 'index': index},
                   'environment': 'cloud'}
      result.append((kind, index, list(pool['container_spec']['command']), tf_config))
  return result


def run(config, root: str, timeout: float = 3600) -> dict:
  """Runs every replica locally; returns {'replicas': {name: exit code}, 'export': path}."""
  import portpicker  # pylint: disable=g-import-not-at-top
  os.makedirs(root, exist_ok=True)
  job, outputs = custom_job(config, root)
  plan = replicas(job, [portpicker.pick_unused_port()
                        for p in job['job_spec']['worker_pool_specs']
                        for _ in range(int(p.get('replica_count', 1)))])
  procs, start = [], time.monotonic()
  for kind, index, command, tf_config in plan:
    if command[0] != 'python':
      raise ValueError(f'unexpected replica command {command[:3]}')
    env = {**os.environ, 'TF_CONFIG': json.dumps(tf_config), 'CUDA_VISIBLE_DEVICES': ''}
    log = os.path.join(root, f'{kind}{index}.log')
    procs.append((f'{kind}{index}', log, subprocess.Popen(
        [sys.executable] + command[1:], env=env, stdout=open(log, 'w'),
        stderr=subprocess.STDOUT)))
  codes = {}
  for name, log, proc in procs:
    codes[name] = proc.wait(timeout=max(1.0, timeout - (time.monotonic() - start)))
    logging.info('rehearse_vertex: %s exited %d after %.0f s (log %s)', name, codes[name],
                 time.monotonic() - start, log)
  export = os.path.join(outputs['model'][0].uri, 'Format-Serving', 'saved_model.pb')
  return {'replicas': codes, 'export': export if os.path.exists(export) else '',
          'seconds': round(time.monotonic() - start, 1),
          'pools': [(p['machine_spec'], p['replica_count'])
                    for p in job['job_spec']['worker_pool_specs']]}


def main(argv):
  del argv
  config = flags.FLAGS.config
  config.pipeline.training = 'vertex'
  # Placeholders where the config names none: nothing is submitted.
  if not config.pipeline.vertex.project:
    config.pipeline.vertex.project = 'rehearsal-project'
  if not config.pipeline.vertex.region:
    config.pipeline.vertex.region = 'us-central1'
  result = run(config, flags.FLAGS.root)
  print(json.dumps(result, sort_keys=True))
  if any(result['replicas'].values()) or not result['export']:
    sys.exit(1)


if __name__ == '__main__':
  config_flags.DEFINE_config_file('config', None, 'PolyViT config file[:arg].',
                                  lock_config=False)
  flags.DEFINE_string('root', None, 'Where examples, artifacts and replica logs go.')
  flags.mark_flags_as_required(['config', 'root'])
  app.run(main)
