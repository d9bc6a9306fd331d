"""The modality registry: lookups, an unknown modality as a config error, registration rules."""

from __future__ import annotations

import pytest

from polyvit_tf import modalities
from polyvit_tf.configs import base
from polyvit_tf.configs import specs
from polyvit_tf.configs import tiny
from polyvit_tf.configs.errors import ConfigError


def test_built_in_modalities_in_canonical_order():
  assert modalities.names() == ('image', 'audio', 'video')
  assert [modalities.get(m).input_rank for m in modalities.names()] == [2, 2, 3]
  # Every modality's data fields are in every task's data config, with its defaults.
  data = base.data_config()
  for name in modalities.names():
    for field, default in modalities.get(name).data_defaults.items():
      assert data[field] == default


def test_an_unknown_modality_is_a_config_error_naming_the_registered_ones():
  config = tiny.get_config()
  config.tasks.video_a.modality = 'smell'  # once fell silently into the video branch
  with pytest.raises(ConfigError, match=r"tasks.video_a.modality: unknown modality 'smell'; "
                                        r"the registered modalities are \['image', 'audio', "
                                        r"'video'\]"):
    specs.resolve(config).tasks
  with pytest.raises(ConfigError, match='registered modalities'):
    modalities.get('smell')


def test_registration_rules():
  class Taste(modalities.Modality):
    name = 'taste'
    data_defaults = {'inception_crop_area': (0.5, 1.0)}  # image's field, another default

  with pytest.raises(ValueError, match='identifier'):
    modalities.register(type('Bad', (modalities.Modality,), {'name': 'no-good'})())
  with pytest.raises(ValueError, match="'image' is registered already"):
    modalities.register(type('Image2', (modalities.Modality,), {'name': 'image'})())
  taste = modalities.register(Taste())
  try:
    assert modalities.register(taste) is taste  # the same object again: a no-op
    assert modalities.names()[-1] == 'taste'
    with pytest.raises(ValueError, match="data field 'inception_crop_area'"):
      modalities.data_defaults()
  finally:
    modalities.unregister('taste')
  assert 'taste' not in modalities.names()
