"""TFLite variant reports: size vs n single-task files, agreement with the SavedModel, latency.

For each quantization variant:
  size                 bytes of the one multi-task .tflite
  single-task total    bytes of the n single-task .tflite files (what n separate models
                       would ship; the paper's parameter-efficiency argument)
  per task             max |logit difference| and top-1 agreement with the SavedModel's
                       tensor signature on the same held-out inputs; latency at batch 1 in
                       the TFLite interpreter (median over the inputs, after two warm-up
                       runs; `num_threads` interpreter threads)

Agreement gate (`check_agreement`, the export command line's --min_top1_agreement and
--allow_low_agreement): a variant whose top-1 agreement with the float32 SavedModel falls
below the threshold on any task is refused (AgreementError; the command line deletes its
files), or kept with a loud warning when allowed. The figures go into the variant's manifest
(`agreement`) and the report.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Mapping

import numpy as np
import tensorflow as tf

from polyvit_tf.export import savedmodel
from polyvit_tf.export import tflite as tflite_lib


@dataclasses.dataclass
class TaskResult:
  task: str
  num_examples: int
  max_abs_logit_diff: float
  top1_agreement: float
  latency_ms: float
  logit_scale: float  # max |logit| of the SavedModel on these inputs, to read the diff against


DEFAULT_MIN_TOP1_AGREEMENT = 0.95


class AgreementError(ValueError):
  """A quantized variant's top-1 agreement with the float32 model is below the threshold."""


@dataclasses.dataclass
class VariantReport:
  quantization: str
  path: str
  size_bytes: int
  single_task_bytes: dict[str, int]
  tasks: list[TaskResult]
  single_task_paths: dict[str, str] = dataclasses.field(default_factory=dict)
  # check_agreement's verdict: {'min_top1_agreement', 'below': [tasks], 'action'}
  gate: dict | None = None

  @property
  def single_task_total(self) -> int:
    return sum(self.single_task_bytes.values())

  def to_json(self) -> dict:
    return {**dataclasses.asdict(self), 'single_task_total': self.single_task_total}


def saved_model_logits(saved_model_dir: str, inputs: Mapping[str, np.ndarray],
                       loaded=None) -> dict[str, np.ndarray]:
  """Logits of each task's tensor signature on `inputs[task]` (one batch per task)."""
  meta = savedmodel.read_metadata(saved_model_dir)
  loaded = loaded or tf.saved_model.load(saved_model_dir)
  out = {}
  for task, x in inputs.items():
    name = meta['signatures'][task]['input']
    out[task] = loaded.signatures[task](**{name: tf.constant(x)})['logits'].numpy()
  return out


def compare_tflite(tflite_path: str, reference_logits: Mapping[str, np.ndarray],
                   inputs: Mapping[str, np.ndarray], *, num_threads: int = 1
                   ) -> list[TaskResult]:
  """Runs each task's TFLite signature at batch 1 on `inputs[task]`, against the reference."""
  interpreter = tf.lite.Interpreter(model_path=tflite_path, num_threads=num_threads)
  available = interpreter.get_signature_list()
  results = []
  for task, x in inputs.items():
    if task not in available:
      raise KeyError(f'{tflite_path}: no signature {task!r}; it has {sorted(available)}.')
    runner = interpreter.get_signature_runner(task)
    (name,) = available[task]['inputs']
    for i in range(min(2, len(x))):  # warm-up (allocation, first-run caches)
      runner(**{name: x[i:i + 1]})
    logits, times = [], []
    for i in range(len(x)):
      start = time.perf_counter()
      out = runner(**{name: x[i:i + 1]})
      times.append(time.perf_counter() - start)
      logits.append(out['logits'][0])
    logits = np.stack(logits)
    ref = np.asarray(reference_logits[task])
    results.append(TaskResult(
        task=task, num_examples=len(x),
        max_abs_logit_diff=float(np.max(np.abs(logits - ref))),
        top1_agreement=float(np.mean(logits.argmax(-1) == ref.argmax(-1))),
        latency_ms=float(np.median(times) * 1e3),
        logit_scale=float(np.max(np.abs(ref)))))
  return results


def variant_report(saved_model_dir: str, out_dir: str, quantization: str,
                   inputs: Mapping[str, np.ndarray], *,
                   representative_data: Mapping[str, np.ndarray] | None = None,
                   reference_logits: Mapping[str, np.ndarray] | None = None,
                   num_threads: int = 1, name: str = 'polyvit') -> VariantReport:
  """Converts the multi-task file of the tasks in `inputs` and one file per task, then
  measures them.

  Files: `<out_dir>/<name>_<quantization>.tflite` and
  `<out_dir>/single_task/<name>_<quantization>_<task>.tflite` (with labels and manifests).
  """
  tasks = list(inputs)
  path = tflite_lib.export_tflite(
      saved_model_dir, os.path.join(out_dir, f'{name}_{quantization}.tflite'),
      quantization=quantization, tasks=tasks, representative_data=representative_data)
  single, single_paths = {}, {}
  for task in tasks:
    p = tflite_lib.export_tflite(
        saved_model_dir,
        os.path.join(out_dir, 'single_task', f'{name}_{quantization}_{task}.tflite'),
        quantization=quantization, tasks=[task],
        representative_data=representative_data)
    single[task], single_paths[task] = tf.io.gfile.stat(p).length, p
  if reference_logits is None:
    reference_logits = saved_model_logits(saved_model_dir, inputs)
  report = measure(path, quantization, reference_logits, inputs, num_threads=num_threads)
  report.single_task_bytes, report.single_task_paths = single, single_paths
  return report


def measure(path: str, quantization: str, reference_logits: Mapping[str, np.ndarray],
            inputs: Mapping[str, np.ndarray], *, num_threads: int = 1) -> VariantReport:
  """The report of one converted file (no single-task files)."""
  results = compare_tflite(path, reference_logits, inputs, num_threads=num_threads)
  return VariantReport(quantization, path, tf.io.gfile.stat(path).length, {}, results)


def check_agreement(report: VariantReport,
                    min_top1_agreement: float = DEFAULT_MIN_TOP1_AGREEMENT, *,
                    allow_low_agreement: bool = False) -> list[str]:
  """Gates a measured variant on its per-task top-1 agreement with the float32 SavedModel.

  Records the verdict in `report.gate` and the figures in the manifest of the measured
  (multi-task) file (`agreement`). Raises AgreementError naming every task below
  `min_top1_agreement` (its agreement and logit error), or, with `allow_low_agreement`,
  logs that as a warning and returns the tasks below it.
  """
  if not 0.0 <= min_top1_agreement <= 1.0:
    raise ValueError(f'min_top1_agreement must be in [0, 1], got {min_top1_agreement}.')
  below = [t for t in report.tasks if t.top1_agreement < min_top1_agreement]
  action = 'refused' if below and not allow_low_agreement else (
      'kept (--allow_low_agreement)' if below else 'passed')
  report.gate = {'min_top1_agreement': min_top1_agreement, 'below': [t.task for t in below],
                 'action': action}
  manifest = tflite_lib.read_manifest(report.path)
  manifest['agreement'] = {
      'reference': 'float32 SavedModel (tensor signatures)', **report.gate,
      'tasks': {t.task: {'examples': t.num_examples, 'top1_agreement': t.top1_agreement,
                         'max_abs_logit_diff': t.max_abs_logit_diff,
                         'max_abs_logit': t.logit_scale} for t in report.tasks}}
  tflite_lib.write_manifest(manifest, report.path)
  if not below:
    return []
  detail = '; '.join(f'{t.task}: top-1 agreement {t.top1_agreement:.3f} over '
                     f'{t.num_examples} examples, max |logit diff| {t.max_abs_logit_diff:.3g} '
                     f'(max |logit| {t.logit_scale:.3g})' for t in below)
  message = (f'{report.quantization} ({report.path}): top-1 agreement with the float32 '
             f'SavedModel below {min_top1_agreement} -- {detail}')
  if not allow_low_agreement:
    raise AgreementError(message)
  logging.warning('!' * 78)
  logging.warning('LOW AGREEMENT, KEPT BECAUSE ALLOWED: %s', message)
  logging.warning('!' * 78)
  return [t.task for t in below]


def remove_variant(report: VariantReport) -> None:
  """Deletes the files of a refused variant (multi-task and single-task models)."""
  for path in [report.path, *report.single_task_paths.values()]:
    tflite_lib.remove(path)


def format_report(reports: list[VariantReport]) -> str:
  """Two markdown tables: sizes per variant, then agreement and latency per variant and task."""
  kb = lambda n: f'{n / 1024:,.1f}'  # noqa: E731
  lines = ['| variant | multi-task file (KiB) | n single-task files (KiB) | n | ratio |',
           '|---|---:|---:|---:|---:|']
  for r in reports:
    lines.append(f'| {r.quantization} | {kb(r.size_bytes)} | {kb(r.single_task_total)} | '
                 f'{len(r.single_task_bytes)} | {r.single_task_total / r.size_bytes:.2f} |')
  lines += ['', '| variant | task | examples | max abs logit diff | max abs logit | '
            'top-1 agreement | latency batch 1 (ms) |', '|---|---|---:|---:|---:|---:|---:|']
  for r in reports:
    for t in r.tasks:
      lines.append(f'| {r.quantization} | {t.task} | {t.num_examples} | '
                   f'{t.max_abs_logit_diff:.3g} | {t.logit_scale:.3g} | '
                   f'{t.top1_agreement:.3f} | {t.latency_ms:.2f} |')
  gated = [r for r in reports if r.gate]
  if gated:
    lines += ['', '| variant | minimum top-1 agreement | tasks below | verdict |',
              '|---|---:|---|---|']
    for r in gated:
      lines.append(f'| {r.quantization} | {r.gate["min_top1_agreement"]} | '
                   f'{", ".join(r.gate["below"]) or "-"} | {r.gate["action"]} |')
  return '\n'.join(lines)


def write_report(reports: list[VariantReport], out_dir: str, *, extra: dict | None = None
                 ) -> tuple[str, str]:
  """Writes `<out_dir>/report.md` and `<out_dir>/report.json`; returns their paths."""
  tf.io.gfile.makedirs(out_dir)
  md, js = os.path.join(out_dir, 'report.md'), os.path.join(out_dir, 'report.json')
  extra = extra or {}
  source = (f'SavedModel {extra["saved_model"]}, version {extra["version"]}\n\n'
            if 'saved_model' in extra and 'version' in extra else '')
  with tf.io.gfile.GFile(md, 'w') as f:
    f.write(source + format_report(reports) + '\n')
  with tf.io.gfile.GFile(js, 'w') as f:
    json.dump({**extra, 'variants': [r.to_json() for r in reports]}, f, indent=2)
  return md, js
