"""The edge app's environment: only `ai-edge-litert` and NumPy (polyvit_tf/edge/requirements.txt,
from PyPI), no TensorFlow. Every signature of every TFLite variant runs there on media files
through the NumPy reference preprocessing, and agrees with the SavedModel's raw signatures.

The environment is `.venv-litert/` at the repository root (or $POLYVIT_LITERT_ENV), made by
`make install` (scripts/install.sh); the test itself installs nothing.
"""

import hashlib
import json
import os
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.export import report as report_lib
from polyvit_tf.export import savedmodel
from polyvit_tf.export import tflite as tflite_lib
from tests.export import fixtures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REQUIREMENTS = os.path.join(ROOT, 'polyvit_tf', 'edge', 'requirements.txt')
RUNNER = os.path.join(ROOT, 'tests', 'export', 'litert_runner.py')


def _clean_env() -> dict:
  """The environment of a process in the LiteRT env: this repository only on the path."""
  env = {k: v for k, v in os.environ.items()
         if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')}
  return {**env, 'PYTHONPATH': ROOT, 'PYTHONNOUSERSITE': '1'}


def litert_python() -> str:
  """The python of the LiteRT-only environment that `make install` (scripts/install.sh)
  creates from polyvit_tf/edge/requirements.txt: tests never reach the package index."""
  root = os.environ.get('POLYVIT_LITERT_ENV') or os.path.join(ROOT, '.venv-litert')
  python = os.path.join(root, 'bin', 'python')
  stamp = os.path.join(root, '.polyvit-requirements-sha256')
  with open(REQUIREMENTS, 'rb') as f:
    want = hashlib.sha256(f.read()).hexdigest()
  if not os.path.exists(stamp) or open(stamp).read().strip() != want:
    pytest.fail(f'the LiteRT-only environment {root} is missing or stale: run `make install` '
                f'(scripts/install.sh makes it from {REQUIREMENTS}).')
  return python


# ------------------------------------------------------------------------------------ media
def _media(tmp, config) -> dict:
  """Per modality the app's files, the raw-signature inputs and the reference inputs."""
  images = [('png', fixtures.image_bytes(0, size=(40, 48), fmt='png')),
            ('jpeg', fixtures.image_bytes(1, size=(100, 70), fmt='jpeg'))]
  wavs = [('16k', fixtures.wav_bytes(0, seconds=1.3, rate=16000)),
          ('44k', fixtures.wav_bytes(1, seconds=0.9, rate=44100)),
          ('8k', fixtures.wav_bytes(2, seconds=0.6, rate=8000))]
  frames = fixtures.video_frames(4, num_frames=11, size=(36, 44))
  media = {'image': [], 'audio': [], 'video': []}
  for name, encoded in images:
    # The reference's input is decoded pixels, decoded here by TF's decoder (the one the raw
    # signature uses, so a JPEG decodes to the same pixels).
    pixels = tmp / f'{name}.npy'
    np.save(pixels, tf.io.decode_image(encoded, channels=3).numpy())
    media['image'].append({'name': name, 'kind': 'pixels', 'path': str(pixels),
                           'signature': 'raw', 'raw': encoded})
  for name, encoded in wavs:
    path = tmp / f'{name}.wav'
    path.write_bytes(encoded)  # the reference reads the WAV file itself
    media['audio'].append({'name': name, 'kind': 'wav', 'path': str(path),
                           'signature': 'raw', 'raw': encoded})
  jpegs = fixtures.jpeg_frames(frames)
  decoded = tmp / 'jpeg_frames.npy'
  np.save(decoded, np.stack([tf.io.decode_jpeg(j).numpy() for j in jpegs]))
  np.save(tmp / 'frames.npy', frames)
  media['video'] = [
      {'name': 'jpeg_frames', 'kind': 'frames', 'path': str(decoded), 'signature': 'raw',
       'raw': jpegs},
      {'name': 'frames', 'kind': 'frames', 'path': str(tmp / 'frames.npy'),
       'signature': 'frames', 'raw': frames}]
  return {task: media[config.tasks[task].modality] for task in config.tasks}


def _calibration(config, tasks, n=9) -> dict:
  """Preprocessed inputs of other media like the test's (first view), for int8 calibration:
  what an app would calibrate on (rates and lengths as it receives them)."""
  out = {}
  for task in tasks:
    modality = config.tasks[task].modality
    xs = []
    for i in range(n):
      if modality == 'image':
        x = fixtures.raw_views(config, task)(tf.constant(fixtures.image_bytes(50 + i)))
      elif modality == 'audio':
        wav = fixtures.wav_bytes(50 + i, seconds=0.5 + 0.2 * i, rate=(16000, 44100, 8000)[i % 3])
        x = fixtures.raw_views(config, task)(tf.constant(wav))
      else:
        x = fixtures.raw_views(config, task, 'frames')(tf.constant(fixtures.video_frames(50 + i)))
      xs.append(x.numpy()[0])
    out[task] = np.stack(xs)
  return out


def _saved_model_outputs(loaded, meta, media) -> dict:
  out = {}
  for task, items in media.items():
    for item in items:
      sig = meta['tasks'][task]['signatures'][item['signature']]
      raw = item['raw']
      x = tf.constant(raw[None] if isinstance(raw, np.ndarray) else [raw])
      result = loaded.signatures[sig](**{meta['signatures'][sig]['input']: x})
      out[task, item['name']] = (result['logits'].numpy()[0],
                                 result['probabilities'].numpy()[0])
  return out


@pytest.mark.slow
def test_every_signature_of_every_variant_runs_with_litert_only(exported_dir, tmp_path, capsys):
  python = litert_python()
  config = savedmodel.read_config(exported_dir)
  meta = savedmodel.read_metadata(exported_dir)
  tasks = list(meta['tasks'])
  media = _media(tmp_path, config)

  start = time.perf_counter()
  calibration = _calibration(config, tasks)
  models = {q: tflite_lib.export_tflite(exported_dir, str(tmp_path / f'polyvit_{q}.tflite'),
                                        quantization=q, representative_data=calibration)
            for q in tflite_lib.QUANTIZATIONS}
  convert_s = time.perf_counter() - start

  job = {'models': list(models.values()), 'preprocessed_dir': str(tmp_path),
         'inputs': {t: [{k: i[k] for k in ('name', 'kind', 'path')} for i in items]
                    for t, items in media.items()}}
  (tmp_path / 'job.json').write_text(json.dumps(job))
  start = time.perf_counter()
  run = subprocess.run([python, RUNNER, str(tmp_path / 'job.json'),
                        str(tmp_path / 'result.json')], capture_output=True, text=True,
                       env=_clean_env(), cwd=str(tmp_path), timeout=600)
  run_s = time.perf_counter() - start
  assert run.returncode == 0, run.stderr[-3000:]
  result = json.loads((tmp_path / 'result.json').read_text())

  # The environment: LiteRT and NumPy, no TensorFlow anywhere, only the edge package.
  assert not result['tensorflow_importable'] and not result['tensorflow_imported']
  # (polyvit_tf.quiet: the package __init__'s logging setup, standard library only.)
  assert result['polyvit_modules'] == ['polyvit_tf', 'polyvit_tf.edge',
                                       'polyvit_tf.edge.reference_preprocess',
                                       'polyvit_tf.quiet']
  pip_list = subprocess.run([python, '-m', 'pip', 'list', '--format=json'], check=True,
                            capture_output=True, text=True, env=_clean_env()).stdout
  installed = {p['name'].lower() for p in json.loads(pip_list)}
  assert 'ai-edge-litert' in installed and 'numpy' in installed
  assert not {n for n in installed if n.startswith(('tensorflow', 'tf-', 'keras'))}

  # The reference preprocessing in that environment = the TF preprocessing of the raw
  # signatures (the modality modules' raw_inputs) on the same files.
  for task, items in media.items():
    for item in items:
      got = np.load(tmp_path / f'{task}-{item["name"]}.npy')
      suffix = 'frames' if item['signature'] == 'frames' else 'raw'
      want = fixtures.raw_views(config, task, suffix)(tf.constant(item['raw']))
      np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=0,
                                 err_msg=f'{task} {item["name"]}')

  # Every signature of every variant ran; every operator is a builtin; the manifests agree.
  loaded = tf.saved_model.load(exported_dir)
  want = _saved_model_outputs(loaded, meta, media)
  lines = ['| variant | task | inputs | max abs logit diff | max abs logit | top-1 agreement |',
           '|---|---|---:|---:|---:|---:|']
  for q, path in models.items():
    r = result['models'][path]
    assert r['signatures'] == r['manifest_tasks'] == sorted(tasks), q
    assert r['embedded_equals_json'], q
    custom = [op for op in r['operators'] if not op['builtin']]
    assert not custom, (q, custom)
    for task in tasks:
      outs = r['outputs'][task]
      assert sorted(outs) == sorted(i['name'] for i in media[task])
      diffs, agree, scale = [], [], []
      for name, out in outs.items():
        logits, probabilities = want[task, name]
        got = np.asarray(out['logits'], np.float32)
        diffs.append(float(np.max(np.abs(got - logits))))
        agree.append(int(np.argmax(got) == np.argmax(logits)))
        scale.append(float(np.max(np.abs(logits))))
        assert out['views'] == int(config.tasks[task].get('eval_views', 1) or 1)
        if q == 'float32':
          np.testing.assert_allclose(got, logits, atol=1e-5, rtol=0, err_msg=f'{task} {name}')
          np.testing.assert_allclose(out['probabilities'], probabilities, atol=1e-5, rtol=0)
          assert out['top_k'][0] == int(np.argmax(probabilities))
      if q != 'float32':  # the bounds test_tflite states for each variant
        assert max(diffs) <= fixtures.QUANTIZED_BOUNDS[q][0] * max(scale), (q, task, diffs)
      lines.append(f'| {q} | {task} | {len(outs)} | {max(diffs):.3g} | {max(scale):.3g} | '
                   f'{np.mean(agree):.3f} |')
  # The command line an app can start from, in the same environment.
  for task in tasks:
    files = [i['path'] for i in media[task] if i['signature'] == 'raw']
    cli = subprocess.run([python, '-m', 'polyvit_tf.edge.classify', f'--model={models["float32"]}',
                          f'--task={task}', *files], capture_output=True, text=True,
                         env=_clean_env(), cwd=str(tmp_path), timeout=120)
    assert cli.returncode == 0, cli.stderr[-2000:]
    names = meta['tasks'][task]['class_names']
    for line, item in zip(cli.stdout.splitlines(), [i for i in media[task] if i['path'] in files]):
      best = names[int(np.argmax(want[task, item['name']][1]))]
      assert line.startswith(f'{item["path"]}: {best} '), (line, best)
  with capsys.disabled():
    print(f'\nLiteRT-only env ({python}; ai-edge-litert {result["ai_edge_litert"]}, numpy '
          f'{result["numpy"]}); 4 conversions '
          f'{convert_s:.0f} s; LiteRT run {run_s:.1f} s. Operators of the float32 file: '
          f'{sorted({op["name"] for op in result["models"][models["float32"]]["operators"]})}')
    print('\n'.join(lines))
