"""Reading the JSON results the benchmark scripts write (shared by report.py and plots.py)."""

from __future__ import annotations

import json
import os


def load(results: str, name: str, subdir: str = '', suffix: str = '') -> dict | None:
  """`<results>/<subdir>/<name><suffix>.json`, or None when that run has not been made."""
  path = os.path.join(results, subdir, f'{name}{suffix}.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
