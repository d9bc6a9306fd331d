"""No training/serving skew: the same media through the evaluation pipeline + Keras model and
through the exported raw-input signatures give the same outputs (to 1e-5)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf.data import features
from polyvit_tf.data import pipeline
from polyvit_tf.data import records
from polyvit_tf.export import signatures as signatures_lib
from polyvit_tf.train import losses
from polyvit_tf.train import metrics
from tests.export import fixtures

N = 3


@pytest.fixture(scope='module')
def media(tmp_path_factory):
  """Media per modality, written as the eval split of tfrecord sources, and the raw bytes."""
  root = str(tmp_path_factory.mktemp('media'))
  images = [fixtures.image_bytes(i, size=(24 + 8 * i, 40)) for i in range(N)]
  wavs = [fixtures.wav_bytes(i, seconds=0.6 + 0.3 * i, rate=(16000, 22050, 8000)[i])
          for i in range(N)]
  videos = [fixtures.jpeg_frames(fixtures.video_frames(i, num_frames=10 + 2 * i))
            for i in range(N)]
  examples = {
      'image': [features.image_example(f'img{i}', 0, e) for i, e in enumerate(images)],
      'audio': [features.audio_example(f'wav{i}', [0], encoded=w, audio_format='wav')
                for i, w in enumerate(wavs)],
      'video': [features.video_example(f'vid{i}', 0, f, 25.0) for i, f in enumerate(videos)],
  }
  for modality, exs in examples.items():
    records.write_split(os.path.join(root, modality), 'test', exs)
  return root, {'image': images, 'audio': wavs, 'video': videos}


def _eval_outputs(config, model, task):
  """What the evaluator computes: per-view logits of eval_dataset, views combined."""
  batch = next(pipeline.eval_dataset(config, task, split='eval', batch_size=N)
               .as_numpy_iterator())
  assert batch['mask'].tolist() == [1.0] * N
  x = batch['inputs']
  view_logits = model.model_for(task)(x.reshape((-1,) + x.shape[2:])).numpy()
  view_logits = view_logits.reshape(x.shape[0], x.shape[1], -1)
  return view_logits


@pytest.mark.parametrize('task', ['image_a', 'audio_a', 'video_a'])
def test_eval_pipeline_and_raw_signature_agree(loaded, run, media, task):
  root, raw = media
  config, model = run
  config = config.copy_and_resolve_references()
  modality = model.task(task).modality
  config.tasks[task].data.source = f'tfrecord:{os.path.join(root, modality)}'
  view_logits = _eval_outputs(config, model, task)

  (name, _), = loaded.signatures[f'{task}_raw'].structured_input_signature[1].items()
  if modality == 'video':
    length = max(len(v) for v in raw['video'])
    inputs = [v + [b''] * (length - len(v)) for v in raw['video']]
  else:
    inputs = raw[modality]
  out = loaded.signatures[f'{task}_raw'](**{name: tf.constant(inputs)})

  np.testing.assert_allclose(out['logits'].numpy(), view_logits.mean(1), atol=1e-5, rtol=0)
  # The evaluator's view combination (polyvit_tf.train.metrics, eval.view_averaging).
  spec = model.task(task)
  loss = 'sigmoid_xent' if spec.multilabel else 'softmax_xent'
  scores, _ = metrics.average_views(loss, view_logits, np.zeros(view_logits.shape[::2]),
                                    config.eval.view_averaging)
  np.testing.assert_allclose(out['probabilities'].numpy(), scores, atol=1e-5, rtol=0)
  assert signatures_lib.view_averaging(config) == config.eval.view_averaging
  assert losses.scores(loss, view_logits[:, 0]).shape == view_logits[:, 0].shape
