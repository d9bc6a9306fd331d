"""What an initialisation did, weight by weight, and its printable table.

Actions: loaded (copied as is), resized (position-embedding grid), tiled (grid repeated over
time), inflated (2D kernel -> tubelets), converted (frames summed or averaged, channels summed,
or taken from another modality), fresh (kept the model's own initialisation: new heads),
skipped (in the checkpoint, not used).
"""

from __future__ import annotations

import collections
import dataclasses
import re

from polyvit_tf.model import weights

ACTIONS = ('loaded', 'resized', 'tiled', 'inflated', 'converted', 'fresh', 'skipped')


@dataclasses.dataclass
class Row:
  target: str  # a PolyViT weight or layer name; '-' for skipped source keys
  action: str
  source: str = ''
  detail: str = ''
  count: int = 1  # number of arrays the row stands for


@dataclasses.dataclass
class InitReport:
  """Like polyvit_tf.model.weights.LoadReport (assigned / unexpected / missing / mismatched),
  plus one row per weight or layer saying what was done and from where."""
  source: str
  rows: list[Row] = dataclasses.field(default_factory=list)
  notes: list[str] = dataclasses.field(default_factory=list)
  assigned: list[str] = dataclasses.field(default_factory=list)
  missing: list[str] = dataclasses.field(default_factory=list)  # left at their fresh init
  unexpected: list[str] = dataclasses.field(default_factory=list)  # source keys skipped
  mismatched: list[str] = dataclasses.field(default_factory=list)  # always empty: those raise

  def add(self, target: str, action: str, source: str = '', detail: str = '',
          count: int = 1) -> None:
    if action not in ACTIONS:
      raise ValueError(f'unknown action {action!r}')
    self.rows.append(Row(target, action, source, detail, count))

  def action_of(self, target: str) -> str:
    """The action of the row whose target is `target` (a weight or a layer name)."""
    for row in self.rows:
      if row.target == target:
        return row.action
    raise KeyError(target)

  def assign(self, model, values: dict, fresh: list[str]) -> 'InitReport':
    """Assigns `values` to `model` by name; every weight not in `values` must be in `fresh`
    (left at its new initialisation). Records assigned / missing; returns self."""
    load = weights.assign(model, values, allow_missing=True)
    if sorted(load.missing) != sorted(fresh) or load.unexpected:
      raise RuntimeError(f'internal: unassigned {sorted(set(load.missing) - set(fresh))}, '
                         f'unknown {load.unexpected}')
    self.assigned, self.missing = load.assigned, load.missing
    return self

  def skip_source_keys(self, keys: list[str], why: str = 'not used by PolyViT') -> None:
    """Adds one 'skipped' row per group of source keys (grouped by their parent)."""
    groups: dict[str, list[str]] = collections.OrderedDict()
    for key in keys:
      parent = re.split(r'[/.](?=[^/.]*$)', key)[0] if re.search(r'[/.]', key) else key
      groups.setdefault(parent, []).append(key)
    for parent, members in groups.items():
      leaves = [m[len(parent) + 1:] if m != parent else m for m in members]
      sep = members[0][len(parent):len(parent) + 1]
      shown = members[0] if len(members) == 1 else f'{parent}{sep}{{{",".join(leaves)}}}'
      self.add('-', 'skipped', shown, why, count=len(members))
    self.unexpected.extend(keys)

  def counts(self) -> dict[str, int]:
    """Number of arrays per action."""
    out = {a: 0 for a in ACTIONS}
    for row in self.rows:
      out[row.action] += row.count
    return {a: n for a, n in out.items() if n}

  def format(self) -> str:
    """A fixed-width table (target | action | from | detail), a summary line and the notes."""
    header = ('PolyViT weight', 'action', 'from checkpoint', 'detail')
    cells = [header] + [(r.target + (f' ({r.count} arrays)' if r.count > 1 and r.target != '-'
                                     else ''), r.action, r.source, r.detail) for r in self.rows]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = [f'initialised from {self.source}']
    for n, c in enumerate(cells):
      lines.append('  '.join(c[i].ljust(widths[i]) for i in range(3)) + '  ' + c[3])
      if n == 0:
        lines.append('  '.join('-' * w for w in widths) + '  ' + '-' * len(header[3]))
    lines.append('summary: ' + ', '.join(f'{a} {n}' for a, n in self.counts().items())
                 + ' (arrays)')
    lines.extend(f'note: {n}' for n in self.notes)
    return '\n'.join(lines)

  def __str__(self) -> str:
    return self.format()
