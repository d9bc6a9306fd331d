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

from polyvit_tf import modalities
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import features
from polyvit_tf.data import sources

PURPOSES = tuple(specs_lib.SPLIT_FIELDS)  # 'train', 'eval', 'validation'


def artifact_split(task: str, purpose: str) -> str:
  """The Examples artifact's split of a task's 'train' | 'eval' | 'validation' data."""
  return f'{task}_{purpose}'


def task_purposes(config: ml_collections.ConfigDict, task: str) -> list[str]:
  """'train', 'eval' and, when configured, 'validation'."""
  splits = specs_lib.resolve(config).data[task].splits
  return [p for p in PURPOSES if p != 'validation' or splits['validation']]


def all_splits(config: ml_collections.ConfigDict) -> list[str]:
  return [artifact_split(t, p) for t in specs_lib.resolve(config).task_names
          for p in task_purposes(config, t)]


def _serialize(modality: str, ex: dict, fallback_id: str) -> bytes:
  """A canonical example (features.canonical_structure) as our tf.Example bytes; one without
  an id of its own keeps the source's name for it (a TFDS set's `<name>/<split>#<i>`)."""
  payload = {k: v.numpy() for k, v in ex.items() if k not in ('id', 'labels')}
  example = features.example(ex['id'].numpy().decode() or fallback_id,
                             ex['labels'].numpy().tolist(),
                             modalities.get(modality).payload_features(payload))
  return example.SerializeToString()


def write_splits(config: ml_collections.ConfigDict, uri: str,
                 num_shards: int = 1) -> dict[str, int]:
  """Writes every task's splits under `uri`; returns the number of examples per split.

  TFRecord sources (and the demo data) are copied record by record; other sources (TFDS) are
  re-encoded in our tf.Example format. Order is the source's deterministic file order.
  """
  counts = {}
  spec = specs_lib.resolve(config)
  for task in spec.task_names:
    data = spec.data[task]
    source = sources.open_source(data, spec.task(task).modality)
    for purpose in task_purposes(config, task):
      split = data.split(purpose)
      source.check(split)
      directory = os.path.join(uri, f'Split-{artifact_split(task, purpose)}')
      tf.io.gfile.makedirs(directory)
      writers = [tf.io.TFRecordWriter(
          os.path.join(directory, f'data_tfrecord-{i:05d}-of-{num_shards:05d}.gz'),
          options='GZIP') for i in range(num_shards)]
      n = 0
      copy_raw = isinstance(source, sources.TFRecordSource)
      for fallback_id, raw in source.epoch_records(split):
        payload = raw.numpy() if copy_raw else _serialize(
            source.modality, source.parse(raw), fallback_id.numpy().decode())
        writers[n % num_shards].write(payload)
        n += 1
      for w in writers:
        w.close()
      counts[artifact_split(task, purpose)] = n
  return counts


# Task fields that only training reads; the data config leaves them out so that changing
# them does not invalidate the cached Examples artifact.
_TRAINING_ONLY = ('learning_rate', 'train_steps', 'warmup_steps', 'batch_size', 'mixup_alpha',
                  'label_smoothing', 'stochastic_depth')


def data_only(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The part of `config` that decides the examples: tasks' label spaces and data sources."""
  tasks = {}
  for task in specs_lib.resolve(config).task_names:
    fields = config.tasks[task].to_dict()
    for key in _TRAINING_ONLY:
      fields.pop(key, None)
    tasks[task] = fields
  return ml_collections.ConfigDict({'tasks': tasks, 'modalities': config.modalities.to_dict()})


def config_for_examples(config: ml_collections.ConfigDict,
                        uri: str) -> ml_collections.ConfigDict:
  """`config` with every task reading its splits from the Examples artifact at `uri`."""
  out = copy.deepcopy(config)
  for task in specs_lib.resolve(out).task_names:
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
