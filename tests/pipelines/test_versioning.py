"""The pushed version (pipelines/versioning.py): TFX's Pusher executor, subclassed, pushes to the
version in the evaluator's blessing, writes it into the pushed copy, never overwrites; the
fingerprint (pipelines/served_model.py) ignores the version, so a model is the same model
under any version. In process, on small SavedModel-shaped directories (the full pipeline runs
in test_pipeline_local.py and test_rehearse_kubeflow.py)."""

from __future__ import annotations

import json
import os

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import path_utils
from tfx.utils import proto_utils

from pipelines import served_model
from pipelines import versioning
from polyvit_tf import versions


def _candidate(model_uri: str, weights: bytes = b'\x01\x02') -> str:
  """A Trainer-shaped model artifact directory (Format-Serving/...) recording version 1."""
  path = path_utils.serving_model_path(model_uri)
  os.makedirs(os.path.join(path, 'variables'))
  os.makedirs(os.path.join(path, versions.ASSETS_EXTRA))
  with open(os.path.join(path, 'saved_model.pb'), 'wb') as f:
    f.write(b'graph')
  with open(os.path.join(path, 'variables', 'variables.data-00000-of-00001'), 'wb') as f:
    f.write(weights)
  with open(os.path.join(path, versions.METADATA_PATH), 'w') as f:
    json.dump({'format': 'polyvit_tf.export/1', 'version': 1, 'tasks': {'a': {}}}, f)
  return path


def _push(tmp_path, name: str, *, version: int | None = 5, blessed: int = 1,
          weights: bytes = b'\x01\x02',
          versioning_mode=pusher_pb2.Versioning.AUTO):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / name / 'model')
  if not os.path.exists(model.uri):
    _candidate(model.uri, weights)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / name / 'blessing')
  blessing.set_int_custom_property('blessed', blessed)
  if version is not None:
    blessing.set_int_custom_property(versioning.VERSION_KEY, version)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / name / 'pushed')
  os.makedirs(pushed.uri, exist_ok=True)
  destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(
      base_directory=str(tmp_path / 'serving'), versioning=versioning_mode))
  versioning.PushExecutor().Do(
      {'model': [model], 'model_blessing': [blessing]}, {'pushed_model': [pushed]},
      {'push_destination': proto_utils.proto_to_json(destination), 'custom_config': 'null'})
  return path_utils.serving_model_path(model.uri), pushed


def _recorded(path: str) -> int:
  with open(os.path.join(path, versions.METADATA_PATH)) as f:
    return json.load(f)['version']


def test_push_goes_to_the_blessed_version_and_writes_it_into_the_copy(tmp_path):
  candidate, pushed = _push(tmp_path, 'a', version=5)
  served = str(tmp_path / 'serving' / '5')
  assert os.listdir(tmp_path / 'serving') == ['5']
  assert _recorded(served) == 5 and _recorded(pushed.uri) == 5 and _recorded(candidate) == 1
  with open(os.path.join(served, 'saved_model.pb'), 'rb') as f:
    assert f.read() == b'graph'
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_string_custom_property('pushed_version') == '5'
  assert pushed.get_string_custom_property('pushed_destination') == served
  # The same model, under another version: the same fingerprint, so it is not pushed twice.
  assert served_model.fingerprint(served) == served_model.fingerprint(candidate)
  assert served_model.latest(str(tmp_path / 'serving')).fingerprint == (
      served_model.fingerprint(candidate))


def test_the_fingerprint_still_tells_different_models_apart(tmp_path):
  one = _candidate(str(tmp_path / 'one'))
  other = _candidate(str(tmp_path / 'other'), weights=b'\x01\x03')
  assert served_model.fingerprint(one) != served_model.fingerprint(other)
  with open(os.path.join(other, versions.METADATA_PATH), 'w') as f:
    json.dump({'format': 'polyvit_tf.export/1', 'version': 1, 'tasks': {'b': {}}}, f)
  assert served_model.fingerprint(one) != served_model.fingerprint(other)


def test_a_taken_version_is_never_overwritten_and_a_retry_is_a_no_op(tmp_path):
  _push(tmp_path, 'a', version=5)
  _push(tmp_path, 'a', version=5)  # a retried task: the same model is already there
  with pytest.raises(versioning.VersionError, match=r'serving/5 exists: version 5'):
    _push(tmp_path, 'b', version=5, weights=b'\x09')
  assert os.listdir(tmp_path / 'serving') == ['5']
  os.makedirs(tmp_path / 'serving' / '6')  # an unfinished push of someone else
  with pytest.raises(versioning.VersionError, match='unfinished push'):
    _push(tmp_path, 'b', version=6, weights=b'\x09')


def test_not_blessed_pushes_nothing_and_the_version_must_come_from_the_blessing(tmp_path):
  _, pushed = _push(tmp_path, 'a', blessed=0)
  assert pushed.get_int_custom_property('pushed') == 0
  assert not os.path.exists(tmp_path / 'serving')
  with pytest.raises(versioning.VersionError, match='no `version` property'):
    _push(tmp_path, 'b', version=None)
  with pytest.raises(ValueError, match='leave PushDestination.Filesystem.versioning at AUTO'):
    _push(tmp_path, 'c', versioning_mode=pusher_pb2.Versioning.UNIX_TIMESTAMP)
  assert not os.path.exists(tmp_path / 'serving')


def test_the_candidate_version_is_the_served_one_or_the_next(tmp_path):
  serving = str(tmp_path / 'serving')
  assert versioning.candidate_version(serving, None, 'f') == 1
  os.makedirs(os.path.join(serving, '8'))
  served = served_model.ServedModel(7, os.path.join(serving, '7'), 'f')
  assert versioning.candidate_version(serving, served, 'f') == 7  # it is the served model
  assert versioning.candidate_version(serving, served, 'g') == 9  # above the unfinished 8
