"""`python -m polyvit_tf.export`: a work dir to a SavedModel version and a TFLite file."""

import json
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.export import fixtures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_export_command_line(exported_base, tmp_path):
  out = str(tmp_path / 'edge')
  env = {**os.environ, 'PYTHONPATH': ROOT, 'TF_CPP_MIN_LOG_LEVEL': '2'}
  result = subprocess.run(
      [sys.executable, '-m', 'polyvit_tf.export', '--format=tflite',
       f'--workdir={fixtures.workdir_of_export()}', f'--out={out}', '--quantization=float16',
       '--tasks=image_a,audio_a', '--noreport'],
      capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  # The SavedModel it exported first (version 1 of <out>/savedmodel), then the TFLite file.
  assert os.path.exists(os.path.join(out, 'savedmodel', '1', 'saved_model.pb'))
  path = os.path.join(out, 'polyvit_float16.tflite')
  assert f'float16: {path}' in result.stdout
  assert sorted(tf.lite.Interpreter(model_path=path).get_signature_list()) == [
      'audio_a', 'image_a']
  with open(os.path.join(out, 'polyvit_float16.json')) as f:
    manifest = json.load(f)
  assert manifest['quantization'] == 'float16'
  assert manifest['source_version'] == 1  # the SavedModel's version directory
  # A missing work dir is named.
  bad = subprocess.run([sys.executable, '-m', 'polyvit_tf.export',
                        f'--workdir={tmp_path / "nothing"}', f'--out={out}'],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
  assert bad.returncode != 0 and 'config.json' in bad.stderr


@pytest.mark.slow
def test_int8_export_is_gated_on_top1_agreement(exported_base, tmp_path):
  """int8 is always measured (its calibration data gives held-out inputs). The tiny model's
  int8 flips a quarter of 64 seeded synthetic examples (measured 0.750), so at the strictest
  threshold the command refuses it: files deleted, tasks and figures named, exit non-zero."""
  out = str(tmp_path / 'edge')
  env = {**os.environ, 'PYTHONPATH': ROOT, 'TF_CPP_MIN_LOG_LEVEL': '2'}
  result = subprocess.run(
      [sys.executable, '-m', 'polyvit_tf.export', '--format=tflite',
       f'--saved_model={exported_base}', f'--out={out}', '--quantization=int8',
       '--tasks=image_a', '--data=synthetic', '--num_examples=64', '--noreport',
       '--min_top1_agreement=1.0'],
      capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
  assert result.returncode != 0, result.stdout[-2000:]
  assert 'int8: REFUSED, files deleted -- ' in result.stdout, result.stderr[-3000:]
  assert re.search(r'image_a: top-1 agreement 0\.\d+ over 64 examples, max \|logit diff\| '
                   r'[\d.]+ \(max \|logit\| [\d.]+\)', result.stderr), result.stderr[-3000:]
  assert '--allow_low_agreement keeps such a variant' in result.stderr
  assert os.listdir(out) == []  # model, manifest and labels deleted
  bad = subprocess.run([sys.executable, '-m', 'polyvit_tf.export', '--format=tflite',
                        f'--saved_model={exported_base}', f'--out={out}',
                        '--min_top1_agreement=2'],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
  assert bad.returncode != 0 and '--min_top1_agreement must be in [0, 1]' in bad.stderr
