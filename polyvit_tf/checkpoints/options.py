"""The `init` section of a config (resolved and checked by polyvit_tf.configs.specs) and
`<format>:<path>` sources."""

from __future__ import annotations

import ml_collections

from polyvit_tf.configs import base
from polyvit_tf.configs import specs as specs_lib

FORMATS = base.INIT_FORMATS
# config.init; the defaults are the paper's / the original code's choices (configs/base.py).
InitOptions = specs_lib.InitSpec
parse_source = specs_lib.parse_init_source


def init_options(config: ml_collections.ConfigDict) -> InitOptions:
  """The config's `init` section (defaults where absent, e.g. in older work directories),
  raising ConfigError naming the bad `init.<field>`."""
  return specs_lib.resolve(config).init
