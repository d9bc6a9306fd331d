r"""Exports a trained PolyViT for TF Serving (SavedModel) or for edge devices (TFLite).

SavedModel (one signature per task, raw-input signatures, `<out>/<version>/`):
  python -m polyvit_tf.export --workdir=<run> --out=<models>/polyvit [--version=N]

TFLite (every variant converted from a SavedModel version, plus a report):
  python -m polyvit_tf.export --format=tflite --saved_model=<models>/polyvit \
      --out=<dir> [--quantization=float32,float16,dynamic_int8,int8 | all] \
      [--tasks=a,b] [--data=eval|synthetic] [--report] [--per_task_files] \
      [--min_top1_agreement=F] [--allow_low_agreement]
  (`--workdir=<run>` instead of `--saved_model` exports a SavedModel into <dir>/savedmodel
  first.) Writes `<dir>/polyvit_<q>.tflite` with labels and manifest per variant; with
  --report also `<dir>/single_task/...` and `<dir>/report.md`, `<dir>/report.json`.
  Every measured variant (all with --report; int8 always) whose top-1 agreement with the
  float32 SavedModel is below --min_top1_agreement on some task is refused: its files are
  deleted, the other variants are still written, and the command exits non-zero naming the
  tasks and figures. --allow_low_agreement keeps it with a loud warning instead.

One version number (polyvit_tf/versions.py): a SavedModel's version is --version, else 1 + the
highest numeric version under --out; it names the directory and polyvit_export.json records
it. The TFLite manifests and the report record the version of the SavedModel they come from
(its directory's name).
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
from absl import logging

_FORMAT = flags.DEFINE_enum('format', 'savedmodel', ['savedmodel', 'tflite'], 'What to write.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Training work directory (latest checkpoint).')
_SAVED_MODEL = flags.DEFINE_string(
    'saved_model', None, 'tflite: an exported SavedModel (version dir or base dir = latest).')
_OUT = flags.DEFINE_string('out', None, 'SavedModel base dir, or the TFLite output dir.')
_VERSION = flags.DEFINE_integer('version', None, 'SavedModel version (default: next free).')
_QUANTIZATION = flags.DEFINE_list(
    'quantization', ['float32'], 'tflite: comma list of float32, float16, dynamic_int8, int8, '
    'or `all`.')
_TASKS = flags.DEFINE_list('tasks', None, 'tflite: tasks to include (default: all).')
_PER_TASK_FILES = flags.DEFINE_bool('per_task_files', False,
                                    'tflite: also write one .tflite per task.')
_REPORT = flags.DEFINE_bool('report', True, 'tflite: measure every variant and write a report.')
_DATA = flags.DEFINE_enum('data', 'eval', ['eval', 'synthetic'],
                          'tflite: held-out inputs for the report and int8 calibration.')
_NUM_EXAMPLES = flags.DEFINE_integer('num_examples', 32, 'tflite: report examples per task.')
_NUM_THREADS = flags.DEFINE_integer('num_threads', 1, 'tflite: interpreter threads (report).')
_MIN_TOP1 = flags.DEFINE_float(
    'min_top1_agreement', None, 'tflite: refuse a measured variant whose top-1 agreement with '
    'the float32 SavedModel on the held-out inputs is below this on any task (default: '
    'polyvit_tf.export.report.DEFAULT_MIN_TOP1_AGREEMENT).')
_ALLOW_LOW = flags.DEFINE_bool(
    'allow_low_agreement', False, 'tflite: keep a variant below --min_top1_agreement, with a '
    'loud warning, instead of refusing it.')


def _export_savedmodel() -> str:
  from polyvit_tf.export import savedmodel  # pylint: disable=import-outside-toplevel
  if not _WORKDIR.value:
    raise app.UsageError('--workdir is required for --format=savedmodel.')
  path = savedmodel.export_saved_model(_WORKDIR.value, _OUT.value, version=_VERSION.value)
  meta = savedmodel.read_metadata(path)
  print(f'SavedModel: {path}')
  print(f'serving_default = {meta["serving_default"]}')
  for name, sig in meta['signatures'].items():
    print(f'  {name:<24} {sig["input"]}: {sig["dtype"]} {sig["shape"]}')
  return path


def _export_tflite() -> None:
  # pylint: disable=import-outside-toplevel
  from polyvit_tf import versions
  from polyvit_tf.export import demo_data
  from polyvit_tf.export import report as report_lib
  from polyvit_tf.export import savedmodel
  from polyvit_tf.export import tflite as tflite_lib

  if _SAVED_MODEL.value:
    sm_dir = savedmodel.latest_version_dir(_SAVED_MODEL.value)
  elif _WORKDIR.value:
    sm_dir = savedmodel.export_saved_model(_WORKDIR.value, os.path.join(_OUT.value,
                                                                        'savedmodel'))
  else:
    raise app.UsageError('--format=tflite needs --saved_model or --workdir.')
  min_top1 = (report_lib.DEFAULT_MIN_TOP1_AGREEMENT if _MIN_TOP1.value is None
              else _MIN_TOP1.value)
  if not 0.0 <= min_top1 <= 1.0:
    raise app.UsageError(f'--min_top1_agreement must be in [0, 1], got {min_top1}.')
  quantizations = _QUANTIZATION.value
  if quantizations == ['all']:
    quantizations = list(tflite_lib.QUANTIZATIONS)
  meta = savedmodel.read_metadata(sm_dir)
  tasks = _TASKS.value or list(meta['tasks'])
  needs_data = _REPORT.value or 'int8' in quantizations
  data = {}
  if needs_data:
    config = savedmodel.read_config(sm_dir)
    for i, task in enumerate(tasks):
      data[task] = demo_data.inputs(config, task, meta['tasks'][task]['input_shape'],
                                    2 * _NUM_EXAMPLES.value, source=_DATA.value, seed=i)
    logging.info('held-out inputs from %s: %s', _DATA.value,
                 {t: x.shape for t, x in data.items()})
  # First half calibrates int8, second half is the held-out report data.
  calibration = {t: x[:len(x) // 2] for t, x in data.items()}
  held_out = {t: x[len(x) // 2:] for t, x in data.items()}

  reference = report_lib.saved_model_logits(sm_dir, held_out) if held_out else None
  reports, refused = [], []
  for q in quantizations:
    if _REPORT.value:
      measured = report_lib.variant_report(
          sm_dir, _OUT.value, q, held_out, representative_data=calibration,
          reference_logits=reference, num_threads=_NUM_THREADS.value)
      reports.append(measured)
    else:
      path = tflite_lib.export_tflite(
          sm_dir, os.path.join(_OUT.value, f'polyvit_{q}.tflite'), quantization=q,
          tasks=tasks, representative_data=calibration or None)
      # int8 has its calibration data, hence held-out inputs: it is always checked.
      measured = (report_lib.measure(path, q, reference, held_out,
                                     num_threads=_NUM_THREADS.value) if q == 'int8' else None)
    if measured is not None:
      try:
        report_lib.check_agreement(measured, min_top1,
                                   allow_low_agreement=_ALLOW_LOW.value)
      except report_lib.AgreementError as e:
        report_lib.remove_variant(measured)
        refused.append(str(e))
        print(f'{q}: REFUSED, files deleted -- {e}')
        continue
    print(f'{q}: {measured.path if measured else path}')
    if _PER_TASK_FILES.value and not _REPORT.value:
      for task in tasks:
        path = tflite_lib.export_tflite(
            sm_dir, os.path.join(_OUT.value, 'single_task', f'polyvit_{q}_{task}.tflite'),
            quantization=q, tasks=[task], representative_data=calibration or None)
        print(f'{q} {task}: {path}')
  if reports:
    md, _ = report_lib.write_report(reports, _OUT.value, extra={
        'saved_model': sm_dir, 'version': versions.version_of(sm_dir), 'data': _DATA.value,
        'num_threads': _NUM_THREADS.value,
        'min_top1_agreement': min_top1})
    with open(md) as f:
      print(f.read())
  if refused:
    raise SystemExit('refused (top-1 agreement below --min_top1_agreement='
                     f'{min_top1}; --allow_low_agreement keeps such a variant):\n  '
                     + '\n  '.join(refused))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not _OUT.value:
    raise app.UsageError('--out is required.')
  if _FORMAT.value == 'savedmodel':
    _export_savedmodel()
  else:
    _export_tflite()


if __name__ == '__main__':
  app.run(main)
