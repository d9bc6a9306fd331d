"""The one error type of config problems (a leaf module: everything may import it)."""

from __future__ import annotations


class ConfigError(ValueError):
  """A config value is missing, unknown or inconsistent; the message names the key."""
