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
(WAV/FLAC/MP3/OGG with tensorflow-io, anything else FFmpeg reads with PyAV), resampled to
16 kHz mono and stored as int16 PCM; video is decoded with PyAV and stored as JPEG frames at
`--video_fps` with the short side resized to `--video_short_side`. Files that cannot be
converted (empty, corrupt, too short, label outside the classes) are listed with the reason
in `<output>/<split>.report.json`; everything else is converted. `dataset_info.json` gets
the class names and the split's example count.

Runs on Apache Beam: DirectRunner locally (`--direct_num_workers=N
--direct_running_mode=multi_processing` for parallelism); pass `--runner=DataflowRunner`
(or Flink) and its options after `--` to run the same code at scale.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from typing import Iterable, Sequence

from absl import app
from absl import flags
from absl import logging
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import tensorflow as tf

from polyvit_tf import modalities
from polyvit_tf.data import features
from polyvit_tf.data import media
from polyvit_tf.data import records


@dataclasses.dataclass(frozen=True)
class Item:
  """One media file to convert; `labels` are class names or ids as given."""
  path: str
  labels: tuple
  id: str


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
  modality: str
  class_names: tuple[str, ...]
  sample_rate: int = 16_000
  video_fps: float = 25.0
  video_short_side: int = 256
  video_max_frames: int = 0


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
def items_from_folder(folder: str, modality: str) -> tuple[list[Item], tuple[str, ...]]:
  """Files under `folder/<class>/...` with a media extension; class names sorted."""
  if not tf.io.gfile.isdir(folder):
    raise ConversionError(f'--input {folder!r} is not a directory')
  classes = sorted(d.rstrip('/') for d in tf.io.gfile.listdir(folder)
                   if tf.io.gfile.isdir(os.path.join(folder, d)))
  if not classes:
    raise ConversionError(f'--input {folder!r} has no class sub-folders')
  extensions = modalities.get(modality).media_extensions
  items = []
  for name in classes:
    for base, _, files in sorted(tf.io.gfile.walk(os.path.join(folder, name))):
      for f in sorted(files):
        if os.path.splitext(f)[1].lower() in extensions:
          path = os.path.join(base, f)
          items.append(Item(path, (name,), os.path.relpath(path, folder)))
  return items, tuple(classes)


def _split_labels(value) -> tuple:
  if isinstance(value, (list, tuple)):
    return tuple(value)
  text = str(value).strip()
  return tuple(v.strip() for v in text.split(';') if v.strip()) if text else ()


def items_from_manifest(manifest: str) -> list[Item]:
  """Items of a CSV (header path,label|labels[,id]) or JSONL manifest."""
  root = os.path.dirname(manifest)
  items = []
  with tf.io.gfile.GFile(manifest) as f:
    if manifest.endswith(('.jsonl', '.json')):
      rows = [json.loads(line) for line in f if line.strip()]
    else:
      rows = list(csv.DictReader(f))
  for n, row in enumerate(rows):
    if 'path' not in row:
      raise ConversionError(f'{manifest}: row {n + 1} has no "path"')
    labels = row.get('labels', row.get('label', ''))
    path = row['path'] if os.path.isabs(row['path']) else os.path.join(root, row['path'])
    items.append(Item(path, _split_labels(labels), str(row.get('id') or row['path'])))
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
    except media.MediaError as e:
      self._bad.inc()
      logging.warning('skipping %s: %s', item.path, e)
      yield beam.pvalue.TaggedOutput('bad', json.dumps(
          {'id': item.id, 'path': item.path, 'reason': str(e)}))
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
  with beam.Pipeline(options=options) as p:
    results = (p | 'Items' >> beam.Create(list(items))
               | 'Convert' >> beam.ParDo(_ConvertFn(opts)).with_outputs('bad', main='ok'))
    _ = results.ok | 'Write' >> beam.io.WriteToTFRecord(
        os.path.join(output, split), file_name_suffix='.tfrecord',
        num_shards=num_shards, shard_name_template='-SSSSS-of-NNNNN')
    _ = results.bad | 'Bad' >> beam.io.WriteToText(bad_prefix, shard_name_template='',
                                                   file_name_suffix='.jsonl')
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
  flags.mark_flags_as_required(['modality', 'output'])


def main(argv: Sequence[str]) -> None:
  if bool(FLAGS.input) == bool(FLAGS.manifest):
    raise app.UsageError('give exactly one of --input and --manifest')
  if FLAGS.input:
    items, found = items_from_folder(FLAGS.input, FLAGS.modality)
    class_names = class_names_from(FLAGS.class_names, items) if FLAGS.class_names else found
  else:
    items = items_from_manifest(FLAGS.manifest)
    class_names = class_names_from(FLAGS.class_names, items)
  opts = ConvertOptions(FLAGS.modality, class_names, sample_rate=FLAGS.sample_rate,
                        video_fps=FLAGS.video_fps, video_short_side=FLAGS.video_short_side,
                        video_max_frames=FLAGS.video_max_frames)
  report = run(items, opts, FLAGS.output, FLAGS.split, num_shards=FLAGS.num_shards,
               pipeline_args=argv[1:])
  print(f'{report.converted} of {len(items)} files converted into {FLAGS.output} '
        f'({FLAGS.split}); {len(report.bad)} skipped:')
  for bad in sorted(report.bad, key=lambda b: b['path']):
    print(f'  {bad["path"]}: {bad["reason"]}')
  if report.bad and FLAGS.fail_on_bad:
    raise SystemExit(1)


if __name__ == '__main__':
  # Run the importable module's main, not this __main__ copy: Beam's worker processes
  # (multi_processing, Dataflow) must find _ConvertFn under its module name to unpickle it.
  from polyvit_tf.data import convert as _convert  # pylint: disable=import-self
  _convert.define_flags()
  app.run(_convert.main)
