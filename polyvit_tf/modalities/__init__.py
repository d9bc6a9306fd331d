"""The modality registry: each modality is one module of this package, registered by name.

  get(name)       the registered Modality; ConfigError naming the registered ones otherwise
  names()         registered names in registration order (the canonical order of messages,
                  configs and cross-modal defaults: image, audio, video, then any added)
  register(m)     adds a Modality instance (a module outside the package registers itself)
  unregister(n)   removes one registered at run time (e.g. by a test)

Adding a modality: write `polyvit_tf/modalities/<name>.py` (a `Modality` subclass and its
instance `MODALITY`, see base.py and docs/data.md) and add it to the registry line below.
"""

from __future__ import annotations

from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.modalities.base import DataFields
from polyvit_tf.modalities.base import Modality
from polyvit_tf.modalities.base import RawInput

_REGISTRY: dict[str, Modality] = {}


def register(modality: Modality) -> Modality:
  """Registers `modality` under its name (re-registering the same object is a no-op)."""
  if not modality.name or not modality.name.isidentifier():
    raise ValueError(f'a modality needs an identifier as its name, got {modality.name!r}')
  if _REGISTRY.get(modality.name, modality) is not modality:
    raise ValueError(f'modality {modality.name!r} is registered already')
  _REGISTRY[modality.name] = modality
  return modality


def unregister(name: str) -> None:
  _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
  return tuple(_REGISTRY)


def get(name: str) -> Modality:
  if name not in _REGISTRY:
    raise ConfigError(f'unknown modality {name!r}; the registered modalities are '
                      f'{list(_REGISTRY)}.')
  return _REGISTRY[name]


def data_defaults() -> dict:
  """The `tasks.<t>.data` fields of every registered modality, with their defaults."""
  out, owner = {}, {}
  for modality in _REGISTRY.values():
    for field, value in modality.data_defaults.items():
      if field in out and out[field] != value:
        raise ValueError(f'data field {field!r}: modality {modality.name!r} defaults it to '
                         f'{value!r}, {owner[field]!r} to {out[field]!r}')
      out[field], owner[field] = value, modality.name
  return out


# The registry line: one module per modality.
# pylint: disable=wrong-import-position
from polyvit_tf.modalities import image, audio, video  # noqa: E402

for _module in (image, audio, video):
  register(_module.MODALITY)

__all__ = ['DataFields', 'Modality', 'RawInput', 'data_defaults', 'get', 'names', 'register',
           'unregister']
