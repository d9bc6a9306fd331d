"""Builds the demo data sets as TFRecords of polyvit_tf's tf.Example format.

    python -m polyvit_tf.data.demo [--out_dir=~/.cache/polyvit_tf/demo] \
        [--datasets=digits,tones] [--force]

Each data set goes to `<out_dir>/<name>/{train,validation,test}-00000-of-00001.tfrecord`
plus `dataset_info.json`. Generation is seeded and serialisation deterministic: two builds
give identical bytes (`fingerprint`). A `demo:<name>` data source calls `ensure`, which
builds a missing (or outdated) data set on first use; concurrent builders are safe (each
writes a temporary directory and renames it into place).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from typing import Callable, Sequence

from absl import logging

from polyvit_tf.data import errors
from polyvit_tf.data import records

# Bump when a generator changes, so cached copies are rebuilt.
VERSION = 1


@dataclasses.dataclass(frozen=True)
class DemoSet:
  modality: str
  class_names: tuple[str, ...]
  make: Callable[[], dict]  # -> {split: [tf.train.Example]}


def _digits(name):
  def make():
    from polyvit_tf.data.demo import digits  # pylint: disable=g-import-not-at-top
    return digits.examples(name)
  return make


def _tones():
  from polyvit_tf.data.demo import tones  # pylint: disable=g-import-not-at-top
  return tones.examples()


def _motion():
  from polyvit_tf.data.demo import motion  # pylint: disable=g-import-not-at-top
  return motion.examples()


DATASETS = {
    'digits': DemoSet('image', tuple(str(d) for d in range(10)), _digits('digits')),
    'digit_groups': DemoSet('image', ('0_3_6_9', '1_4_7', '2_5_8'), _digits('digit_groups')),
    'tones': DemoSet('audio', ('rising', 'falling', 'slow_am', 'fast_am', 'trill',
                               'harmonic'), _tones),
    'motion': DemoSet('video', ('right', 'left', 'down', 'up'), _motion),
}


def _is_current(directory: str) -> bool:
  info = records.read_info(directory) if os.path.isdir(directory) else None
  return bool(info) and info.get('demo_version') == VERSION


def build(name: str, root: str, *, force: bool = False) -> str:
  """Builds demo data set `name` into `<root>/<name>`; returns that directory."""
  if name not in DATASETS:
    raise KeyError(f'unknown demo data set {name!r}; available: {sorted(DATASETS)}')
  root = os.path.expanduser(root)
  final = os.path.join(root, name)
  if _is_current(final) and not force:
    return final
  demo = DATASETS[name]
  os.makedirs(root, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f'.{name}-', dir=root)
  os.chmod(tmp, 0o755)  # mkdtemp makes it private; the data set is for everyone
  try:
    splits = demo.make()
    for split, examples in splits.items():
      records.write_split(tmp, split, examples)
    records.write_info(tmp, modality=demo.modality, class_names=demo.class_names,
                       split_counts={s: len(e) for s, e in splits.items()},
                       extra={'demo_version': VERSION, 'name': name})
    if os.path.isdir(final):
      if _is_current(final) and not force:
        return final  # another process finished first
      shutil.rmtree(final, ignore_errors=True)
    try:
      os.replace(tmp, final)
    except OSError:
      if not _is_current(final):
        raise
    logging.info('built demo data set %s in %s', name, final)
    return final
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def ensure(name: str, root: str, task: str = '') -> str:
  """The directory of demo data set `name` under `root`, built first if needed."""
  if name not in DATASETS:
    raise errors.DataSourceError(
        f'task {task or "?"}: data.source demo:{name} is not a demo data set; available: '
        f'{sorted(DATASETS)}.')
  final = os.path.join(os.path.expanduser(root), name)
  return final if _is_current(final) else build(name, root)


def build_all(root: str, names: Sequence[str] = (), *, force: bool = False) -> dict[str, str]:
  """Builds the named (default: all) demo data sets; {name: directory}."""
  return {n: build(n, root, force=force) for n in (names or sorted(DATASETS))}


def fingerprint(directory: str) -> str:
  """SHA-256 over the names and bytes of every file under `directory`."""
  digest = hashlib.sha256()
  for base, dirs, files in sorted(os.walk(directory)):
    dirs.sort()
    for f in sorted(files):
      path = os.path.join(base, f)
      digest.update(os.path.relpath(path, directory).encode())
      with open(path, 'rb') as fh:
        digest.update(fh.read())
  return digest.hexdigest()
