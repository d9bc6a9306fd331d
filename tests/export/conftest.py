"""Fixtures of tests/export: the exported run's model and the loaded SavedModel."""

import pytest
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from tests.export import fixtures


@pytest.fixture(scope='module')
def run(exported_base):
  return workdir_lib.load_model(fixtures.workdir_of_export())


@pytest.fixture(scope='module')
def loaded(exported_dir):
  return tf.saved_model.load(exported_dir)
