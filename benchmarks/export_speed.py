r"""Export: SavedModel vs TFLite latency per task at batch 1, and file sizes.

    python -m benchmarks.export_speed [--quick] [--workdir=<trained run>] \
        [--config=polyvit_tf/configs/demo.py] [--size_model=B] [--out=benchmarks/results]

Part 1, the deployable model: the SavedModel of `--workdir` (its latest checkpoint), or,
without one, of a seeded random PolyViT of `--config` (latency and size do not depend on
the weights; the agreement columns then compare random-weight logits). Per task: the median
latency at batch 1 of the SavedModel's tensor signature (`tf.saved_model.load`, one call per
example) and of each TFLite variant's signature runner (`polyvit_tf.export.report`,
`--num_threads` interpreter threads), on the same held-out inputs; sizes of the one
multi-signature file against each single-task file, and int8 against float32. A random
model gets random heads too (video and audio heads start at zero: all-zero logits).

Part 2, sizes at the paper's geometry (`--size_model`, default B; quick: Ti): one task per
modality at 384x384 images, 800x128 spectrograms and 32x224x224 clips, random weights,
converted to float32 and int8 (calibrated on 2 synthetic examples per task) as one
multi-signature file and as one file per task. Only sizes are measured there.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf
from ml_collections import config_flags

from benchmarks import common
from polyvit_tf.configs import base
from polyvit_tf.export import demo_data
from polyvit_tf.export import report as report_lib
from polyvit_tf.export import savedmodel
from polyvit_tf.export import tflite as tflite_lib
from polyvit_tf.model import PolyViT

_CONFIG = config_flags.DEFINE_config_file('config', 'polyvit_tf/configs/demo.py',
                                          'Config of the random-weight model (no --workdir).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained run to export (latest checkpoint).')
_QUICK = flags.DEFINE_bool('quick', False, 'Fewer examples, float32 and int8, Ti sizes.')
_QUANT = flags.DEFINE_list('quantization', None,
                           'TFLite variants (default all four; quick: float32,int8).')
_NUM = flags.DEFINE_integer('num_examples', 0, 'Held-out examples per task (0: 24; quick 6).')
_THREADS = flags.DEFINE_integer('num_threads', 1, 'TFLite interpreter threads.')
_SIZE_MODEL = flags.DEFINE_string('size_model', None,
                                  'Encoder size of part 2 (default B; quick Ti; none: skip).')
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Directory of the JSON results.')
_KEEP = flags.DEFINE_string('keep', None, 'Keep the exported files in this directory.')


def saved_model_latency(version_dir: str, inputs: dict[str, np.ndarray]) -> dict[str, float]:
  """Median ms per call of each task's tensor signature at batch 1 (after 2 warm-up calls)."""
  meta = savedmodel.read_metadata(version_dir)
  loaded = tf.saved_model.load(version_dir)
  out = {}
  for task, x in inputs.items():
    fn = loaded.signatures[task]
    name = meta['signatures'][task]['input']
    rows = [tf.constant(x[i:i + 1]) for i in range(len(x))]
    for row in rows[:2]:
      fn(**{name: row})['logits'].numpy()
    times = []
    for row in rows:
      start = time.perf_counter()
      fn(**{name: row})['logits'].numpy()
      times.append(time.perf_counter() - start)
    out[task] = 1e3 * common.median(times)
  return out


def random_model(config: ml_collections.ConfigDict, seed: int = 0) -> PolyViT:
  """A seeded random PolyViT whose heads are random too (video and audio heads start at
  zero, which would make every logit 0 and the agreement columns trivially perfect)."""
  model = PolyViT(config, seed=seed)
  rng = np.random.default_rng(seed)
  for head in model.heads.values():
    kernel = head.kernel
    kernel.assign(rng.normal(0.0, kernel.shape[0] ** -0.5, kernel.shape).astype(np.float32))
  return model


def deployable(root: str, quantizations: list[str], num: int, threads: int) -> dict:
  if _WORKDIR.value:
    version_dir = savedmodel.export_saved_model(_WORKDIR.value, os.path.join(root, 'sm'))
    config = savedmodel.read_config(version_dir)
    source, data = f'workdir {_WORKDIR.value}', 'eval'
  else:
    config = _CONFIG.value
    model = random_model(config)
    version_dir = savedmodel.export_model(model, config, os.path.join(root, 'sm'))
    source, data = f'random weights of {config.name}', 'synthetic'
  meta = savedmodel.read_metadata(version_dir)
  tasks = list(meta['tasks'])
  held_out, calibration = {}, {}
  for i, task in enumerate(tasks):
    x = demo_data.inputs(config, task, meta['tasks'][task]['input_shape'], 2 * num,
                         source=data, seed=i)
    calibration[task], held_out[task] = x[:num], x[num:]
  sm_ms = saved_model_latency(version_dir, held_out)
  reference = report_lib.saved_model_logits(version_dir, held_out)
  reports = []
  for q in quantizations:
    reports.append(report_lib.variant_report(
        version_dir, os.path.join(root, 'tflite'), q, held_out,
        representative_data=calibration, reference_logits=reference, num_threads=threads))
  by_q = {r.quantization: r for r in reports}
  rows = []
  for task in tasks:
    row = {'task': task, 'modality': meta['tasks'][task].get('modality', ''),
           'savedmodel_ms': sm_ms[task]}
    for r in reports:
      t = next(t for t in r.tasks if t.task == task)
      row[f'{r.quantization}_ms'] = t.latency_ms
      row[f'{r.quantization}_top1_agreement'] = t.top1_agreement
      row[f'{r.quantization}_max_abs_logit_diff'] = t.max_abs_logit_diff
      row[f'{r.quantization}_speedup'] = sm_ms[task] / t.latency_ms
    rows.append(row)
  sizes = size_rows(by_q)
  return {'source': source, 'config': config.name, 'data': data, 'examples': num,
          'threads': threads, 'latency': rows, 'sizes': sizes,
          'report_markdown': report_lib.format_report(reports),
          'variants': [r.to_json() for r in reports]}


def size_rows(files: dict) -> list[dict]:
  """Per variant: multi-task bytes, single-task bytes, multi / largest and smallest single
  file, multi / sum of singles, and the variant / float32 size."""
  rows = []
  f32 = files.get('float32')
  for q, r in files.items():
    singles = r.single_task_bytes if hasattr(r, 'single_task_bytes') else r['single']
    size = r.size_bytes if hasattr(r, 'size_bytes') else r['size']
    f32_size = (f32.size_bytes if hasattr(f32, 'size_bytes') else f32['size']) if f32 else None
    rows.append({'variant': q, 'multi_bytes': size, 'single_bytes': dict(singles),
                 'multi_over_largest_single': size / max(singles.values()),
                 'multi_over_smallest_single': size / min(singles.values()),
                 'multi_over_sum_single': size / sum(singles.values()),
                 'over_float32': size / f32_size if f32_size else None})
  return rows


def paper_geometry(size: str) -> ml_collections.ConfigDict:
  tasks = {
      'image': base.task_config('image', 1000, train_steps=1, warmup_steps=0,
                                learning_rate=0.03, batch_size=1),
      'audio': base.task_config('audio', 527, multilabel=True, train_steps=1, warmup_steps=0,
                                learning_rate=0.5, batch_size=1),
      'video': base.task_config('video', 400, train_steps=1, warmup_steps=0,
                                learning_rate=0.1, batch_size=1),
  }
  return base.assemble(base.model_config(size), base.paper_modalities(), tasks,
                       name=f'paper_geometry_{size}')


def sizes_at_paper_geometry(root: str, size: str) -> dict:
  config = paper_geometry(size)
  model = random_model(config)
  params = model.count_params()
  version_dir = savedmodel.export_model(model, config, os.path.join(root, 'sm_paper'),
                                        raw=False)
  del model
  gc.collect()
  meta = savedmodel.read_metadata(version_dir)
  tasks = list(meta['tasks'])
  calibration = {t: demo_data.synthetic_inputs(meta['tasks'][t]['input_shape'], 2, seed=i)
                 for i, t in enumerate(tasks)}
  files = {}
  for q in ('float32', 'int8'):
    out = os.path.join(root, 'tflite_paper')
    path = tflite_lib.export_tflite(version_dir, os.path.join(out, f'polyvit_{q}.tflite'),
                                    quantization=q, tasks=tasks,
                                    representative_data=calibration)
    single = {}
    for t in tasks:
      p = tflite_lib.export_tflite(version_dir, os.path.join(out, f'{t}_{q}.tflite'),
                                   quantization=q, tasks=[t],
                                   representative_data={t: calibration[t]})
      single[t] = os.path.getsize(p)
      os.remove(p)
    files[q] = {'size': os.path.getsize(path), 'single': single}
    os.remove(path)
  return {'model': size, 'config': config.name, 'params_by_part': params,
          'sizes': size_rows(files)}


def print_results(result: dict) -> None:
  dep = result['deployable']
  print(f'\nPart 1: {dep["source"]}, {dep["examples"]} held-out examples per task, '
        f'{dep["threads"]} TFLite thread(s)')
  quants = [v['quantization'] for v in dep['variants']]
  cols = [('task', 'task', 's'), ('savedmodel_ms', 'SavedModel ms', '.2f')]
  for q in quants:
    cols += [(f'{q}_ms', f'{q} ms', '.2f'), (f'{q}_speedup', 'x', '.1f')]
  print(common.table(dep['latency'], cols))
  size_cols = [('variant', 'variant', 's'), ('multi_bytes', 'multi-task bytes', ',d'),
               ('multi_over_largest_single', 'multi/largest single', '.3f'),
               ('multi_over_smallest_single', 'multi/smallest single', '.3f'),
               ('multi_over_sum_single', 'multi/sum singles', '.3f'),
               ('over_float32', 'vs float32', '.3f')]
  print()
  print(common.table(dep['sizes'], size_cols))
  if result.get('paper_geometry'):
    pg = result['paper_geometry']
    print(f'\nPart 2: sizes at the paper geometry, PolyViT-{pg["model"]}, random weights')
    print(common.table(pg['sizes'], size_cols))


def main(argv: Sequence[str]) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  quick = _QUICK.value
  quantizations = _QUANT.value or (['float32', 'int8'] if quick
                                   else list(tflite_lib.QUANTIZATIONS))
  num = _NUM.value or (6 if quick else 24)
  size_model = _SIZE_MODEL.value or ('Ti' if quick else 'B')
  root = _KEEP.value or tempfile.mkdtemp(prefix='polyvit_export_bench_')
  try:
    result = {'quick': quick,
              'deployable': deployable(root, quantizations, num, _THREADS.value)}
    if size_model.lower() != 'none':
      result['paper_geometry'] = sizes_at_paper_geometry(root, size_model)
  finally:
    if not _KEEP.value:
      shutil.rmtree(root, ignore_errors=True)
  print_results(result)
  path = common.write_json(_OUT.value, 'export_speed_quick' if quick else 'export_speed',
                           result)
  print(f'\nwrote {path}')


if __name__ == '__main__':
  app.run(main)
