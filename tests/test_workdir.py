"""Work-directory layout: a config and a checkpoint written there load back as a model."""

import numpy as np
import pytest
import tensorflow as tf

from polyvit_tf import workdir as workdir_lib
from polyvit_tf.configs import tiny
from polyvit_tf.model import PolyViT
from polyvit_tf.model import weights


def test_load_model_from_workdir(tmp_path):
  config = tiny.get_config()
  model = PolyViT(config, seed=3)
  workdir_lib.save_config(str(tmp_path), config)
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(model=weights.checkpoint(model), step=tf.Variable(5)),
      workdir_lib.checkpoint_dir(str(tmp_path)), max_to_keep=1)
  manager.save()
  loaded_config, loaded = workdir_lib.load_model(str(tmp_path))
  assert loaded_config.to_dict() == config.to_dict()
  for name, value in weights.get(loaded).items():
    np.testing.assert_array_equal(value, weights.get(model)[name])


def test_missing_pieces_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='config.json'):
    workdir_lib.load_config(str(tmp_path))
  workdir_lib.save_config(str(tmp_path), tiny.get_config())
  with pytest.raises(FileNotFoundError, match='no checkpoint'):
    workdir_lib.load_model(str(tmp_path))
