"""Converts media files into sharded TFRecords of polyvit_tf's tf.Example format (Beam).

From a folder of class sub-folders:
    python -m polyvit_tf.data.convert --modality=image --input=photos/ --output=data/pets \
        --split=train [--num_shards=8]
From a manifest (CSV with a header `path,label` or `path,labels` [,id]; labels separated
by `;`; or JSONL lines {"path": ..., "label": ... | "labels": [...], "id": ...}; paths
relative to the manifest; labels are class names or class ids):
    python -m polyvit_tf.data.convert --modality=audio --manifest=clips.csv \
        --output=data/vggsound --split=test --class_names=classes.txt

Images are stored as they are (JPEG/PNG; other formats re-encoded as PNG); audio is decoded
(PCM/float WAV in Python after its header is checked against the file, anything else FFmpeg
reads with PyAV), resampled to 16 kHz mono and stored as int16 PCM; video is decoded with PyAV
and stored as JPEG frames at `--video_fps` with the short side resized to
`--video_short_side`. Files that cannot be converted (empty, corrupt, too short, over a
budget, not a regular file, label outside the classes, a bad manifest line, a path outside
the manifest's folder) are listed with the reason in `<output>/<split>.report.json`; every
other file is converted. Budgets (media_checks.MediaLimits): `--max_file_mb`,
`--max_audio_seconds`, `--max_frames_per_video`, `--max_decoded_pixels`; sample rates must
be in [1000, 192000] Hz. `dataset_info.json` gets the class names and the split's count.

Runs on Apache Beam: DirectRunner locally (`--direct_num_workers=N
--direct_running_mode=multi_processing` for parallelism); pass `--runner=DataflowRunner`
(or Flink) and its options after `--` to run the same code at scale.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import posixpath
import stat
import sys
from typing import Iterable, Sequence

from absl import app
from absl import flags
from absl import logging
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import tensorflow as tf

from polyvit_tf import error_text
from polyvit_tf import modalities
from polyvit_tf.data import features
from polyvit_tf.data import media
from polyvit_tf.data import media_checks
from polyvit_tf.data import records


@dataclasses.dataclass(frozen=True)
class Item:
  """One media file to convert; `labels` are class names or ids as given. An item with a
  `problem` (found while listing: a symlink loop, a bad manifest line) is reported with it."""
  path: str
  labels: tuple
  id: str
  problem: str = ''


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
  modality: str
  class_names: tuple[str, ...]
  sample_rate: int = 16_000
  video_fps: float = 25.0
  video_short_side: int = 256
  video_max_frames: int = 0
  limits: media_checks.MediaLimits = media_checks.MediaLimits()

  def __post_init__(self):
    if not self.video_fps > 0:
      raise ConversionError(f'--video_fps must be > 0, got {self.video_fps}')
    media_checks.check_sample_rate(self.sample_rate)


@dataclasses.dataclass
class Report:
  split: str
  converted: int
  bad: list[dict]  # {'id', 'path', 'reason'}

  def to_json(self) -> str:
    return json.dumps({'split': self.split, 'converted': self.converted,
                       'bad': sorted(self.bad, key=lambda b: b['path'])}, indent=1)


class ConversionError(ValueError):
  """Bad converter input (not a bad media file): the message names the file or flag."""


# ------------------------------------------------------------------------------ inputs
def _walk(top: str, seen: dict, outer: frozenset = frozenset()):
  """(directory, sorted file names, '') under `top` in sorted order, following symlinks. A
  directory met again (a symlink loop back to `top`, an ancestor or one of the `outer`
  directories, or a second link to one already walked: `seen` is shared by the caller's
  walks) is yielded once as (directory, None, reason) and not entered."""
  if '://' in top:
    for base, _, files in sorted(tf.io.gfile.walk(top)):
      yield base, sorted(files), ''
    return

  def visit(directory, ancestors):
    try:
      st = os.stat(directory)
    except OSError as e:
      yield directory, None, f'unreadable directory ({e.strerror})'
      return
    key = (st.st_dev, st.st_ino)
    if key in ancestors:
      yield directory, None, f'symlink loop: it is {seen.get(key, "an enclosing folder")}; ' \
                             'not entered'
      return
    if key in seen:
      yield directory, None, (f'directory reached twice through symlinks: it is {seen[key]}; '
                              'not entered again')
      return
    seen[key] = directory
    try:
      entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as e:
      yield directory, None, f'unreadable directory ({e.strerror})'
      return
    subdirs, files = [], []
    for e in entries:
      try:
        (subdirs if e.is_dir(follow_symlinks=True) else files).append(e.name)
      except OSError:
        files.append(e.name)  # a dangling or looping link: reported when it is checked
    yield directory, files, ''
    for d in subdirs:
      yield from visit(os.path.join(directory, d), ancestors | {key})

  yield from visit(top, outer)


def items_from_folder(folder: str, modality: str) -> tuple[list[Item], tuple[str, ...]]:
  """Files under `folder/<class>/...` with a media extension; class names sorted. Symlink
  loops, directories reached twice and files that are not regular (FIFOs, devices) become
  items with their problem (reported, never opened)."""
  if not tf.io.gfile.isdir(folder):
    raise ConversionError(f'--input {folder!r} is not a directory')
  classes = sorted(d.rstrip('/') for d in tf.io.gfile.listdir(folder)
                   if tf.io.gfile.isdir(os.path.join(folder, d)))
  if not classes:
    raise ConversionError(f'--input {folder!r} has no class sub-folders')
  extensions = modalities.get(modality).media_extensions
  seen: dict = {}
  outer = frozenset()
  if '://' not in folder:
    st = os.stat(folder)
    outer = frozenset({(st.st_dev, st.st_ino)})
  items = []
  for name in classes:
    for base, files, problem in _walk(os.path.join(folder, name), seen, outer):
      if files is None:
        items.append(Item(base, (name,), os.path.relpath(base, folder), problem))
        continue
      for f in files:
        if os.path.splitext(f)[1].lower() in extensions:
          path = os.path.join(base, f)
          items.append(Item(path, (name,), os.path.relpath(path, folder)))
  return items, tuple(classes)


def _split_labels(value) -> tuple:
  if isinstance(value, (list, tuple)):
    return tuple(value)
  text = str(value).strip()
  return tuple(v.strip() for v in text.split(';') if v.strip()) if text else ()


def _inside(root: str, path: str) -> bool:
  if '://' in root:
    return posixpath.normpath(path).startswith(posixpath.normpath(root).rstrip('/') + '/')
  real_root = os.path.realpath(root)
  return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def _manifest_rows(manifest: str, text: str):
  """(line number, row dict or None, problem) for every row of a CSV or JSONL manifest."""
  if manifest.endswith(('.jsonl', '.json')):
    for n, line in enumerate(text.splitlines(), 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except ValueError as e:
        yield n, None, f'not valid JSON ({e})'
        continue
      if not isinstance(row, dict):
        yield n, None, f'a JSON {type(row).__name__}, not an object'
      else:
        yield n, row, ''
    return
  reader = csv.DictReader(io.StringIO(text, newline=''))
  try:
    fields = reader.fieldnames
  except csv.Error as e:
    raise ConversionError(f'{manifest}: line 1: unreadable CSV header ({e})') from None
  if not fields or 'path' not in fields:
    raise ConversionError(f'{manifest}: line 1: the CSV header {fields} has no "path" column '
                          '(expected path,label or path,labels[,id])')
  while True:
    try:
      row = next(reader)
    except StopIteration:
      return
    except csv.Error as e:
      yield reader.line_num, None, f'unreadable CSV row ({e})'
      continue
    if None in row:
      yield (reader.line_num, None,
             f'{len(fields) + len(row[None])} fields, the header has {len(fields)}')
    else:
      yield reader.line_num, row, ''


def items_from_manifest(manifest: str, *, allow_outside_paths: bool = False) -> list[Item]:
  """Items of a CSV (header path,label|labels[,id]) or JSONL manifest. Paths are relative to
  the manifest's folder and must stay inside it (after symlinks) unless
  `allow_outside_paths`; a malformed line becomes an item whose problem names its line."""
  root = os.path.dirname(manifest)
  if '://' not in manifest and os.path.exists(manifest):
    mode = os.stat(manifest).st_mode
    if not stat.S_ISREG(mode):  # a FIFO would block the read forever
      raise ConversionError(f'{manifest}: not a regular file ({media_checks.file_kind(mode)})')
  try:
    with tf.io.gfile.GFile(manifest, 'rb') as f:
      raw = f.read()
  except tf.errors.OpError as e:
    raise ConversionError(f'{manifest}: cannot read the manifest ({type(e).__name__})') from None
  try:
    text = raw.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b'\n') + 1
    raise ConversionError(f'{manifest}: line {line}: not UTF-8 text') from None
  items = []
  for n, row, problem in _manifest_rows(manifest, text):
    where = f'{manifest}:{n}'
    path = row.get('path') if row is not None else None
    if not problem and (not isinstance(path, str) or not path.strip()):
      problem = 'no "path"' if path in (None, '') else f'"path" is a {type(path).__name__}'
    if problem:
      items.append(Item(where, (), where, f'manifest line {n}: {problem}'))
      continue
    full = path if os.path.isabs(path) or '://' in path else os.path.join(root, path)
    labels = row.get('labels', row.get('label', ''))
    labels = '' if labels is None else labels
    item_id = str(row.get('id') or path)
    if not allow_outside_paths and not _inside(root or '.', full):
      items.append(Item(full, (), item_id, f'manifest line {n}: path {path!r} is outside '
                        f'the manifest\'s folder {os.path.abspath(root or ".")!r} (pass '
                        '--allow_outside_paths to allow it)'))
      continue
    items.append(Item(full, _split_labels(labels), item_id))
  return items


def class_names_from(arg: str, items: Sequence[Item]) -> tuple[str, ...]:
  """--class_names: a file (one name per line), a comma list, or '' = sorted label names."""
  if arg:
    if tf.io.gfile.exists(arg):
      with tf.io.gfile.GFile(arg) as f:
        return tuple(line.strip() for line in f if line.strip())
    return tuple(n.strip() for n in arg.split(',') if n.strip())
  names = sorted({str(l) for item in items for l in item.labels})
  if names and all(n.isdigit() for n in names):
    raise ConversionError('labels are class ids: pass --class_names (a file or comma list)')
  return tuple(names)


def label_ids(labels: tuple, class_names: Sequence[str]) -> list[int]:
  """Class ids of `labels` (names or ids); MediaError when one is outside the classes."""
  index = {n: i for i, n in enumerate(class_names)}
  out = []
  for label in labels:
    text = str(label)
    if text in index:
      out.append(index[text])
    elif text.lstrip('-').isdigit() and 0 <= int(text) < len(class_names):
      out.append(int(text))
    else:
      raise media.MediaError(f'label {text!r} is not one of the {len(class_names)} classes')
  if not out:
    raise media.MediaError('no label')
  return out


# ---------------------------------------------------------------------------- convert
def convert_item(item: Item, opts: ConvertOptions) -> tf.train.Example:
  """One file -> tf.Example; MediaError with the reason when it cannot be converted."""
  if item.problem:
    raise media.MediaError(item.problem)
  labels = label_ids(item.labels, opts.class_names)
  payload = modalities.get(opts.modality).convert_file(item.path, opts)
  return features.example(item.id, labels, payload)


class _ConvertFn(beam.DoFn):
  """Emits serialized examples; bad files go to the 'bad' output with their reason."""

  def __init__(self, opts: ConvertOptions):
    super().__init__()
    self._opts = opts
    self._ok = beam.metrics.Metrics.counter('polyvit_convert', 'converted')
    self._bad = beam.metrics.Metrics.counter('polyvit_convert', 'bad')

  def process(self, item: Item) -> Iterable:
    try:
      example = convert_item(item, self._opts)
    except Exception as e:  # pylint: disable=broad-except
      # MediaError is the expected case; anything else is a converter bug met on this file,
      # which must not end the run either.
      reason = str(e) if isinstance(e, media.MediaError) else (
          f'internal error ({error_text.short(e)})')
      self._bad.inc()
      logging.warning('skipping %s: %s', item.path, reason)
      yield beam.pvalue.TaggedOutput('bad', json.dumps(
          {'id': item.id, 'path': item.path, 'reason': reason}))
      return
    self._ok.inc()
    yield example.SerializeToString(deterministic=True)


def run(items: Sequence[Item], opts: ConvertOptions, output: str, split: str, *,
        num_shards: int = 1, pipeline_args: Sequence[str] = ()) -> Report:
  """Converts `items` into `<output>/<split>-SSSSS-of-NNNNN.tfrecord` with Beam; returns
  (and writes to `<output>/<split>.report.json`) the report of converted and bad files."""
  tf.io.gfile.makedirs(output)
  for old in records.split_files(output, split):
    tf.io.gfile.remove(old)
  bad_prefix = os.path.join(output, f'.{split}.bad')
  options = PipelineOptions(list(pipeline_args) or ['--runner=DirectRunner'])
  try:
    with beam.Pipeline(options=options) as p:
      results = (p | 'Items' >> beam.Create(list(items))
                 | 'Convert' >> beam.ParDo(_ConvertFn(opts)).with_outputs('bad', main='ok'))
      _ = results.ok | 'Write' >> beam.io.WriteToTFRecord(
          os.path.join(output, split), file_name_suffix='.tfrecord',
          num_shards=num_shards, shard_name_template='-SSSSS-of-NNNNN')
      _ = results.bad | 'Bad' >> beam.io.WriteToText(bad_prefix, shard_name_template='',
                                                     file_name_suffix='.jsonl')
  finally:
    for leftover in tf.io.gfile.glob(os.path.join(output, 'beam-temp-*')):
      tf.io.gfile.rmtree(leftover)  # multi-process DirectRunner leaves its temp dirs behind
  bad_path = bad_prefix + '.jsonl'
  bad = []
  if tf.io.gfile.exists(bad_path):
    with tf.io.gfile.GFile(bad_path) as f:
      bad = [json.loads(line) for line in f if line.strip()]
    tf.io.gfile.remove(bad_path)
  files = records.split_files(output, split)
  converted = records.count_records(files) if files else 0
  report = Report(split, converted, bad)
  with tf.io.gfile.GFile(os.path.join(output, f'{split}.report.json'), 'w') as f:
    f.write(report.to_json() + '\n')
  records.write_info(output, modality=opts.modality, class_names=opts.class_names,
                     split_counts={split: converted})
  return report


# -------------------------------------------------------------------------------- CLI
FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined only when run as a program)."""
  flags.DEFINE_enum('modality', None, list(modalities.names()), 'Media kind.')
  flags.DEFINE_string('input', '', 'Folder of class sub-folders of media files.')
  flags.DEFINE_string('manifest', '', 'CSV or JSONL manifest (path, label(s)).')
  flags.DEFINE_string('output', None, 'Output directory of the TFRecords.')
  flags.DEFINE_string('split', 'train', 'Split name of the output files.')
  flags.DEFINE_string('class_names', '', 'File with one class name per line, or a comma '
                      'list; default: sorted folder / label names.')
  flags.DEFINE_integer('num_shards', 1, 'Output files (0: let Beam decide).')
  flags.DEFINE_integer('sample_rate', 16_000, 'Audio sample rate to store.')
  flags.DEFINE_float('video_fps', 25.0, 'Frames per second to keep.')
  flags.DEFINE_integer('video_short_side', 256, 'Short side of stored frames in pixels '
                       '(0: as decoded).')
  flags.DEFINE_integer('video_max_frames', 0, 'Keep at most this many frames per video '
                       '(0: all).')
  flags.DEFINE_bool('fail_on_bad', False, 'Exit with an error when any file could not be '
                    'converted.')
  limits = media_checks.MediaLimits()
  flags.DEFINE_float('max_file_mb', limits.max_file_bytes / 2**20, 'Larger input files are '
                     'refused (MiB).')
  flags.DEFINE_float('max_audio_seconds', limits.max_audio_seconds, 'Longer audio files are '
                     'refused (checked from the header before decoding where it has one).')
  flags.DEFINE_integer('max_frames_per_video', limits.max_video_frames, 'A video that would '
                       'store more frames at --video_fps is refused (a budget; '
                       '--video_max_frames truncates instead).')
  flags.DEFINE_integer('max_decoded_pixels', limits.max_pixels, 'An image or video frame of '
                       'more pixels is refused (checked from its header before decoding).')
  flags.DEFINE_bool('allow_outside_paths', False, 'Let manifest paths point outside the '
                    'manifest\'s folder (absolute paths, `..`, symlinks out).')
  flags.mark_flags_as_required(['modality', 'output'])


def _options(class_names: tuple[str, ...]) -> ConvertOptions:
  try:
    limits = media_checks.MediaLimits(
        max_file_bytes=int(FLAGS.max_file_mb * 2**20),
        max_audio_seconds=FLAGS.max_audio_seconds,
        max_video_frames=FLAGS.max_frames_per_video, max_pixels=FLAGS.max_decoded_pixels)
  except ValueError as e:
    raise ConversionError(str(e)) from None
  try:
    return ConvertOptions(FLAGS.modality, class_names, sample_rate=FLAGS.sample_rate,
                          video_fps=FLAGS.video_fps, video_short_side=FLAGS.video_short_side,
                          video_max_frames=FLAGS.video_max_frames, limits=limits)
  except media.MediaError as e:
    raise ConversionError(f'--sample_rate: {e}') from None


def _main(argv: Sequence[str]) -> None:
  if FLAGS.input:
    items, found = items_from_folder(FLAGS.input, FLAGS.modality)
    class_names = class_names_from(FLAGS.class_names, items) if FLAGS.class_names else found
  else:
    items = items_from_manifest(FLAGS.manifest, allow_outside_paths=FLAGS.allow_outside_paths)
    class_names = class_names_from(FLAGS.class_names, items)
  opts = _options(class_names)
  report = run(items, opts, FLAGS.output, FLAGS.split, num_shards=FLAGS.num_shards,
               pipeline_args=argv[1:])
  print(f'{report.converted} of {len(items)} files converted into {FLAGS.output} '
        f'({FLAGS.split}); {len(report.bad)} skipped:')
  for bad in sorted(report.bad, key=lambda b: b['path']):
    print(f'  {bad["path"]}: {bad["reason"]}')
  if report.bad and FLAGS.fail_on_bad:
    raise SystemExit(1)


def main(argv: Sequence[str]) -> None:
  """Exit codes: 0 done (bad files are in the report), 1 bad files with --fail_on_bad,
  2 bad input (a flag, the folder, the manifest as a whole)."""
  if bool(FLAGS.input) == bool(FLAGS.manifest):
    raise app.UsageError('give exactly one of --input and --manifest')
  try:
    _main(argv)
  except ConversionError as e:
    logging.error('%s', e)
    print(f'error: {e}', file=sys.stderr)
    raise SystemExit(2) from None


if __name__ == '__main__':
  # Run the importable module's main, not this __main__ copy: Beam's worker processes
  # (multi_processing, Dataflow) must find _ConvertFn under its module name to unpickle it.
  from polyvit_tf.data import convert as _convert  # pylint: disable=import-self
  _convert.define_flags()
  app.run(_convert.main)
