"""TFRecord files on disk: naming, writing, listing by split, counting.

A data directory holds `<split>-<shard>-of-<num_shards>.tfrecord` files (optionally `.gz`,
GZIP-compressed) and `dataset_info.json` ({"modality", "class_names", "splits": {split:
{"num_examples", "num_bytes"}}}), written by the demo builders and the converter (the bytes
tell a reader whether the files are still the ones counted). A `tfrecord:` source
is either such a directory or a glob containing `{split}`, e.g.
`tfrecord:/data/k400/{split}-*.tfrecord`.
"""

from __future__ import annotations

import glob as glob_lib
import json
import os
from typing import Iterable, Sequence

import tensorflow as tf

INFO = 'dataset_info.json'


def shard_path(directory: str, split: str, shard: int, num_shards: int) -> str:
  return os.path.join(directory, f'{split}-{shard:05d}-of-{num_shards:05d}.tfrecord')


def write_split(directory: str, split: str, examples: Sequence[tf.train.Example],
                num_shards: int = 1) -> list[str]:
  """Writes `examples` round-robin into `num_shards` files; returns their paths.

  Serialisation is deterministic (map keys sorted), so the same examples give the same bytes.
  """
  tf.io.gfile.makedirs(directory)
  paths = [shard_path(directory, split, s, num_shards) for s in range(num_shards)]
  writers = [tf.io.TFRecordWriter(p) for p in paths]
  try:
    for i, example in enumerate(examples):
      writers[i % num_shards].write(example.SerializeToString(deterministic=True))
  finally:
    for w in writers:
      w.close()
  return paths


def write_info(directory: str, *, modality: str, class_names: Sequence[str],
               split_counts: dict[str, int], extra: dict | None = None) -> None:
  """Writes (or merges splits into) `dataset_info.json`."""
  path = os.path.join(directory, INFO)
  info = read_info(directory) or {}
  info.update({'modality': modality, 'class_names': list(class_names)})
  splits = info.setdefault('splits', {})
  for split, n in split_counts.items():
    splits[split] = {'num_examples': int(n),
                     'num_bytes': split_bytes(split_files(directory, split))}
  if extra:
    info.update(extra)
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(json.dumps(info, indent=1, sort_keys=True) + '\n')


def read_info(directory: str) -> dict | None:
  path = os.path.join(directory, INFO)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _glob(pattern: str) -> list[str]:
  if '://' in pattern:
    return sorted(tf.io.gfile.glob(pattern))
  return sorted(glob_lib.glob(pattern))


def split_files(location: str, split: str) -> list[str]:
  """Sorted files of `split` at `location` (a directory, or a glob with `{split}`)."""
  if '{split}' in location:
    return _glob(location.replace('{split}', split))
  if tf.io.gfile.isdir(location):
    files = []
    for pattern in (f'{split}-*.tfrecord*', f'{split}.tfrecord*', f'{split}/*.tfrecord*'):
      files += _glob(os.path.join(location, pattern))
    return sorted(set(files))
  return []


def split_bytes(files: Sequence[str]) -> int:
  """Total size of `files` (a cheap check that a split's files are the ones counted)."""
  return sum(int(tf.io.gfile.stat(f).length) for f in files)


def compression(files: Iterable[str]) -> str:
  files = list(files)
  gz = [f.endswith('.gz') for f in files]
  if any(gz) and not all(gz):
    raise ValueError(f'mixed compressed and uncompressed files: {files[:4]}')
  return 'GZIP' if gz and gz[0] else ''


def count_records(files: Sequence[str]) -> int:
  """Number of records in `files` (reads them once; no parsing)."""
  ds = tf.data.TFRecordDataset(list(files), compression_type=compression(files))
  return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())
