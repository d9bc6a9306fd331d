"""Where the local pipeline keeps things under its --root directory."""

from __future__ import annotations

import os

PIPELINE_NAME = 'polyvit'


def pipeline_root(root: str) -> str:
  """TFX artifacts (one directory per component output)."""
  return os.path.join(root, 'tfx')


def metadata_path(root: str) -> str:
  """The sqlite ML Metadata store of the local runner."""
  return os.path.join(root, 'metadata.sqlite')


def serving_dir(root: str) -> str:
  """Where Pusher pushes blessed SavedModels: <serving_dir>/<version>/ (TF Serving layout)."""
  return os.path.join(root, 'serving')
