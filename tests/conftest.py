"""Shared test set-up: quiet TensorFlow, CPU only, no network."""

import os

import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
# Tests never download: TFDS and Hugging Face must work from local files only.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('NO_GCE_CHECK', 'true')


# Session fixtures shared by tests/export and tests/serving: one tiny run, exported once.
@pytest.fixture(scope='session')
def exported_base(tmp_path_factory) -> str:
  from tests.export import fixtures  # pylint: disable=import-outside-toplevel
  return fixtures.exported(tmp_path_factory)


@pytest.fixture(scope='session')
def exported_dir(exported_base) -> str:
  from polyvit_tf.export import latest_version_dir  # pylint: disable=import-outside-toplevel
  return latest_version_dir(exported_base)
