"""Saving and loading configs as JSON (a run's work directory keeps the config it ran with)."""

from __future__ import annotations

import json

import ml_collections
import tensorflow as tf


def save(config: ml_collections.ConfigDict, path: str) -> None:
  """Writes `config` as JSON to `path` (any TF filesystem path)."""
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(config.to_json(indent=2, sort_keys=True))


def loads(text: str) -> ml_collections.ConfigDict:
  """A config from its JSON text; lists come back as tuples where configs use tuples."""
  return ml_collections.ConfigDict(json.loads(text, object_hook=_tuples))


def load(path: str) -> ml_collections.ConfigDict:
  with tf.io.gfile.GFile(path) as f:
    return loads(f.read())


def _tuples(obj: dict) -> dict:
  return {k: tuple(v) if isinstance(v, list) else v for k, v in obj.items()}
