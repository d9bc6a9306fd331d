"""Where a task's examples come from: `tasks.<t>.data.source`.

  tfrecord:<dir>              TFRecords of polyvit_tf's tf.Example format (features.py):
                              `<dir>/<split>-*.tfrecord*` (or `<dir>/<split>/*.tfrecord*`)
  tfrecord:<glob with {split}> e.g. `tfrecord:/data/k400/{split}-*.tfrecord.gz`
  tfds:<name>[:<version>]     a prepared TFDS data set (`data.data_dir` or the TFDS default
                              directory); splits may be sliced (`train[:98%]`)
  demo:<name>                 a built-in demo data set (polyvit_tf.data.demo), built on first
                              use into `<demo dir>/<name>/` as TFRecords

A source gives, for a split, the examples' raw records in a deterministic order (the order
of an epoch may depend on an epoch seed: TFRecord files are reshuffled per epoch) and a
graph function that maps a raw record to the modality's canonical dict (features.py).
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import errors
from polyvit_tf.data import features
from polyvit_tf.data import records as records_lib

_plain = tf.autograph.experimental.do_not_convert


class Source:
  """Raw records of one task's data set and how to parse them.

  `epoch_records(split, file_seed)` yields `(fallback_id, raw)` pairs: `fallback_id` names
  the record when its own `id` is empty or unreadable (file:offset, or tfds name/split#i).
  """

  description: str
  modality: str

  def check(self, split: str) -> None:
    raise NotImplementedError

  def epoch_records(self, split: str, file_seed: tf.Tensor | None = None) -> tf.data.Dataset:
    raise NotImplementedError

  def num_records(self, split: str) -> int:
    raise NotImplementedError

  def parse(self, raw: Any) -> dict:
    raise NotImplementedError

  def example_id(self, raw: Any) -> tf.Tensor:
    raise NotImplementedError


class TFRecordSource(Source):
  """polyvit_tf tf.Example TFRecords at a directory or `{split}` glob."""

  def __init__(self, location: str, modality: str, description: str, task: str):
    self.location = location
    self.modality = modality
    self.description = description
    self.task = task
    self._counts: dict[str, int] = {}

  def files(self, split: str) -> list[str]:
    return records_lib.split_files(self.location, split)

  def check(self, split: str) -> None:
    if not self.files(split):
      raise errors.DataSourceError(
          f'task {self.task}: data.source {self.description!r} has no TFRecord files for '
          f'split {split!r} (looked for {self._pattern(split)}).')

  def _pattern(self, split: str) -> str:
    if '{split}' in self.location:
      return self.location.replace('{split}', split)
    return os.path.join(self.location, f'{split}-*.tfrecord*')

  def epoch_records(self, split: str, file_seed: tf.Tensor | None = None) -> tf.data.Dataset:
    files = self.files(split)
    compression = records_lib.compression(files)
    names = tf.constant(files)
    if file_seed is not None and len(files) > 1:
      order = tf.argsort(tf.random.stateless_uniform([len(files)], file_seed))
      names = tf.gather(names, order)

    def read(path):
      base = tf.strings.regex_replace(path, r'^.*/', '')
      return tf.data.TFRecordDataset(path, compression_type=compression).enumerate().map(
          _plain(lambda i, r: (tf.strings.join([base, ':', tf.strings.as_string(i)]), r)))

    return tf.data.Dataset.from_tensor_slices(names).interleave(
        _plain(read), cycle_length=min(len(files), 16), block_length=1)

  def num_records(self, split: str) -> int:
    if split not in self._counts:
      info = None if '{split}' in self.location else records_lib.read_info(self.location)
      n = (info or {}).get('splits', {}).get(split, {}).get('num_examples')
      self._counts[split] = int(n) if n is not None else records_lib.count_records(
          self.files(split))
    return self._counts[split]

  def parse(self, raw: tf.Tensor) -> dict:
    return features.parse(raw, self.modality)

  def example_id(self, raw: tf.Tensor) -> tf.Tensor:
    spec = {features.ID: tf.io.FixedLenFeature([], tf.string, default_value='')}
    return tf.io.parse_single_example(raw, spec)[features.ID]


def demo_root(data_dir: str = '') -> str:
  """Directory of the demo data sets: `data_dir`, else $POLYVIT_DEMO_DIR, else
  ~/.cache/polyvit_tf/demo."""
  if data_dir:
    return os.path.expanduser(data_dir)
  return os.path.expanduser(os.environ.get('POLYVIT_DEMO_DIR', '~/.cache/polyvit_tf/demo'))


def open_source(data: specs_lib.DataSpec, modality: str) -> Source:
  """The Source of a task's resolved data spec; DataSourceError names the task and source."""
  task, source = data.task, data.source
  scheme, _, rest = source.partition(':')
  if not rest:
    raise errors.DataSourceError(
        f'task {task}: data.source {source!r} is not `tfrecord:<path>`, `tfds:<name>` or '
        f'`demo:<name>`.')
  if scheme == 'tfrecord':
    return TFRecordSource(os.path.expanduser(rest), modality, source, task)
  if scheme == 'demo':
    from polyvit_tf.data.demo import builder as demo_build  # pylint: disable=g-import-not-at-top
    directory = demo_build.ensure(rest, demo_root(data.data_dir), task=task)
    return TFRecordSource(directory, modality, source, task)
  if scheme == 'tfds':
    from polyvit_tf.data import tfds_source  # pylint: disable=g-import-not-at-top
    return tfds_source.TFDSSource(rest, modality, source, task, data_dir=data.data_dir or None,
                                  input_key=data.input_key, label_key=data.label_key)
  raise errors.DataSourceError(
      f'task {task}: data.source {source!r} has unknown scheme {scheme!r}; expected '
      f'tfrecord, tfds or demo.')

