"""TFLite variant reports: size vs n single-task files, agreement with the SavedModel, latency.

For each quantization variant:
  size                 bytes of the one multi-task .tflite
  single-task total    bytes of the n single-task .tflite files (what n separate models
                       would ship; the paper's parameter-efficiency argument)
  per task             max |logit difference| and top-1 agreement with the SavedModel's
                       tensor signature on the same held-out inputs; latency at batch 1 in
                       the TFLite interpreter (median over the inputs, after two warm-up
                       runs; `num_threads` interpreter threads)
"""

from __future__ import annotations

import dataclasses
import json
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


@dataclasses.dataclass
class VariantReport:
  quantization: str
  path: str
  size_bytes: int
  single_task_bytes: dict[str, int]
  tasks: list[TaskResult]

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
  single = {}
  for task in tasks:
    p = tflite_lib.export_tflite(
        saved_model_dir,
        os.path.join(out_dir, 'single_task', f'{name}_{quantization}_{task}.tflite'),
        quantization=quantization, tasks=[task],
        representative_data=representative_data)
    single[task] = tf.io.gfile.stat(p).length
  if reference_logits is None:
    reference_logits = saved_model_logits(saved_model_dir, inputs)
  results = compare_tflite(path, reference_logits, inputs, num_threads=num_threads)
  return VariantReport(quantization, path, tf.io.gfile.stat(path).length, single, results)


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
  return '\n'.join(lines)


def write_report(reports: list[VariantReport], out_dir: str, *, extra: dict | None = None
                 ) -> tuple[str, str]:
  """Writes `<out_dir>/report.md` and `<out_dir>/report.json`; returns their paths."""
  tf.io.gfile.makedirs(out_dir)
  md, js = os.path.join(out_dir, 'report.md'), os.path.join(out_dir, 'report.json')
  with tf.io.gfile.GFile(md, 'w') as f:
    f.write(format_report(reports) + '\n')
  with tf.io.gfile.GFile(js, 'w') as f:
    json.dump({**(extra or {}), 'variants': [r.to_json() for r in reports]}, f, indent=2)
  return md, js
