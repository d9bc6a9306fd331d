"""PolyViTExampleGen on real prepared TFDS data sets (tests/data/tfds_sets.py): run by TFX's
LocalDagRunner with a sqlite ML Metadata store, it re-encodes every `tfds:` task's splits
(sliced ones included) into our tf.Example format, and the records hold exactly the TFDS
examples: the same PNG and JPEG bytes, the same samples and sample rate, the same labels."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata import metadata_store
from tfx import v1 as tfx

from pipelines import examples as examples_lib
from pipelines.components import example_gen as example_gen_lib
from polyvit_tf.data import features
from polyvit_tf.data import sources
from tests.data import tfds_sets

pytestmark = pytest.mark.slow


def _run_example_gen(config, root: str):
  """Runs a pipeline of PolyViTExampleGen alone; returns its Examples artifact (MLMD)."""
  db = os.path.join(root, 'metadata.sqlite')
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(db)
  gen = example_gen_lib.PolyViTExampleGen(
      config_json=examples_lib.data_only(config).to_json())
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name='tfds_example_gen', pipeline_root=os.path.join(root, 'pipeline'),
      components=[gen], metadata_connection_config=connection))
  store = metadata_store.MetadataStore(connection)
  (artifact,) = store.get_artifacts_by_type('Examples')
  return artifact


def _records(uri: str, split: str, modality: str) -> list[dict]:
  files = tf.io.gfile.glob(os.path.join(uri, f'Split-{split}', '*.gz'))
  return [{k: v.numpy() for k, v in features.parse(r, modality).items()}
          for r in tf.data.TFRecordDataset(files, compression_type='GZIP')]


def test_example_gen_re_encodes_prepared_tfds_sets(tfds_data_dir, tmp_path):
  config = tfds_sets.config(tfds_data_dir)
  artifact = _run_example_gen(config, str(tmp_path))
  counts = {k[len('num_examples/'):]: v.int_value
            for k, v in artifact.custom_properties.items() if k.startswith('num_examples/')}
  c = tfds_sets.COUNTS
  assert counts == {
      'image_a_train': 49, 'image_a_eval': c['cifar10']['test'], 'image_a_validation': 1,
      'audio_a_train': c['audioset']['train'], 'audio_a_eval': c['audioset']['test'],
      'audio_b_train': c['speech_commands']['train'], 'audio_b_eval': 4,
      'audio_b_validation': c['speech_commands']['validation'],
      'video_a_train': c['ucf101']['train'], 'video_a_eval': c['ucf101']['test']}
  for task in config.tasks.keys():
    source = sources.for_task(config, task)
    data = examples_lib.specs_lib.resolve(config).data[task]
    for purpose in examples_lib.task_purposes(config, task):
      split = data.split(purpose)
      got = _records(artifact.uri, examples_lib.artifact_split(task, purpose), source.modality)
      assert len(got) == counts[examples_lib.artifact_split(task, purpose)]
      for record, (fallback_id, raw) in zip(got, source.epoch_records(split)):
        want = {k: v.numpy() for k, v in source.parse(raw).items()}
        assert record['id'] == (want['id'] or fallback_id.numpy())
        np.testing.assert_array_equal(record['labels'], want['labels'])
        if source.modality == 'audio':
          assert record['sample_rate'] == want['sample_rate']
          np.testing.assert_array_equal(record['waveform'], want['waveform'])  # int16 exact
        else:
          key = 'image' if source.modality == 'image' else 'frames'
          np.testing.assert_array_equal(record[key], want[key])  # the stored bytes
  assert _records(artifact.uri, 'video_a_eval', 'video')[0]['id'] == b'ucf101/test#0'
