"""The compiled Kubeflow spec, executed as open-source KFP would (no Docker: this environment).

The tiny demo pipeline (demo.py:small, 3 steps per task) compiled with --target=kfp runs
through pipelines.rehearse_kubeflow: every task's container command and args as the spec gives
them, on the executor input the driver builds. The first run ends blessed, pushed and with
the TFLite file; the second reuses the driver's cache up to the Trainer, re-evaluates (the
evaluator is never cached), finds the served model is the candidate and pushes nothing.
"""

from __future__ import annotations

import json
import os

import pytest

from pipelines import compile_kubeflow
from pipelines import kfp_spec
from pipelines import rehearse_kubeflow
from pipelines.components import tflite as tflite_lib
from polyvit_tf.export import savedmodel
from polyvit_tf.export import tflite as tflite_export
from tests.pipelines import tiny

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('rehearsal'))
  config = tiny.demo_config(os.path.join(root, 'demo_data'))
  spec = compile_kubeflow.compile_pipeline(
      config, 'polyvit-tf:dev', os.path.join(root, 'polyvit_kfp.yaml'),
      os.path.join(root, 'pipeline_root'), os.path.join(root, 'serving'))
  first = {r.task: r for r in rehearse_kubeflow.rehearse(spec, root)}
  second = {r.task: r for r in rehearse_kubeflow.rehearse(spec, root)}
  with open(os.path.join(root, 'kfp_store.json')) as f:
    store = json.load(f)
  return root, kfp_spec.load(spec), first, second, store


def _executions(store, task):
  return [e for e in store['executions'] if e['task'] == task]


def _blessing(store, execution):
  artifact = store['artifacts'][execution['outputs']['blessing']]
  return {k: next(iter(v.values())) for k, v in artifact['custom_properties'].items()}


def test_first_run_executes_every_task_and_ends_blessed_pushed_with_tflite(runs):
  root, spec, first, _, store = runs
  assert set(first) == set(spec['root']['dag']['tasks'])
  assert {r.state for r in first.values()} == {'COMPLETE'}, {
      t: (r.state, r.detail[-2000:]) for t, r in first.items() if r.state != 'COMPLETE'}
  blessing = _blessing(store, _executions(store, 'PolyViTEvaluator')[0])
  assert blessing['blessed'] == 1.0 and blessing['new_model'] == 1.0, blessing['reasons']
  versions = os.listdir(os.path.join(root, 'serving'))
  assert len(versions) == 1
  assert os.path.exists(os.path.join(root, 'serving', versions[0], 'saved_model.pb'))
  tflite = store['artifacts'][_executions(store, 'TFLiteExport')[0]['outputs']['tflite_model']]
  path = os.path.join(tflite['uri'], tflite_lib.FILE_NAME)
  assert os.path.getsize(path) > 10_000
  assert tflite['custom_properties']['path'] == {'string': path}
  # One version number: the pushed directory's, in the blessing, the pushed copy, the
  # PushedModel and the TFLite manifest and artifact.
  version = int(versions[0])
  assert blessing['version'] == float(version)
  assert savedmodel.read_metadata(os.path.join(root, 'serving', versions[0]))['version'] == version
  pushed = store['artifacts'][_executions(store, 'Pusher')[0]['outputs']['pushed_model']]
  assert pushed['custom_properties']['pushed_version'] == {'string': versions[0]}
  assert tflite['custom_properties']['version'] == {'double': float(version)}
  assert tflite_export.read_manifest(path)['source_version'] == version


def test_the_driver_fed_every_task_its_inputs_by_id_and_the_launcher_kept_logs(runs):
  _, _, first, _, store = runs
  trainer = _executions(store, 'Trainer')[0]
  model = store['artifacts'][trainer['outputs']['model']]
  assert model['schema'].startswith('title: tfx.Model')
  assert model['custom_properties']['display_name'] == {'string': 'model'}
  logs = store['artifacts'][trainer['outputs']['executor-logs']]
  assert 'Starting executor' in open(logs['uri'], errors='replace').read()
  assert first['Trainer'].cpu_seconds > 0


def test_second_run_reuses_the_cache_and_pushes_nothing_new(runs):
  root, _, first, second, store = runs
  for task, result in second.items():
    expected = {'PolyViTEvaluator': 'COMPLETE', 'Pusher': 'SKIPPED',
                'TFLiteExport': 'SKIPPED'}.get(task, 'CACHED')
    assert result.state == expected, (task, result.state, result.detail[-2000:])
  evaluations = _executions(store, 'PolyViTEvaluator')
  assert len(evaluations) == 2
  blessing = _blessing(store, evaluations[1])
  versions = os.listdir(os.path.join(root, 'serving'))
  assert versions and len(versions) == 1
  assert blessing['blessed'] == 1.0 and blessing['new_model'] == 0.0
  assert blessing['baseline_version'] == float(versions[0]) == blessing['version']
  assert blessing['baseline_model_fingerprint'] == blessing['current_model_fingerprint']
  assert first['Trainer'].state == 'COMPLETE' and second['Trainer'].detail.startswith('from run')
