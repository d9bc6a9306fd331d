"""Co-training and evaluation of the tiny config on real prepared TFDS data sets, read through
`tfds:<name>` sources with `data.data_dir` (tests/data/tfds_sets.py; nothing mocked): one
task per catalog layout (cifar10, speech_commands, ucf101) and an AudioSet-like multi-label
set."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from polyvit_tf.data import errors
from polyvit_tf.train import loop
from tests.data import tfds_sets

pytestmark = pytest.mark.slow


def test_trains_and_evaluates_on_prepared_tfds_sets(tfds_data_dir, tmp_path):
  config = tfds_sets.config(tfds_data_dir)
  errors.BAD_EXAMPLES.reset()
  trainer = loop.Trainer(config, str(tmp_path))
  try:
    assert trainer.train() == 4  # one step of each of the 4 tasks
    assert {t: int(v.numpy()) for t, v in trainer.positions.items()} == {
        'image_a': 1, 'audio_a': 1, 'audio_b': 1, 'video_a': 1}
    results = trainer.evaluate('eval')
    validation = trainer.evaluator.evaluate('validation', tasks=['image_a'])
  finally:
    trainer.close()
  counts = tfds_sets.COUNTS
  assert {t: r['num_examples'] for t, r in results.items()} == {
      'image_a': counts['cifar10']['test'], 'audio_a': counts['audioset']['test'],
      'audio_b': counts['speech_commands']['test'], 'video_a': counts['ucf101']['test']}
  assert {t: r['num_examples'] for t, r in validation.items()} == {
      'image_a': 1}  # train[98%:] of cifar10's 50
  assert 'map' in results['audio_a']  # the multi-label set is scored as one
  for r in results.values():
    assert np.isfinite(r['loss']) and 0.0 <= r['top1'] <= 1.0
  with open(os.path.join(tmp_path, 'eval', 'metrics.json')) as f:
    assert sorted(json.load(f)) == ['audio_a', 'audio_b', 'image_a', 'video_a']
  assert errors.BAD_EXAMPLES.summary() == {}  # every TFDS example decoded
