"""SavedModel export: signature set, round trips per modality, raw inputs, version layout."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.configs import specs
from polyvit_tf.export import savedmodel
from polyvit_tf.model import PolyViT
from tests.export import fixtures


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def test_view_combination_default_and_activation_are_recorded(exported_dir):
  """The export records how its probabilities are made: views averaged as logits by default
  (ViViT / Scenic; also when a config lacks the key), the activation of each task's loss."""
  config = fixtures.tiny_config()
  assert specs.resolve(config).eval.view_averaging == 'logits'
  del config.eval['view_averaging']
  assert specs.resolve(config).eval.view_averaging == 'logits'
  meta = savedmodel.read_metadata(exported_dir)
  assert {t: (m['activation'], m['view_averaging']) for t, m in meta['tasks'].items()} == {
      'audio_a': ('sigmoid', 'logits'), 'image_a': ('sigmoid', 'logits'),
      'image_b': ('sigmoid', 'logits'), 'video_a': ('softmax', 'logits')}


def test_signature_names_inputs_and_default(exported_dir, loaded, run):
  config, model = run
  expected = set()
  for task in model.task_names:
    expected |= {task, f'{task}_raw'}
  expected |= {'video_a_frames', 'serving_default'}
  assert set(loaded.signatures) == expected
  for task in model.task_names:
    (name, spec), = loaded.signatures[task].structured_input_signature[1].items()
    assert name == model.task(task).modality
    assert tuple(spec.shape) == (None,) + model.input_shape(task)
  first = model.task_names[0]
  assert (loaded.signatures['serving_default'].structured_input_signature
          == loaded.signatures[first].structured_input_signature)
  meta = savedmodel.read_metadata(exported_dir)
  assert meta['serving_default'] == first
  assert meta['signatures']['video_a_raw'] == {
      'task': 'video_a', 'kind': 'raw', 'input': 'jpeg_frames', 'dtype': 'string',
      'shape': [-1, -1]}
  assert savedmodel.read_config(exported_dir).to_dict() == config.to_dict()


@pytest.mark.parametrize('task', ['image_a', 'image_b', 'audio_a', 'video_a'])
def test_tensor_signature_round_trip(loaded, run, task):
  config, model = run
  rng = np.random.default_rng(0)
  spec = model.task(task)
  for batch in (1, 3):  # variable batch size
    x = rng.uniform(-1, 1, (batch,) + model.input_shape(task)).astype(np.float32)
    out = {k: v.numpy() for k, v in
           loaded.signatures[task](**{spec.modality: tf.constant(x)}).items()}
    logits = model.model_for(task)(x).numpy()
    np.testing.assert_allclose(out['logits'], logits, atol=1e-5)
    # The activation of the task's loss (image tasks train with sigmoid_xent).
    probs = _sigmoid(logits) if spec.loss == 'sigmoid_xent' else _softmax(logits)
    np.testing.assert_allclose(out['probabilities'], probs, atol=1e-5)
    k = min(5, spec.num_classes)
    assert out['top_k_ids'].shape == (batch, k)
    np.testing.assert_array_equal(out['top_k_ids'][:, 0], probs.argmax(-1))
    np.testing.assert_allclose(out['top_k_scores'], np.sort(probs, -1)[:, ::-1][:, :k],
                               atol=1e-5)
    names = specs.resolve(config).task(task).class_names
    assert [[n.decode() for n in row] for row in out['top_k_names']] == [
        [names[i] for i in row] for row in out['top_k_ids']]
  # Probabilities do not all agree: the randomised heads make outputs depend on the input.
  assert np.ptp(out['logits']) > 0.1


def test_class_names_embedded(loaded):
  x = tf.zeros((1, 32, 32, 3))
  names = loaded.signatures['image_a'](image=x)['top_k_names'].numpy()[0]
  assert all(n.decode().startswith('digit ') for n in names)
  names = loaded.signatures['image_b'](image=x)['top_k_names'].numpy()[0]
  assert sorted(n.decode() for n in names) == [f'class_{i}' for i in range(5)]


def test_raw_image_signature_is_eval_preprocessing(loaded, run):
  config, model = run
  encoded = [fixtures.image_bytes(0), fixtures.image_bytes(1, size=(20, 30), fmt='png')]
  out = loaded.signatures['image_a_raw'](encoded=tf.constant(encoded))
  x = np.concatenate([fixtures.raw_views(config, 'image_a')(tf.constant(e)) for e in encoded])
  np.testing.assert_allclose(out['logits'].numpy(), model.model_for('image_a')(x).numpy(),
                             atol=1e-5)


def test_raw_audio_signature_averages_views(loaded, run):
  config, model = run
  wavs = [fixtures.wav_bytes(0), fixtures.wav_bytes(1, seconds=0.7, rate=22050)]
  out = loaded.signatures['audio_a_raw'](wav=tf.constant(wavs))
  assert specs.resolve(config).data['audio_a'].num_views == 2
  views = np.stack([fixtures.raw_views(config, 'audio_a')(tf.constant(w)) for w in wavs])
  view_logits = model.model_for('audio_a')(views.reshape((-1,) + views.shape[2:])).numpy()
  view_logits = view_logits.reshape(2, 2, -1)
  assert np.abs(view_logits[:, 0] - view_logits[:, 1]).max() > 1e-3  # the views differ
  np.testing.assert_allclose(out['logits'].numpy(), view_logits.mean(1), atol=1e-5)
  # eval.view_averaging = 'logits', the default (multi-label: sigmoid per class of the mean).
  np.testing.assert_allclose(out['probabilities'].numpy(), _sigmoid(view_logits.mean(1)),
                             atol=1e-5)


def test_raw_video_signatures_jpeg_and_uint8(loaded, run):
  config, model = run
  frames = fixtures.video_frames(0, num_frames=12)
  short = fixtures.video_frames(1, num_frames=9)
  jpegs = fixtures.jpeg_frames(frames)
  padded = fixtures.jpeg_frames(short) + [b''] * 3  # rows of a batch padded with ''
  out = loaded.signatures['video_a_raw'](jpeg_frames=tf.constant([jpegs, padded])).copy()
  decoded = np.stack([tf.io.decode_jpeg(j).numpy() for j in jpegs])
  via_frames = loaded.signatures['video_a_frames'](frames=tf.constant(decoded[None]))
  np.testing.assert_allclose(via_frames['logits'].numpy()[0], out['logits'].numpy()[0],
                             atol=1e-5)
  for row, clip in enumerate((jpegs, fixtures.jpeg_frames(short))):
    views = fixtures.raw_views(config, 'video_a')(tf.constant(clip)).numpy()
    logits = model.model_for('video_a')(views).numpy()
    np.testing.assert_allclose(out['logits'].numpy()[row], logits.mean(0), atol=1e-5)
    np.testing.assert_allclose(out['probabilities'].numpy()[row], _softmax(logits.mean(0)),
                               atol=1e-5)


def test_versions_and_assets(exported_base, exported_dir, tmp_path, run):
  config, model = run
  assert os.path.basename(exported_dir) == '1'
  assert savedmodel.next_version(exported_base) == 2
  with pytest.raises(FileExistsError, match='immutable'):
    savedmodel.export_model(model, config, exported_base, version=1, raw=False)
  # A one-task model keeps the two extra exports quick.
  small_config = fixtures.tiny_config()
  small_config.tasks = {'image_b': small_config.tasks.image_b}
  small_config.modalities = {'image': small_config.modalities.image}
  small = PolyViT(small_config, seed=0)
  out = str(tmp_path / 'm')
  first = savedmodel.export_model(small, small_config, out, version=7, raw=False)
  second = savedmodel.export_model(small, small_config, out, raw=False)
  assert (os.path.basename(first), os.path.basename(second)) == ('7', '8')
  assert savedmodel.latest_version_dir(out) == second
  assert sorted(os.listdir(out)) == ['7', '8']  # no temporary directory left behind
  # TF Serving warm-up requests: one per signature (raw ones with real media), replayable.
  from tensorflow_serving.apis import prediction_log_pb2
  path = os.path.join(exported_dir, 'assets.extra', savedmodel.WARMUP_FILE)
  logs = [prediction_log_pb2.PredictionLog.FromString(r)
          for r in tf.data.TFRecordDataset(path).as_numpy_iterator()]
  names = [l.predict_log.request.model_spec.signature_name for l in logs]
  assert names == list(savedmodel.read_metadata(exported_dir)['signatures']) + [
      'serving_default']
  assert {'audio_a_raw', 'image_a_raw', 'video_a_raw', 'video_a_frames'} <= set(names)
  with open(os.path.join(exported_dir, 'assets.extra', savedmodel.METADATA_FILE)) as f:
    meta = json.load(f)
  assert meta['tasks']['video_a']['signatures'] == {
      'tensor': 'video_a', 'raw': 'video_a_raw', 'frames': 'video_a_frames'}
