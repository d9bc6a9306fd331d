"""`python -m polyvit_tf.export`: a work dir to a SavedModel version and a TFLite file."""

import json
import os
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
    assert json.load(f)['quantization'] == 'float16'
  # A missing work dir is named.
  bad = subprocess.run([sys.executable, '-m', 'polyvit_tf.export',
                        f'--workdir={tmp_path / "nothing"}', f'--out={out}'],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
  assert bad.returncode != 0 and 'config.json' in bad.stderr
