"""The files of a training checkpoint directory: listing, verifying, repairing.

A checkpoint `ckpt-<step>` is `ckpt-<step>.index` + `ckpt-<step>.data-SSSSS-of-NNNNN` (written
by tf.train.CheckpointManager) + `ckpt-<step>.manifest.json`, written by us after the save
succeeded: the size and SHA-256 of each of its files. The `checkpoint` state file lists the
managed checkpoints (oldest first). Verification (`problem`) checks that every file is there,
and, when the manifest exists, that sizes and digests match: this catches a bit flip anywhere
in the files before any variable is assigned (TF itself checks a CRC32C of each tensor only
while it restores). A checkpoint without a manifest (an older run, or a kill between the save
and the manifest) is left to TF's own checks.

Leftovers of an interrupted save are TF's `ckpt-<step>_temp/` directories (removed: TF says
they are safe to delete) and `.data` files without an `.index` (set aside, never deleted).
Files that must go out of the way are moved to `set_aside/<name>.<time>/` with a REASON.txt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time

import tensorflow as tf
from google.protobuf import text_format

NAME = 'ckpt'
STATE = 'checkpoint'
SET_ASIDE = 'set_aside'
MANIFEST = '.manifest.json'
_STEP = re.compile(rf'^{NAME}-(\d+)(\.index|\.data-(\d{{5}})-of-(\d{{5}})|{re.escape(MANIFEST)})$')
_TEMP = re.compile(rf'^{NAME}-\d+_temp$')
_CHUNK = 1 << 20


@dataclasses.dataclass
class Candidate:
  """What is on disk (or in the state file) for one step."""
  step: int
  prefix: str
  index: bool = False
  data: list[str] = dataclasses.field(default_factory=list)
  manifest: bool = False
  listed: bool = False  # named by the state file

  def files(self) -> list[str]:
    names = ([self.prefix + '.index'] if self.index else []) + self.data
    return names + ([self.prefix + MANIFEST] if self.manifest else [])


@dataclasses.dataclass
class Listing:
  """A checkpoint directory: the state file's status and every candidate, newest first."""
  directory: str
  state: str  # 'ok', 'missing' or 'unreadable: <why>'
  timestamps: dict[int, float]
  last_preserved: float | None
  candidates: list[Candidate]
  temp_dirs: list[str]
  stray: list[str]  # half-written manifests

  def real(self) -> list[Candidate]:
    """Candidates that are (or were) checkpoints: listed by a readable state file, with an
    index, or any candidate at all when the state file exists but cannot be read."""
    if self.state.startswith('unreadable'):
      return list(self.candidates)
    return [c for c in self.candidates if c.listed or c.index]

  def leftovers(self) -> list[Candidate]:
    real = {c.step for c in self.real()}
    return [c for c in self.candidates if c.step not in real]


def _empty_state():
  """An empty CheckpointState proto (its class is reachable only through this public API)."""
  state = tf.compat.v1.train.generate_checkpoint_state_proto('', NAME)
  state.Clear()
  return state


def _read_state(directory: str):
  """(status, CheckpointState | None)."""
  path = os.path.join(directory, STATE)
  if not tf.io.gfile.exists(path):
    return 'missing', None
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      text = f.read().decode('utf-8')
    state = _empty_state()
    text_format.Merge(text, state)
  except (tf.errors.OpError, UnicodeDecodeError, text_format.ParseError) as e:
    return f'unreadable: {type(e).__name__}: {str(e)[:120]}', None
  if not state.model_checkpoint_path:
    return 'unreadable: no model_checkpoint_path (empty file?)', None
  return 'ok', state


def _step_of(path: str) -> int | None:
  m = re.match(rf'^{NAME}-(\d+)$', os.path.basename(path))
  return int(m.group(1)) if m else None


def scan(directory: str) -> Listing:
  """Everything in `directory` that belongs to checkpoints, newest step first."""
  status, state = _read_state(directory)
  found: dict[int, Candidate] = {}

  def candidate(step):
    return found.setdefault(step, Candidate(step, os.path.join(directory, f'{NAME}-{step}')))

  temp_dirs, stray = [], []
  names = tf.io.gfile.listdir(directory) if tf.io.gfile.isdir(directory) else []
  for name in sorted(n.rstrip('/') for n in names):
    m = _STEP.match(name)
    if m:
      c = candidate(int(m.group(1)))
      if m.group(2) == '.index':
        c.index = True
      elif m.group(2) == MANIFEST:
        c.manifest = True
      else:
        c.data.append(os.path.join(directory, name))
    elif _TEMP.match(name):
      temp_dirs.append(os.path.join(directory, name))
    elif name.startswith(f'{NAME}-') and MANIFEST in name:
      stray.append(os.path.join(directory, name))
  timestamps, last_preserved = {}, None
  if state is not None:
    last_preserved = state.last_preserved_timestamp
    stamps = list(state.all_model_checkpoint_timestamps)
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    for i, path in enumerate(list(paths) + [state.model_checkpoint_path]):
      step = _step_of(path)
      if step is None:
        continue
      candidate(step).listed = True
      if i < len(stamps):
        timestamps[step] = stamps[i]
  ordered = sorted(found.values(), key=lambda c: -c.step)
  return Listing(directory, status, timestamps, last_preserved, ordered, temp_dirs, stray)


def _expected_data(c: Candidate) -> list[str]:
  """The data file names the candidate's shard count asks for ([] when none is there)."""
  if not c.data:
    return []
  count = int(_STEP.match(os.path.basename(c.data[0])).group(4))
  return [f'{c.prefix}.data-{i:05d}-of-{count:05d}' for i in range(count)]


def digest(path: str) -> str:
  h = hashlib.sha256()
  with tf.io.gfile.GFile(path, 'rb') as f:
    while True:
      block = f.read(_CHUNK)
      if not block:
        return h.hexdigest()
      h.update(block)


def problem(c: Candidate) -> tuple[str, str] | None:
  """(file, reason) when the candidate's files are missing or do not match its manifest;
  None when they look complete (TF's restore then has the last word)."""
  if not c.index:
    return c.prefix + '.index', 'index file missing' + (
        '' if c.data else ' (and no data file)')
  if not c.data:
    return c.prefix + '.data-00000-of-00001', 'data file missing'
  for name in _expected_data(c):
    if name not in c.data:
      return name, 'data file missing'
  if not c.manifest:
    return None
  path = c.prefix + MANIFEST
  try:
    with tf.io.gfile.GFile(path) as f:
      manifest = json.load(f)
    files = dict(manifest['files'])
  except (tf.errors.OpError, ValueError, KeyError, TypeError) as e:
    return path, f'manifest unreadable ({type(e).__name__})'
  directory = os.path.dirname(c.prefix)
  for name, want in sorted(files.items()):
    full = os.path.join(directory, name)
    if not tf.io.gfile.exists(full):
      return full, 'file missing (listed in the manifest)'
    size = tf.io.gfile.stat(full).length
    if size != want.get('bytes'):
      return full, f'{size} bytes, the manifest says {want.get("bytes")} (truncated?)'
    if digest(full) != want.get('sha256'):
      return full, 'SHA-256 differs from the manifest (corrupted contents)'
  return None


def _atomic_write(path: str, text: str) -> None:
  tmp = f'{path}.tmp{os.getpid()}'
  with tf.io.gfile.GFile(tmp, 'w') as f:
    f.write(text)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def write_manifest(prefix: str) -> str:
  """Writes `<prefix>.manifest.json` (size and SHA-256 of the checkpoint's files)."""
  files = {}
  for path in sorted(tf.io.gfile.glob(prefix + '.index') + tf.io.gfile.glob(prefix + '.data-*')):
    files[os.path.basename(path)] = {'bytes': tf.io.gfile.stat(path).length,
                                     'sha256': digest(path)}
  out = prefix + MANIFEST
  _atomic_write(out, json.dumps({'checkpoint': os.path.basename(prefix), 'files': files},
                                indent=1, sort_keys=True) + '\n')
  return out


def prune_manifests(directory: str) -> None:
  """Removes manifests whose checkpoint the manager has deleted."""
  for c in scan(directory).candidates:
    if c.manifest and not c.index and not c.data:
      tf.io.gfile.remove(c.prefix + MANIFEST)


def set_aside(directory: str, files: list[str], label: str, reason: str) -> str:
  """Moves `files` to <directory>/set_aside/<label>.<time>/ with REASON.txt; returns it."""
  stamp = time.strftime('%Y%m%dT%H%M%S', time.gmtime())
  dest = os.path.join(directory, SET_ASIDE, f'{label}.{stamp}')
  n = 1
  while tf.io.gfile.exists(dest):
    n += 1
    dest = os.path.join(directory, SET_ASIDE, f'{label}.{stamp}.{n}')
  tf.io.gfile.makedirs(dest)
  for path in files:
    if tf.io.gfile.exists(path):
      tf.io.gfile.rename(path, os.path.join(dest, os.path.basename(path)))
  with tf.io.gfile.GFile(os.path.join(dest, 'REASON.txt'), 'w') as f:
    f.write(reason.rstrip() + '\n')
  return dest


def write_state(listing: Listing, keep: list[Candidate], latest: Candidate) -> None:
  """Rewrites the state file: `keep` (any order) managed, `latest` the newest."""
  keep = sorted({c.step: c for c in keep + [latest]}.values(), key=lambda c: c.step)
  stamps = []
  for c in keep:
    stamp = listing.timestamps.get(c.step)
    if stamp is None:
      stamp = tf.io.gfile.stat(c.prefix + '.index').mtime_nsec / 1e9
    stamps.append(stamp)
  # Everything listed stays deletable by the manager's max_to_keep rotation.
  preserved = min([listing.last_preserved or stamps[0]] + stamps) - 1.0
  state = tf.compat.v1.train.generate_checkpoint_state_proto(
      listing.directory, os.path.basename(latest.prefix),
      all_model_checkpoint_paths=[os.path.basename(c.prefix) for c in keep],
      all_model_checkpoint_timestamps=stamps, last_preserved_timestamp=preserved)
  _atomic_write(os.path.join(listing.directory, STATE), text_format.MessageToString(state))


def state_matches(listing: Listing, keep: list[Candidate], latest: Candidate) -> bool:
  """Whether the state file already lists exactly `keep` with `latest` newest."""
  if listing.state != 'ok':
    return False
  listed = {c.step for c in listing.candidates if c.listed}
  newest = max(listed) if listed else None
  return listed == {c.step for c in keep} | {latest.step} and newest == latest.step


def remove_temp(listing: Listing) -> None:
  for path in listing.temp_dirs:
    tf.io.gfile.rmtree(path)
  for path in listing.stray:
    tf.io.gfile.remove(path)
