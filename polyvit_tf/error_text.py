"""One-line descriptions of exceptions for reports and logs (TF's op decorations stripped)."""

from __future__ import annotations

import re


def short(e: BaseException, limit: int = 200) -> str:
  """`Type: first line of the message` without TF's function-node and op decorations."""
  text = re.sub(r'\{\{function_node [^}]*\}\}\s*', '', str(e))
  text = re.sub(r'\s*\[Op:[^\]]*\].*$', '', text, flags=re.S).strip()
  first = text.splitlines()[0] if text else ''
  return f'{type(e).__name__}: {first[:limit]}'
