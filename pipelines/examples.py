"""One Examples artifact for every task: its splits, and configs that read from it.

Split names are `<task>_train`, `<task>_eval` and, when the task has a validation split,
`<task>_validation`; files are GZIP TFRecords of polyvit_tf's tf.Example format
(polyvit_tf/data/features.py) under `<artifact uri>/Split-<split>/`, as TFX writes them.
"""

from __future__ import annotations

import copy
import os

import ml_collections
import tensorflow as tf

from polyvit_tf.data import features
from polyvit_tf.data import sources
from polyvit_tf.model import spec as spec_lib

PURPOSES = ('train', 'eval', 'validation')


def split_name(task: str, purpose: str) -> str:
  return f'{task}_{purpose}'


def task_purposes(config: ml_collections.ConfigDict, task: str) -> list[str]:
  """'train', 'eval' and, when configured, 'validation'."""
  data = config.tasks[task].data
  return ['train', 'eval'] + (['validation'] if data.get('validation_split') else [])


def all_splits(config: ml_collections.ConfigDict) -> list[str]:
  return [split_name(t, p) for t in spec_lib.task_names(config)
          for p in task_purposes(config, t)]


def _serialize(modality: str, ex: dict) -> bytes:
  """A canonical example (features.canonical_structure) as our tf.Example bytes."""
  example_id = ex['id'].numpy().decode()
  labels = ex['labels'].numpy().tolist()
  if modality == 'image':
    example = features.image_example(example_id, labels, ex['image'].numpy())
  elif modality == 'audio':
    example = features.audio_example(example_id, labels, waveform=ex['waveform'].numpy(),
                                     sample_rate=int(ex['sample_rate'].numpy()))
  else:
    example = features.video_example(example_id, labels, list(ex['frames'].numpy()),
                                     float(ex['frame_rate'].numpy()))
  return example.SerializeToString()


def write_splits(config: ml_collections.ConfigDict, uri: str,
                 num_shards: int = 1) -> dict[str, int]:
  """Writes every task's splits under `uri`; returns the number of examples per split.

  TFRecord sources (and the demo data) are copied record by record; other sources (TFDS) are
  re-encoded in our tf.Example format. Order is the source's deterministic file order.
  """
  counts = {}
  for task in spec_lib.task_names(config):
    source = sources.for_task(config, task)
    for purpose in task_purposes(config, task):
      split = sources.split_name(config, task, purpose)
      source.check(split)
      directory = os.path.join(uri, f'Split-{split_name(task, purpose)}')
      tf.io.gfile.makedirs(directory)
      writers = [tf.io.TFRecordWriter(
          os.path.join(directory, f'data_tfrecord-{i:05d}-of-{num_shards:05d}.gz'),
          options='GZIP') for i in range(num_shards)]
      n = 0
      copy_raw = isinstance(source, sources.TFRecordSource)
      for _, raw in source.epoch_records(split):
        payload = raw.numpy() if copy_raw else _serialize(source.modality, source.parse(raw))
        writers[n % num_shards].write(payload)
        n += 1
      for w in writers:
        w.close()
      counts[split_name(task, purpose)] = n
  return counts


# Task fields that only training reads; the data config leaves them out so that changing
# them does not invalidate the cached Examples artifact.
_TRAINING_ONLY = ('learning_rate', 'train_steps', 'warmup_steps', 'batch_size', 'mixup_alpha',
                  'label_smoothing', 'stochastic_depth')


def data_only(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The part of `config` that decides the examples: tasks' label spaces and data sources."""
  tasks = {}
  for task in spec_lib.task_names(config):
    fields = config.tasks[task].to_dict()
    for key in _TRAINING_ONLY:
      fields.pop(key, None)
    fields['stochastic_depth'] = 0.0  # validated by task_spec; irrelevant to the data
    tasks[task] = fields
  return ml_collections.ConfigDict({'tasks': tasks, 'modalities': config.modalities.to_dict()})


def config_for_examples(config: ml_collections.ConfigDict,
                        uri: str) -> ml_collections.ConfigDict:
  """`config` with every task reading its splits from the Examples artifact at `uri`."""
  out = copy.deepcopy(config)
  for task in spec_lib.task_names(out):
    data = out.tasks[task].data
    has_validation = bool(data.get('validation_split'))
    data.source = f'tfrecord:{uri}/Split-{task}_{{split}}/*'
    data.train_split, data.eval_split = 'train', 'eval'
    data.validation_split = 'validation' if has_validation else ''
  return out


def examples_uri_from_files(file_patterns: list[str]) -> str:
  """The artifact uri behind Trainer's `train_files` (`<uri>/Split-<split>/*`)."""
  uris = {os.path.dirname(os.path.dirname(p)) for p in file_patterns}
  if len(uris) != 1:
    raise ValueError(f'expected the splits of one Examples artifact, got {sorted(uris)}')
  return uris.pop()
