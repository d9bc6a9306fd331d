"""One version number per exported model: its TF Serving version directory's name, recorded in
the model's `assets.extra/polyvit_export.json` and reported by everything that describes it.

The rule for a new version, wherever one is made: 1 + the highest numeric version directory
under the base directory (complete or not; 1 when there is none).
  python -m polyvit_tf.export   --out=<base>: <base>/<next>/ unless --version=N is given
  the TFX pipeline              the evaluator picks the candidate's version under the serving
                                directory (the served version when the candidate is the
                                served model); Pusher pushes it to exactly that directory and
                                writes it into the pushed copy (pipelines/versioning.py)
A version directory is what TF Serving serves, so its name is THE version. A copy renamed by
hand (or pushed by a TFX Pusher before issue 17, named by a Unix timestamp while the file says
1) disagrees with its file: the directory wins (as in TF Serving), with a warning.

The model's identity (pipelines/served_model.py) must not change when it is pushed under a new
version: `unversioned` is what the fingerprint hashes in place of the metadata file.

No Keras and no model code here (the local server imports it): TensorFlow's gfile only, so
base directories may be on any TF filesystem (gs://...).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging

ASSETS_EXTRA = 'assets.extra'
METADATA_FILE = 'polyvit_export.json'
METADATA_PATH = os.path.join(ASSETS_EXTRA, METADATA_FILE)  # relative to a version directory
KEY = 'version'
# TF Serving's versions are int64; a longer name cannot be one.
MAX_DIGITS = 18


def parse(name: str) -> int | None:
  """The version a directory name stands for (None: not a version directory; a name with
  leading zeros is none either, so that every version has one directory name)."""
  name = name.rstrip('/')
  if name.isascii() and name.isdigit() and len(name) <= MAX_DIGITS and name == str(int(name)):
    return int(name)
  return None


def existing(base_dir: str) -> list[int]:
  """The numeric version directories under `base_dir`, highest first (complete or not)."""
  if not base_dir or not tf.io.gfile.isdir(base_dir):
    return []
  found = (parse(n) for n in tf.io.gfile.listdir(base_dir))
  return sorted((v for v in found if v is not None), reverse=True)


def next_version(base_dir: str) -> int:
  """1 + the highest numeric version directory under `base_dir` (1 when there is none)."""
  return max(existing(base_dir), default=0) + 1


def check(version) -> int:
  """`version` as a TF Serving version (a positive int64), else ValueError."""
  if isinstance(version, bool) or not isinstance(version, int) or not (
      0 < version < 10**MAX_DIGITS):
    raise ValueError(f'a model version must be a positive integer of at most {MAX_DIGITS} '
                     f'digits, got {version!r}.')
  return version


def recorded(version_dir: str) -> int | None:
  """The version polyvit_export.json of `version_dir` records (None: no such file)."""
  path = os.path.join(version_dir, METADATA_PATH)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f).get(KEY)


def version_of(version_dir: str) -> int:
  """The version of the model in `version_dir`: its name when numeric (what TF Serving
  serves; a recorded version that disagrees is logged), else the recorded one, else 1."""
  from_name = parse(os.path.basename(os.path.normpath(version_dir)))
  from_file = recorded(version_dir)
  if from_name is not None:
    if from_file is not None and from_file != from_name:
      logging.warning('%s: %s records version %s but the directory is version %d; the '
                      'directory name is what TF Serving serves, so %d it is.', version_dir,
                      METADATA_PATH, from_file, from_name, from_name)
    return from_name
  return check(from_file) if from_file is not None else 1


def stamped(metadata: bytes, version: int) -> bytes:
  """polyvit_export.json (bytes) with its version set to `version`."""
  meta = json.loads(metadata)
  meta[KEY] = check(version)
  return json.dumps(meta, indent=2).encode('utf-8')


def unversioned(metadata: bytes) -> bytes:
  """polyvit_export.json (bytes) without its version, canonical: what identifies the model
  (bytes that are no JSON object are returned as they are)."""
  try:
    meta = json.loads(metadata)
  except ValueError:
    return metadata
  if not isinstance(meta, dict):
    return metadata
  meta.pop(KEY, None)
  return json.dumps(meta, sort_keys=True, separators=(',', ':')).encode('utf-8')


def latest_version_dir(base_dir: str) -> str:
  """`base_dir` itself when it is a SavedModel, else its highest complete version directory."""
  if tf.io.gfile.exists(os.path.join(base_dir, 'saved_model.pb')):
    return base_dir
  for version in existing(base_dir):
    path = os.path.join(base_dir, str(version))
    if tf.io.gfile.exists(os.path.join(path, 'saved_model.pb')):
      return path
  raise FileNotFoundError(f'{base_dir}: no SavedModel and no complete numeric version '
                          'directory.')
