"""The blessing's baseline: the model the serving directory serves now, found from the directory.

Pusher pushes a blessed model to `<serving_dir>/<version>/` (the version the evaluator picked,
pipelines/versioning.py; saved_model.pb is copied last, so a version without it is an
unfinished push), and TF
Serving's default version policy serves the highest complete version. The evaluator compares
the candidate with exactly that model. It needs nothing but the serving directory: no
resolver node and no ML Metadata query, so it behaves the same under LocalDagRunner, the KFP v2
container entrypoint on open-source Kubeflow Pipelines and Vertex AI.

A model is identified by a fingerprint of its SavedModel files (relative paths and contents),
polyvit_export.json counted without its `version`: Pusher copies the files byte for byte but
writes the pushed version into that file, so the served copy of a model has the candidate's
fingerprint, under any version: "is the candidate already served?" needs no id, which differs
between
orchestrators (TFX's KFP entrypoint hands custom components a hash of KFP's artifact name as
the artifact's id).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import tensorflow as tf
from absl import logging

from polyvit_tf import versions

_CHUNK = 1 << 22


@dataclasses.dataclass(frozen=True)
class ServedModel:
  version: int
  path: str
  fingerprint: str


def fingerprint(saved_model_dir: str) -> str:
  """sha256 over the SavedModel's files: relative path, size and contents, in sorted order;
  polyvit_export.json without its version (versions.unversioned)."""
  digest = hashlib.sha256()
  files = []
  for directory, _, names in tf.io.gfile.walk(saved_model_dir):
    files += [os.path.join(directory, n) for n in names]
  if not files:
    raise FileNotFoundError(f'{saved_model_dir}: no files to fingerprint')
  for path in sorted(files):
    rel = os.path.relpath(path, saved_model_dir)
    if rel == versions.METADATA_PATH:
      with tf.io.gfile.GFile(path, 'rb') as f:
        data = versions.unversioned(f.read())
      digest.update(rel.encode() + b'\0' + str(len(data)).encode() + b'\0' + data)
      continue
    digest.update(rel.encode() + b'\0' + str(tf.io.gfile.stat(path).length).encode() + b'\0')
    with tf.io.gfile.GFile(path, 'rb') as f:
      while chunk := f.read(_CHUNK):
        digest.update(chunk)
  return digest.hexdigest()


def latest(serving_dir: str) -> ServedModel | None:
  """The highest complete version under `serving_dir` (None when nothing is served yet)."""
  for version in versions.existing(serving_dir):
    path = os.path.join(serving_dir, str(version))
    if tf.io.gfile.exists(os.path.join(path, 'saved_model.pb')):
      return ServedModel(version, path, fingerprint(path))
    logging.warning('served_model: %s has no saved_model.pb (an unfinished push); skipped', path)
  return None
