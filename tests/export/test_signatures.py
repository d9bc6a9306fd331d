"""SavedModel export: signature set, round trips per modality, raw inputs, version layout."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.configs import specs
from polyvit_tf.export import savedmodel
from polyvit_tf.export import signatures as signatures_lib
from polyvit_tf.modalities import audio as audio_modality
from polyvit_tf.modalities import image as image_modality
from polyvit_tf.modalities import video as video_modality
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
    expected |= {task, f'{task}_raw', f'{task}_examples'}
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


def _examples_and_raw(task: str) -> tuple[list[bytes], dict]:
  """Serialized tf.Examples of a task as the project's writers make them, and the raw
  signature's input of the same media."""
  if task.startswith('image'):
    media = [fixtures.image_bytes(0), fixtures.image_bytes(1, size=(20, 30), fmt='png')]
    examples = [image_modality.example(f'e{i}', 0, m) for i, m in enumerate(media)]
    raw = {'encoded': tf.constant(media)}
  elif task.startswith('audio'):
    media = [fixtures.wav_bytes(0), fixtures.wav_bytes(1, seconds=0.7, rate=22050)]
    examples = [audio_modality.example(f'e{i}', [0], encoded=m) for i, m in enumerate(media)]
    raw = {'wav': tf.constant(media)}
  else:
    clip = fixtures.jpeg_frames(fixtures.video_frames(0, num_frames=12))
    examples = [video_modality.example('e0', 0, clip, 25.0)]
    raw = {'jpeg_frames': tf.constant([clip])}
  return [e.SerializeToString() for e in examples], raw


@pytest.mark.parametrize('task', ['image_b', 'audio_a', 'video_a'])
def test_examples_signature_is_the_raw_signature_on_tf_examples(loaded, task):
  """<task>_examples parses the TFRecords' tf.Examples as evaluation does and predicts by the
  one path: its outputs are the raw signature's on the same media."""
  serialized, raw = _examples_and_raw(task)
  out = loaded.signatures[f'{task}_examples'](examples=tf.constant(serialized))
  want = loaded.signatures[f'{task}_raw'](**raw)
  assert set(out) == set(signatures_lib.OUTPUT_KEYS)
  for key in signatures_lib.NUMERIC_OUTPUT_KEYS:
    np.testing.assert_allclose(out[key].numpy(), want[key].numpy(), atol=1e-6)
  np.testing.assert_array_equal(out['top_k_names'].numpy(), want['top_k_names'].numpy())


def test_examples_signature_refuses_hostile_requests(loaded):
  """The raw signatures' limits: the row limit, then the decode budget checked before
  decoding (an image whose header declares 10^10 pixels), and a string that is no tf.Example;
  each an InvalidArgumentError naming what is wrong, and the signature goes on serving."""
  from tests.serving import hostile  # pylint: disable=import-outside-toplevel
  sig = loaded.signatures['image_b_examples']
  good = image_modality.example('good', 0, fixtures.image_bytes(0)).SerializeToString()
  rows = signatures_lib.MAX_RAW_BATCH + 1
  with pytest.raises(tf.errors.InvalidArgumentError, match=f'request of {rows} examples '
                     'exceeds the limit of 256'):
    sig(examples=tf.constant([good] * rows))
  bomb = image_modality.example('bomb', 0, hostile.png_with_size(100_000, 100_000))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='task image_b: tf.Example bomb: media outside the decode budget.*'
                     'image: 100000 x 100000 pixels exceed the decode budget of 16777216'):
    sig(examples=tf.constant([good, bomb.SerializeToString()]))
  with pytest.raises(tf.errors.InvalidArgumentError, match='parse'):
    sig(examples=tf.constant([b'not a tf.Example']))
  assert sig(examples=tf.constant([good]))['logits'].shape == (1, 5)
  flac = audio_modality.example('f', [0], encoded=b'fLaC' + bytes(60), audio_format='flac')
  with pytest.raises(tf.errors.InvalidArgumentError, match='FLAC audio .* needs tensorflow-io'):
    loaded.signatures['audio_a_examples'](examples=tf.constant([flac.SerializeToString()]))


def test_the_saved_model_has_core_tensorflow_ops_only(exported_dir):
  """What the TF Serving binary can load: no custom-op namespace (tensorflow-io's `IO>`),
  no Python function ops, in any signature (the tf.Example ones parse audio too)."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(exported_dir, 'saved_model.pb'), 'rb') as f:
    proto.ParseFromString(f.read())
  graph = proto.meta_graphs[0].graph_def
  ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
  assert {'ParseExampleV2', 'DecodeWav'} <= ops
  assert not {op for op in ops if '>' in op or 'PyFunc' in op}


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
  assert [savedmodel.read_metadata(d)['version'] for d in (first, second)] == [7, 8]
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
  assert {'audio_a_raw', 'image_a_raw', 'video_a_raw', 'video_a_frames',
          'image_a_examples', 'audio_a_examples', 'video_a_examples'} <= set(names)
  with open(os.path.join(exported_dir, 'assets.extra', savedmodel.METADATA_FILE)) as f:
    meta = json.load(f)
  assert meta['tasks']['video_a']['signatures'] == {
      'tensor': 'video_a', 'raw': 'video_a_raw', 'frames': 'video_a_frames',
      'examples': 'video_a_examples'}
