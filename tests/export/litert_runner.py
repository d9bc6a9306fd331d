"""Runs in the LiteRT-only environment (test_litert_env.py): no TensorFlow, no polyvit_tf
module but polyvit_tf.edge. For every .tflite of a job it reads the manifest (the JSON beside
it and the copy embedded in the file), lists the operators from the flatbuffer, and runs
every signature on media files through the NumPy reference preprocessing.

  python litert_runner.py job.json result.json

job.json: {"models": [paths], "inputs": {task: [{"name", "kind": "pixels" | "wav" |
"frames", "path"}]}, "preprocessed_dir": dir}. result.json: per model its signatures,
operators, manifest checks and, per task and input, the combined logits and probabilities.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sys

import numpy as np
from ai_edge_litert import interpreter as litert
from ai_edge_litert import schema_py_generated as schema

from polyvit_tf.edge import reference_preprocess as ref


def operators(path: str) -> list[dict]:
  """Every operator code of the model: name, and whether it is a builtin (not CUSTOM/Flex)."""
  with open(path, 'rb') as f:
    model = schema.Model.GetRootAs(f.read(), 0)
  names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith('_')}
  out = []
  for i in range(model.OperatorCodesLength()):
    code = model.OperatorCodes(i)
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    custom = code.CustomCode()
    out.append({'name': names.get(builtin, str(builtin)),
                'custom_code': custom.decode() if custom else None,
                'builtin': builtin != schema.BuiltinOperator.CUSTOM and not custom})
  return out


def _load(item: dict):
  if item['kind'] == 'wav':
    waveform, rate = ref.read_wav(item['path'])
    return waveform, rate
  return np.load(item['path']), None


def run_model(path: str, inputs: dict, preprocessed_dir: str | None) -> dict:
  manifest = ref.load_manifest(path)
  embedded = ref.read_embedded_manifest(path)
  sidecar = {k: v for k, v in manifest.items() if k != 'agreement'}
  interpreter = litert.Interpreter(model_path=path, num_threads=1)
  signatures = interpreter.get_signature_list()
  result = {'signatures': sorted(signatures), 'manifest_tasks': sorted(manifest['tasks']),
            'embedded_equals_json': embedded == sidecar, 'operators': operators(path),
            'outputs': {}}
  for task_name in sorted(signatures):
    task = manifest['tasks'][task_name]
    runner = interpreter.get_signature_runner(task_name)
    outs = {}
    for item in inputs[task_name]:
      media, rate = _load(item)
      views = ref.preprocess(task, media, sample_rate=rate)
      if preprocessed_dir:
        np.save(os.path.join(preprocessed_dir, f'{task_name}-{item["name"]}.npy'), views)
      out = runner(**{task['input']: views})
      logits, probabilities = ref.combine_views(out['logits'], task)
      outs[item['name']] = {
          'views': len(views), 'logits': logits.tolist(),
          'probabilities': probabilities.tolist(),
          'top_k': [i for i, _, _ in ref.top_k(probabilities, task)],
          # The file's own per-view probabilities, combined the same way (mode 'probs').
          'tflite_view_probabilities': np.asarray(out['probabilities']).tolist()}
    result['outputs'][task_name] = outs
  return result


def main(job_path: str, result_path: str) -> None:
  with open(job_path) as f:
    job = json.load(f)
  results = {
      'models': {p: run_model(p, job['inputs'], job.get('preprocessed_dir') if i == 0 else None)
                 for i, p in enumerate(job['models'])},
      'tensorflow_importable': importlib.util.find_spec('tensorflow') is not None,
      'tensorflow_imported': any(m == 'tensorflow' or m.startswith('tensorflow.')
                                 for m in sys.modules),
      'polyvit_modules': sorted(m for m in sys.modules if m.startswith('polyvit_tf')),
      'numpy': np.__version__,
      'ai_edge_litert': importlib.metadata.version('ai-edge-litert'),
  }
  with open(result_path, 'w') as f:
    json.dump(results, f)


if __name__ == '__main__':
  main(*sys.argv[1:])
