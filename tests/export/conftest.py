"""Session fixtures of tests/export: one tiny run exported once."""

import pytest

from tests.export import fixtures


@pytest.fixture(scope='session')
def exported_base(tmp_path_factory) -> str:
  return fixtures.exported(tmp_path_factory)


@pytest.fixture(scope='session')
def exported_dir(exported_base) -> str:
  from polyvit_tf.export import latest_version_dir  # pylint: disable=import-outside-toplevel
  return latest_version_dir(exported_base)
