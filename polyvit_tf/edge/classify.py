"""Classifies files with a PolyViT .tflite in an environment with only LiteRT and NumPy.

  python -m polyvit_tf.edge.classify --model=<dir>/polyvit_float32.tflite --task=tones a.wav
  python -m polyvit_tf.edge.classify --model=... --task=digits pixels.npy   # uint8 (h, w, 3)
  python -m polyvit_tf.edge.classify --model=... --task=motion frames.npy   # uint8 (n, h, w, 3)

What an app does, in a few lines: the manifest (beside the model, else embedded in it) says
how to make the task's inputs; reference_preprocess makes them from the decoded media (WAV
read here; images and video frames as .npy pixels, decoded by the app's own codec); the
LiteRT signature runner computes every view's logits; the views are combined as the
manifest says. Prints `file: name score, ...` (top-k). argparse, not absl: the edge
environment has no absl.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from polyvit_tf import quiet
from polyvit_tf.edge import reference_preprocess as ref


def classify(model: str, task_name: str, files: list[str]) -> list[tuple[str, list]]:
  """(file, [(class id, name, probability), ...] top-k) for each file."""
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
  manifest = ref.load_manifest(model)
  if task_name not in manifest['tasks']:
    raise SystemExit(f'{model}: no task {task_name!r}; it has {sorted(manifest["tasks"])}.')
  task = manifest['tasks'][task_name]
  runner = Interpreter(model_path=model).get_signature_runner(task['signature'])
  out = []
  for path in files:
    if path.endswith('.wav'):
      waveform, rate = ref.read_wav(path)
      views = ref.preprocess(task, waveform, sample_rate=rate)
    elif path.endswith('.npy'):
      views = ref.preprocess(task, np.load(path, allow_pickle=False))
    else:
      raise SystemExit(f'{path}: give a .wav file or decoded uint8 pixels / frames as .npy.')
    view_logits = runner(**{task['input']: views})['logits']
    _, probabilities = ref.combine_views(view_logits, task)
    out.append((path, ref.top_k(probabilities, task)))
  return out


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--model', required=True, help='the .tflite file')
  parser.add_argument('--task', required=True, help='a task (signature) of the model')
  parser.add_argument('files', nargs='+', help='.wav files or .npy pixels / frames')
  parser.add_argument('--verbose', action='store_true', help=quiet.HELP)
  args = parser.parse_args(argv)
  for path, top in classify(args.model, args.task, args.files):
    print(f'{path}: ' + ', '.join(f'{name} {p:.3f}' for _, name, p in top))


if __name__ == '__main__':
  main(sys.argv[1:])
