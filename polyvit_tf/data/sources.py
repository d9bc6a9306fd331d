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

A TFRecord file that cannot be read to its end (truncated, a corrupt record, bad GZIP data)
ends where the reader stopped, followed by one SHARD_ERROR record named `<file> at byte <N>
(record <i>)`: the pipelines count it as a bad example (errors.CORRUPT_SHARD) naming task,
file and offset, instead of the whole run failing with "truncated record at N". A complete
read is recognised by its byte count: the file's size, or for GZIP the uncompressed size the
gzip trailer records (mod 2^32).
"""

from __future__ import annotations

import os
import struct
from typing import Any

import ml_collections
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


# The raw record that stands for the unreadable rest of a TFRecord file: not a parsable
# tf.Example (field number 0), so it decodes as bad; pipeline.py gives it CORRUPT_SHARD.
SHARD_ERROR = b'\x00polyvit_tf: unreadable rest of a TFRecord file'
_GZIP_MIN_BYTES = 18  # header + trailer of an empty gzip member


def complete_read_bytes(path: str, compression: str) -> int:
  """The byte count of a complete read of `path`: its size, or for GZIP the trailer's
  ISIZE (uncompressed bytes mod 2^32); -1 when it cannot be known."""
  size = int(tf.io.gfile.stat(path).length)
  if compression != 'GZIP':
    return size
  if size < _GZIP_MIN_BYTES:
    return -1 if size else 0
  with tf.io.gfile.GFile(path, 'rb') as f:
    f.seek(size - 4)
    return struct.unpack('<I', f.read(4))[0]


class TFRecordSource(Source):
  """polyvit_tf tf.Example TFRecords at a directory or `{split}` glob."""

  def __init__(self, location: str, modality: str, description: str, task: str):
    self.location = location
    self.modality = modality
    self.description = description
    self.task = task
    self._counts: dict[str, int] = {}
    self._ends: dict[str, list[int]] = {}

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
    if split not in self._ends:
      self._ends[split] = [complete_read_bytes(f, compression) for f in files]
    names, ends = tf.constant(files), tf.constant(self._ends[split], tf.int64)
    if file_seed is not None and len(files) > 1:
      order = tf.argsort(tf.random.stateless_uniform([len(files)], file_seed))
      names, ends = tf.gather(names, order), tf.gather(ends, order)
    gzip = compression == 'GZIP'

    def read(path, end):
      base = tf.strings.regex_replace(path, r'^.*/', '')
      # A read error ends this file's dataset (TF moves on to the next file), then the
      # marker closes it; the scan counts records and bytes (TFRecord framing: 16 + length).
      marked = tf.data.TFRecordDataset(path, compression_type=compression).ignore_errors().map(
          _plain(lambda r: (r, False))).concatenate(
              tf.data.Dataset.from_tensors((tf.constant(b''), True)))

      def count(state, element):
        index, offset = state
        raw, last = element
        size = tf.cast(tf.strings.length(raw), tf.int64) + 16
        return (index + 1, offset + size), (index, offset, raw, last)

      def keep(index, offset, raw, last):
        del index, raw
        reached = offset % (1 << 32) if gzip else offset
        return tf.logical_not(last) | ((end >= 0) & tf.not_equal(reached, end))

      def name(index, offset, raw, last):
        where = tf.strings.join([path, ' at ', 'uncompressed ' if gzip else '', 'byte ',
                                 tf.strings.as_string(offset), ' (record ',
                                 tf.strings.as_string(index), ')'])
        fallback = tf.strings.join([base, ':', tf.strings.as_string(index)])
        return tf.where(last, where, fallback), tf.where(last, SHARD_ERROR, raw)

      start = (tf.constant(0, tf.int64), tf.constant(0, tf.int64))
      return marked.scan(start, _plain(count)).filter(_plain(keep)).map(_plain(name))

    return tf.data.Dataset.from_tensor_slices((names, ends)).interleave(
        _plain(read), cycle_length=min(len(files), 16), block_length=1)

  def num_records(self, split: str) -> int:
    """Records of an epoch (a cut file's SHARD_ERROR included): from dataset_info.json when
    it records the split's bytes and they are unchanged, else one counting pass."""
    if split not in self._counts:
      info = None if '{split}' in self.location else records_lib.read_info(self.location)
      entry = (info or {}).get('splits', {}).get(split, {})
      n = entry.get('num_examples')
      recorded = entry.get('num_bytes')
      if recorded is not None and recorded != records_lib.split_bytes(self.files(split)):
        n = None  # a file changed since the count (e.g. truncated): count again
      if n is None:
        n = int(self.epoch_records(split).reduce(tf.constant(0, tf.int64),
                                                 lambda c, _: c + 1).numpy())
      self._counts[split] = int(n)
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


def for_task(config: ml_collections.ConfigDict, task: str) -> Source:
  """The Source of `task` in `config` (its resolved data spec, polyvit_tf.configs.specs)."""
  spec = specs_lib.resolve(config)
  return open_source(spec.data[task], spec.task(task).modality)
