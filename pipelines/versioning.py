"""The pushed version is THE version: chosen once, by the evaluator, and written everywhere.

TFX's Pusher names the pushed directory by the Unix time of the push, which nothing before it
knows, so the model's own files (polyvit_export.json), the evaluator's report and the TFLite
manifest said something else. Here:
  PolyViTEvaluator  picks the candidate's version (`candidate_version`): the served version
                    when the candidate is the served model itself (same fingerprint), else
                    1 + the highest version under the serving directory (polyvit_tf/versions.py,
                    the rule `python -m polyvit_tf.export` follows too). It records it in
                    metrics.json, the blessing's reasons and the blessing's custom property
                    `version`.
  Pusher            (this module's subclass of TFX's Pusher: same component, spec, inputs and
                    PushedModel output, its own executor) pushes to exactly
                    `<serving_dir>/<version>/` and writes the version into the pushed copy's
                    polyvit_export.json (saved_model.pb copied last, as TFX's Pusher does). It
                    never overwrites: a directory of that name pushed since the evaluation
                    fails the push, naming it (the evaluation compared against a model that
                    is no longer the served one).
  TFLiteExport      records the same version in the manifest (`source_version`, also
                    embedded in the .tflite) and on its artifact.
Why the evaluator and not the Trainer: the Trainer's output is taken from the cache, and a
cached model can be pushed again after another one was (roll back / forward), so its version
must be picked at push time, against what is served then; the evaluator runs on every run
(never cached) and already reads the serving directory for its baseline.

The model's identity does not change with its version: the fingerprint
(pipelines/served_model.py) hashes polyvit_export.json without its version, so the same model
pushed under another version is still recognised as the served one.
"""

from __future__ import annotations

import os

import tensorflow as tf
from absl import logging
from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from pipelines import served_model
from polyvit_tf import versions

VERSION_KEY = 'version'  # the ModelBlessing's custom property
SAVED_MODEL_FILE = 'saved_model.pb'


class VersionError(RuntimeError):
  """The version cannot be pushed (missing from the blessing, or taken)."""


def candidate_version(serving_dir: str, served: served_model.ServedModel | None,
                      candidate_fingerprint: str) -> int:
  """The version the candidate is served under: the served one when it is the served model,
  else the next version under `serving_dir`."""
  if served is not None and served.fingerprint == candidate_fingerprint:
    return served.version
  return versions.next_version(serving_dir)


def describe(version: int, serving_dir: str, new_model: bool) -> str:
  """The blessing's reason line about the version."""
  if not new_model:
    return f'version {version}: the candidate is the model served from {serving_dir}'
  return (f'version {version}: the next version under {serving_dir}, where Pusher pushes '
          'the candidate when it is blessed')


def blessed_version(blessing: types.Artifact) -> int:
  """The version the evaluator picked, from its ModelBlessing."""
  if not blessing.has_custom_property(VERSION_KEY):
    raise VersionError(f'{blessing.uri}: the ModelBlessing has no `{VERSION_KEY}` property; '
                       'the version is picked by PolyViTEvaluator (pipelines/versioning.py).')
  return versions.check(int(blessing.get_int_custom_property(VERSION_KEY)))


def copy_with_version(src: str, dst: str, version: int) -> None:
  """Copies the SavedModel `src` to `dst` with `version` written into polyvit_export.json;
  saved_model.pb last (a directory without it is an unfinished push)."""
  last = []
  for directory, _, names in tf.io.gfile.walk(src):
    target = os.path.join(dst, os.path.relpath(directory, src))
    tf.io.gfile.makedirs(target)
    for name in names:
      path = os.path.join(directory, name)
      rel = os.path.relpath(path, src)
      if rel == SAVED_MODEL_FILE:
        last.append((path, os.path.join(dst, rel)))
      elif rel == versions.METADATA_PATH:
        with tf.io.gfile.GFile(path, 'rb') as f:
          data = versions.stamped(f.read(), version)
        with tf.io.gfile.GFile(os.path.join(dst, rel), 'wb') as f:
          f.write(data)
      else:
        tf.io.gfile.copy(path, os.path.join(target, name), overwrite=True)
  if not last:
    raise FileNotFoundError(f'{src}: no {SAVED_MODEL_FILE}')
  for path, target in last:
    tf.io.gfile.copy(path, target, overwrite=True)


def push(model_dir: str, serving_dir: str, version: int) -> str:
  """Pushes `model_dir` to `<serving_dir>/<version>/`; returns that directory. Pushing the same
  model again (a retried task) is a no-op; any other existing directory is refused."""
  destination = os.path.join(serving_dir, str(versions.check(version)))
  if tf.io.gfile.exists(destination):
    if (tf.io.gfile.exists(os.path.join(destination, SAVED_MODEL_FILE)) and
        served_model.fingerprint(destination) == served_model.fingerprint(model_dir)):
      logging.info('Pusher: %s already holds this model (a retried push)', destination)
      return destination
    raise VersionError(
        f'{destination} exists: version {version}, picked by the evaluator as the next version '
        f'under {serving_dir}, was pushed by someone else since (or an unfinished push left '
        'it); nothing was pushed. Re-run the pipeline: it evaluates against what is served now.')
  copy_with_version(model_dir, destination, version)
  logging.info('Pusher: version %d pushed to %s', version, destination)
  return destination


def filesystem_base(destination: pusher_pb2.PushDestination) -> str:
  """The serving directory of a filesystem PushDestination whose versioning is left to us."""
  if destination.WhichOneof('destination') != 'filesystem':
    raise ValueError(f'Pusher: push_destination must be a filesystem, got {destination}.')
  fs = destination.filesystem
  if fs.versioning != pusher_pb2.Versioning.AUTO:
    raise ValueError('Pusher: the version is the evaluator\'s (pipelines/versioning.py); leave '
                     f'PushDestination.Filesystem.versioning at AUTO, got {fs.versioning}.')
  return fs.base_directory


class PushExecutor(pusher_executor.Executor):
  """TFX's Pusher executor, pushing to the version the evaluator picked (module doc)."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    pushed = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(pushed)
      return
    blessings = input_dict.get(standard_component_specs.MODEL_BLESSING_KEY)
    if not blessings:
      raise VersionError('Pusher needs the PolyViTEvaluator blessing: it carries the version.')
    version = blessed_version(artifact_utils.get_single_instance(blessings))
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
                              destination)
    model_dir = self.GetModelPath(input_dict)
    path = push(model_dir, filesystem_base(destination), version)
    copy_with_version(model_dir, pushed.uri, version)  # the archive copy TFX's Pusher keeps
    self._MarkPushed(pushed, pushed_destination=path, pushed_version=str(version))


class Pusher(tfx.components.Pusher):
  """TFX's Pusher with PushExecutor (the version the evaluator picked)."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(PushExecutor)
