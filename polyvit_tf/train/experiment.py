"""The co-training experiment of docs/experiments.md (the paper's Tables 1 and 2, small scale).

  python -m polyvit_tf.train.experiment --config=polyvit_tf/configs/demo.py --out=<dir> \
      [--parts=schedules,single,probe] [--seed=0] [--probe_source=digits]

  schedules  one co-training run per schedule of Sec. 4.2 (Table 1; validation and test)
  single     one single-task run per task with that task's own steps/lr/batch (Table 2's
             single-task baseline; sums of steps equal the weighted co-training run's)
  probe      linear probes on every task of the frozen encoder of the single-task model of
             --probe_source (the analogue of Table 2's "ViT-Im21K linear probe": an image
             model's encoder, converted to audio/video as in Appendix D)
Each run is an ordinary work directory under --out (finished runs are reused); the tables go
to <out>/experiment.md and experiment.json.
"""

from __future__ import annotations

import json
import os

import ml_collections
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.model.polyvit import PolyViT
from polyvit_tf.train import evaluation
from polyvit_tf.train import loop
from polyvit_tf.train import probes
from polyvit_tf.train import schedules

PARTS = ('schedules', 'single', 'probe')


def single_task_config(config: ml_collections.ConfigDict, task: str) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict(config.to_dict())
  cfg.tasks = ml_collections.ConfigDict({task: config.tasks[task].to_dict()})
  modality = config.tasks[task].modality
  cfg.modalities = ml_collections.ConfigDict({modality: config.modalities[modality].to_dict()})
  cfg.schedule.name = 'weighted'
  cfg.schedule.task_order = ()
  return cfg


def _train(config: ml_collections.ConfigDict, workdir: str, data) -> dict:
  """Trains (or reuses a finished run) and returns {'eval': ..., 'validation': ...}."""
  done = os.path.exists(evaluation.metrics_path(workdir, 'validation'))
  if not done:
    loop.run(config, workdir, data=data)
    loop.evaluate(config, workdir, data=data, split='validation')
  out = {}
  for split in ('eval', 'validation'):
    with open(evaluation.metrics_path(workdir, split)) as f:
      out[split] = json.load(f)
  return out


def _params(config: ml_collections.ConfigDict) -> int:
  return int(sum(PolyViT(config).count_params().values()))


def _score(m: dict) -> float:
  return m['map'] if 'map' in m else m['top1']


def _table(title: str, rows: list[tuple[str, str, dict]], tasks: list[str]) -> str:
  lines = [f'### {title}', '', '| run | #params | ' + ' | '.join(tasks) + ' |',
           '|---|---|' + '---|' * len(tasks)]
  for name, params, metrics in rows:
    cells = [f'{100 * _score(metrics[t]):.1f}' if t in metrics else '-' for t in tasks]
    lines.append(f'| {name} | {params} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def run_experiment(config: ml_collections.ConfigDict, out: str, parts=PARTS, data=None,
                   probe_source: str = '') -> dict:
  tasks = list(specs_lib.resolve(config).task_names)
  results: dict = {'seed': int(config.seed), 'schedules': {}, 'single': {}, 'probe': {}}
  md = [f'Config {config.name}, seed {int(config.seed)}. Scores: top-1 (%) (mAP for '
        'multi-label tasks).\n']
  if 'schedules' in parts:
    for name in schedules.SCHEDULES:
      cfg = ml_collections.ConfigDict(config.to_dict())
      cfg.schedule.name = name
      logging.info('=== schedule %s', name)
      results['schedules'][name] = _train(cfg, os.path.join(out, f'schedule_{name}'), data)
    params = f'{_params(config):,}'
    for split in ('validation', 'eval'):
      md.append(_table(f'Schedules, {split} split', [
          (n, params, r[split]) for n, r in results['schedules'].items()], tasks))
  if 'single' in parts or 'probe' in parts:
    for task in tasks:
      logging.info('=== single task %s', task)
      results['single'][task] = _train(single_task_config(config, task),
                                       os.path.join(out, f'single_{task}'), data)
  if 'probe' in parts:
    source_task = probe_source or tasks[0]
    source = os.path.join(out, f'single_{source_task}')
    logging.info('=== linear probes of %s', source)
    probe = probes.run_probe(config, source, os.path.join(out, f'probe_{source_task}'),
                             data=data)
    results['probe'] = {'source': source_task, 'tasks': probe}
  if results['single']:
    rows = []
    if 'weighted' in results['schedules']:
      rows.append(('co-trained (weighted), 1 model', f'{_params(config):,}',
                   results['schedules']['weighted']['eval']))
    single_params = sum(_params(single_task_config(config, t)) for t in tasks)
    rows.append((f'single-task, {len(tasks)} models', f'{single_params:,}',
                 {t: results['single'][t]['eval'][t] for t in tasks}))
    if results['probe']:
      src = results['probe']['source']
      rows.append((f'linear probe of the {src} encoder (heads trained)',
                   f'{_params(config):,}',
                   {t: r['eval'] for t, r in results['probe']['tasks'].items()}))
    md.append(_table('Co-training vs single-task vs linear probe, eval (test) split', rows,
                     tasks))
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, 'experiment.json'), 'w') as f:
    json.dump(results, f, indent=2, sort_keys=True)
  with open(os.path.join(out, 'experiment.md'), 'w') as f:
    f.write('\n'.join(md))
  print('\n'.join(md))
  return results


FLAGS = flags.FLAGS


def _define_flags() -> None:
  config_flags.DEFINE_config_file('config', None, 'Config (e.g. the demo).', lock_config=True)
  flags.DEFINE_string('out', None, 'Directory of the runs and tables.')
  flags.DEFINE_list('parts', list(PARTS), f'Subset of {PARTS}.')
  flags.DEFINE_string('probe_source', '', 'Task whose single-task model is probed (default: '
                      'the first task).')
  flags.DEFINE_string('data', '', 'Data provider module[:attribute].')
  flags.mark_flags_as_required(['config', 'out'])


def main(argv):
  del argv
  run_experiment(FLAGS.config, FLAGS.out, tuple(FLAGS.parts),
                 loop.load_provider(FLAGS.data) if FLAGS.data else None,
                 FLAGS.probe_source)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
