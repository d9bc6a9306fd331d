"""The NumPy reference preprocessing (polyvit_tf/edge) and the manifest's preprocessing spec:
TF-free, derived from the config, and equal to the TF preprocessing of the raw signatures on
files (image PNG / JPEG, WAV at 16 kHz, 44.1 kHz and 8 kHz, video frames) to 1e-5."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.configs import demo
from polyvit_tf.configs import specs
from polyvit_tf.edge import reference_preprocess as ref
from polyvit_tf.export import preprocessing_spec
from tests.export import fixtures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_reference_imports_neither_tensorflow_nor_other_polyvit_modules():
  code = ("import sys; sys.modules['tensorflow'] = None\n"  # any import of TF fails
          "import polyvit_tf.edge.reference_preprocess\n"
          "print(sorted(m for m in sys.modules if m.startswith('polyvit_tf')))")
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       env={**os.environ, 'PYTHONPATH': ROOT}, timeout=60, check=True)
  # polyvit_tf.quiet: the package __init__'s start-up logging setup (standard library only).
  assert out.stdout.split() == ["['polyvit_tf',", "'polyvit_tf.edge',",
                                "'polyvit_tf.edge.reference_preprocess',", "'polyvit_tf.quiet']"]


def test_spec_is_read_from_the_config():
  config = demo.get_config()
  tones = preprocessing_spec.for_task(config, 'tones')
  assert tones['normalization']['mean'] == -0.6088 and tones['normalization']['std'] == 3.3718
  assert tones['views']['count'] == 2 and tones['frames'] == 128
  assert tones['log_mel']['mel_bins'] == 64 and tones['log_mel']['frame_length'] == 400
  assert tones['log_mel']['fft_length'] == 512 and tones['log_mel']['high_freq'] == 8000.0
  motion = preprocessing_spec.for_task(config, 'motion')
  assert motion['views'] == {**motion['views'], 'count': 3, 'temporal': 1, 'spatial': 3,
                             'length': 15}
  assert motion['resize']['short_side'] == 37 and motion['crop']['size'] == [32, 32]
  assert preprocessing_spec.for_task(config, 'digits')['resize']['size'] == [32, 32]
  assert preprocessing_spec.combine_views(config)['mode'] == config.eval.view_averaging
  # Change the config: the spec follows (nothing is typed twice).
  config.eval.view_averaging = 'logits' if config.eval.view_averaging == 'probs' else 'probs'
  config.tasks.tones.data.audio_norm_mean = -1.5
  config.tasks.motion.data.frame_stride = 3
  config.tasks.motion.eval_views = 2
  assert preprocessing_spec.combine_views(config)['mode'] == config.eval.view_averaging
  assert preprocessing_spec.for_task(config, 'tones')['normalization']['mean'] == -1.5
  motion = preprocessing_spec.for_task(config, 'motion')
  assert (motion['stride'], motion['views']['length']) == (3, 22)
  assert (motion['views']['temporal'], motion['views']['spatial']) == (2, 1)
  json.dumps(motion)  # JSON-able


def _entry(config, task):
  """What the reference reads of a task's manifest entry."""
  spec = specs.resolve(config).modality_of(task)
  return {'preprocessing': json.loads(json.dumps(preprocessing_spec.for_task(config, task))),
          'shape': [-1, *spec.input_size, spec.channels]}


def _configs():
  gray = fixtures.tiny_config()
  gray.modalities.image.channels = 1
  gray.modalities.video.channels = 1
  return {'tiny': fixtures.tiny_config(), 'demo': demo.get_config(), 'gray': gray}


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """Media written to disk, as an app would receive them."""
  root = tmp_path_factory.mktemp('media')
  out = {}
  for name, data in [('a.png', fixtures.image_bytes(0, size=(40, 48), fmt='png')),
                     ('b.png', fixtures.image_bytes(1, size=(17, 90), fmt='png')),
                     ('c.jpg', fixtures.image_bytes(2, size=(100, 70), fmt='jpeg')),
                     ('16k.wav', fixtures.wav_bytes(0, seconds=2.7, rate=16000)),
                     ('44k.wav', fixtures.wav_bytes(1, seconds=1.3, rate=44100)),
                     ('8k.wav', fixtures.wav_bytes(2, seconds=0.35, rate=8000)),
                     ('short.wav', fixtures.wav_bytes(3, seconds=0.02, rate=16000))]:
    (root / name).write_bytes(data)
    out[name] = str(root / name)
  return out


@pytest.mark.parametrize('config_name,task', [('tiny', 'image_a'), ('demo', 'digits'),
                                              ('gray', 'image_a')])
def test_image_agrees_with_tf(files, config_name, task):
  config = _configs()[config_name]
  entry, spec = _entry(config, task), specs.resolve(config).modality_of(task)
  for name in ('a.png', 'b.png', 'c.jpg'):
    with open(files[name], 'rb') as f:
      encoded = f.read()
    want = fixtures.raw_views(config, task)(tf.constant(encoded)).numpy()
    # The reference takes decoded pixels: decoded here by TF's own decoder (what the raw
    # signature uses; other JPEG decoders may differ by a few levels).
    pixels = tf.io.decode_image(encoded, channels=3).numpy()
    np.testing.assert_allclose(ref.preprocess(entry, pixels), want, atol=1e-5, rtol=0,
                               err_msg=name)


@pytest.mark.parametrize('config_name,task', [('tiny', 'audio_a'), ('demo', 'tones')])
def test_audio_agrees_with_tf_at_three_rates(files, config_name, task):
  config = _configs()[config_name]
  entry, spec = _entry(config, task), specs.resolve(config).modality_of(task)
  views = specs.resolve(config).data[task].num_views
  for name in ('16k.wav', '44k.wav', '8k.wav'):
    with open(files[name], 'rb') as f:
      want = fixtures.raw_views(config, task)(tf.constant(f.read())).numpy()
    waveform, rate = ref.read_wav(files[name])
    got = ref.preprocess(entry, waveform, sample_rate=rate)
    assert got.shape == want.shape == (views, *spec.input_size, spec.channels)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=name)
  # Under one analysis window: both refuse it, naming the reason (as training drops it).
  with open(files['short.wav'], 'rb') as f:
    with pytest.raises(tf.errors.InvalidArgumentError, match='shorter than one 25 ms'):
      fixtures.raw_views(config, task)(tf.constant(f.read()))
  waveform, rate = ref.read_wav(files['short.wav'])
  with pytest.raises(ValueError, match='shorter than one 25 ms'):
    ref.preprocess(entry, waveform, sample_rate=rate)


@pytest.mark.parametrize('config_name,task', [('tiny', 'video_a'), ('demo', 'motion'),
                                              ('gray', 'video_a')])
def test_video_agrees_with_tf(config_name, task):
  config = _configs()[config_name]
  entry, spec = _entry(config, task), specs.resolve(config).modality_of(task)
  for n, size in [(12, (36, 44)), (5, (50, 30)), (31, (64, 80))]:  # loops, portrait, long
    frames = fixtures.video_frames(n, num_frames=n, size=size)
    want = fixtures.raw_views(config, task, 'frames')(tf.constant(frames)).numpy()
    np.testing.assert_allclose(ref.preprocess(entry, frames), want, atol=1e-5, rtol=0)


def test_views_combined_as_the_signatures():
  from polyvit_tf.model import prediction  # pylint: disable=import-outside-toplevel
  view_logits = np.random.default_rng(0).normal(0, 3, (3, 6)).astype(np.float32)
  for activation in ('softmax', 'sigmoid'):
    for mode in ('probs', 'logits'):
      task = {'activation': activation, 'combine_views': {'mode': mode}}
      logits, probs = ref.combine_views(view_logits, task)
      want = prediction.combine_views(tf.constant(view_logits[None]),
                                      prediction.PredictionSpec(6, activation, mode))
      np.testing.assert_allclose(logits, want.logits.numpy()[0], atol=1e-6)
      np.testing.assert_allclose(probs, want.probabilities.numpy()[0], atol=1e-6)


def test_bad_inputs_are_named():
  entry = _entry(fixtures.tiny_config(), 'image_a')
  with pytest.raises(ValueError, match=r'image: expected uint8 RGB'):
    ref.preprocess(entry, np.zeros((8, 8, 3), np.float32))
  audio = _entry(fixtures.tiny_config(), 'audio_a')
  with pytest.raises(ValueError, match='sample_rate is required'):
    ref.preprocess(audio, np.zeros(100, np.float32))
  limits = audio['preprocessing']['limits']
  low, high = limits['sample_rate']
  with pytest.raises(ValueError, match=rf'{low} to {high} Hz \(sample rate limits\), got \(100,\) '
                     'at 1 Hz'):
    ref.preprocess(audio, np.zeros(100, np.float32), sample_rate=1)  # would upsample 16000x
  seconds = limits['max_seconds']  # the manifest's limit (the raw signature's), not the module's
  with pytest.raises(ValueError, match=rf'the limit is {seconds} s \(max seconds\)'):
    ref.preprocess(audio, np.zeros(int(seconds + 1) * 1000, np.float32), sample_rate=1000)
  with pytest.raises(ValueError, match='WAV: sample rate 500 Hz, the limit is 1000 to 384000'):
    ref.read_wav(fixtures.wav_bytes(0, seconds=0.1, rate=500))
  video = _entry(fixtures.tiny_config(), 'video_a')
  with pytest.raises(ValueError, match=r'video: 0 frames, the limit is 1 to \d+ \(max frames\)'):
    ref.preprocess(video, np.zeros((0, 8, 8, 3), np.uint8))
  with pytest.raises(ValueError, match=r'image: 0 x 5 pixels'):
    ref.preprocess(entry, np.zeros((0, 5, 3), np.uint8))
  with pytest.raises(ValueError, match='not a TFLite flatbuffer'):
    ref.read_embedded_manifest(b'\0' * 16)
