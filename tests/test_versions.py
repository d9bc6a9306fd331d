"""The one version rule (polyvit_tf/versions.py) and the local server's use of it."""

from __future__ import annotations

import json
import os

import pytest

from polyvit_tf import versions
from serving import service


def _model(path: str, version: int | None = 1, **meta) -> str:
  """A directory that looks like an exported version: saved_model.pb and the metadata file."""
  os.makedirs(os.path.join(path, versions.ASSETS_EXTRA), exist_ok=True)
  with open(os.path.join(path, 'saved_model.pb'), 'wb') as f:
    f.write(b'pb')
  if version is not None:
    with open(os.path.join(path, versions.METADATA_PATH), 'w') as f:
      json.dump({'format': 'polyvit_tf.export/1', 'version': version, **meta}, f, indent=2)
  return path


def test_parse_takes_tf_serving_version_names_only():
  assert versions.parse('12') == 12 and versions.parse('12/') == 12
  assert versions.parse('1796111016') == 1796111016
  for name in ('007', 'x', '.tmp-3', '-1', '1e3', '\u0663', '9' * 19, ''):
    assert versions.parse(name) is None, name


def test_next_version_is_one_more_than_the_highest_directory(tmp_path):
  assert versions.next_version(str(tmp_path / 'missing')) == 1
  assert versions.next_version(str(tmp_path)) == 1
  for name in ('1', '3', 'notes', '.tmp-9', '010'):
    os.makedirs(tmp_path / name)
  assert versions.existing(str(tmp_path)) == [3, 1]
  assert versions.next_version(str(tmp_path)) == 4
  os.makedirs(tmp_path / '1796111016')  # a timestamp push of TFX's own Pusher
  assert versions.next_version(str(tmp_path)) == 1796111017


def test_check_accepts_positive_int64_versions_only():
  assert versions.check(1) == 1
  for bad in (0, -2, True, 10**18, '3', 2.0, None):
    with pytest.raises(ValueError, match='positive integer'):
      versions.check(bad)


def test_latest_version_dir_skips_unfinished_pushes(tmp_path):
  _model(str(tmp_path / '2'), 2)
  os.makedirs(tmp_path / '5' / 'variables')  # no saved_model.pb: unfinished
  assert versions.latest_version_dir(str(tmp_path)) == str(tmp_path / '2')
  assert versions.latest_version_dir(str(tmp_path / '2')) == str(tmp_path / '2')
  with pytest.raises(FileNotFoundError, match='no complete numeric version'):
    versions.latest_version_dir(str(tmp_path / '5'))


def test_the_directory_name_is_the_version_and_the_file_the_fallback(tmp_path, caplog):
  assert versions.version_of(_model(str(tmp_path / '7'), 7)) == 7
  assert versions.version_of(_model(str(tmp_path / 'copy'), 7)) == 7
  assert versions.version_of(_model(str(tmp_path / 'bare'), None)) == 1
  # A pre-issue-17 push: named by TFX's timestamp, the file says 1. The name wins, loudly.
  assert versions.version_of(_model(str(tmp_path / '1796111016'), 1)) == 1796111016
  assert 'records version 1 but the directory is version 1796111016' in caplog.text


def test_stamped_sets_the_version_and_unversioned_ignores_only_it():
  original = json.dumps({'version': 1, 'tasks': {'a': {'num_classes': 3}}}).encode()
  seven, nine = versions.stamped(original, 7), versions.stamped(original, 9)
  assert json.loads(seven) == {'version': 7, 'tasks': {'a': {'num_classes': 3}}}
  assert versions.unversioned(seven) == versions.unversioned(nine) == versions.unversioned(
      original)
  other = json.dumps({'version': 1, 'tasks': {'a': {'num_classes': 4}}}).encode()
  assert versions.unversioned(other) != versions.unversioned(original)
  assert versions.unversioned(b'not json {') == b'not json {'
  assert versions.unversioned(b'[1, 2]') == b'[1, 2]'
  with pytest.raises(ValueError):
    versions.stamped(original, 0)


def test_the_local_server_reports_the_version_of_what_it_serves(tmp_path):
  base = tmp_path / 'serving'
  _model(str(base / '3'), 3)
  _model(str(base / '12'), 12)
  os.makedirs(base / '13')  # unfinished: TF Serving would not load it either
  assert service.find_version_dir(str(base)) == (str(base / '12'), 12)
  assert service.find_version_dir(str(base / '3')) == (str(base / '3'), 3)
  one_copy = _model(str(tmp_path / 'exported_copy'), 5)
  assert service.find_version_dir(one_copy) == (one_copy, 5)
  with pytest.raises(FileNotFoundError, match='neither a SavedModel'):
    service.find_version_dir(str(tmp_path / 'empty'))
