"""TFDS data sets as a Source: `data.source = 'tfds:<name>[/<config>][:<version>]'`.

The builder must be prepared already (nothing is downloaded at run time); `data.data_dir`
selects its directory (default: TFDS's, $TFDS_DATA_DIR or ~/tensorflow_datasets). A data set
that is not there fails when the source is opened, with a DataSourceError naming the task,
the data set, the directory searched and the `tfds build` command that prepares it. Splits
are TFDS split strings, so the paper's validation slices work (`train[:98%]`, `train[98%:]`).
Images and video frames are read encoded (tfds.decode.SkipDecoding) and decoded by our
pipeline, where a corrupt one is counted and skipped. The input feature is the one named
after the modality, else the first Image / Audio / Video feature (or `data.input_key`); the
label is `label` or the first ClassLabel, or a Sequence of ClassLabel for multi-label sets
(or `data.label_key`); the id is the `id`, `file_name` or `filename` text feature when there
is one, else `<name>/<split>#<position>` (feature_keys).
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from polyvit_tf import error_text
from polyvit_tf import modalities
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.data import errors
from polyvit_tf.data import sources


def _is_class_label(feature) -> bool:
  return isinstance(feature, tfds.features.ClassLabel)


def _is_label_sequence(feature) -> bool:
  return (isinstance(feature, tfds.features.Sequence) and
          _is_class_label(feature.feature))


def feature_keys(feats, impl, *, input_key: str = '', label_key: str = '',
                 where: str = '') -> tuple[str, str, str]:
  """(input, label, id) feature keys of a TFDS FeaturesDict for modality `impl` (see the
  module docstring); ConfigError naming `where` when the set has no such feature."""
  feature_type = getattr(tfds.features, impl.tfds_feature)
  listed = f'features: {list(feats.keys())}'

  def find(predicate, what: str) -> str:
    key = next((k for k, f in feats.items() if predicate(f)), None)
    if key is None:
      raise ConfigError(f'{where} has no {what}; {listed}.')
    return key

  for field, key in (('input_key', input_key), ('label_key', label_key)):
    if key and key not in feats:
      raise ConfigError(f'{where}: data.{field} {key!r} is not one of its {listed}.')
  of_type = lambda f: isinstance(f, feature_type)
  if not input_key:
    if impl.name in feats and of_type(feats[impl.name]):
      input_key = impl.name  # e.g. 'image' rather than an image-typed 'segmentation_mask'
    else:
      input_key = find(of_type, f'{impl.tfds_feature} feature (set data.input_key)')
  if not label_key:
    if 'label' in feats and _is_class_label(feats['label']):
      label_key = 'label'
    else:
      label_key = find(lambda f: _is_class_label(f) or _is_label_sequence(f),
                       'ClassLabel or Sequence(ClassLabel) feature (set data.label_key)')
  id_key = next((k for k in ('id', 'file_name', 'filename')
                 if k in feats and isinstance(feats[k], tfds.features.Text)), '')
  return input_key, label_key, id_key


def build_command(name: str, builder_cls, data_dir: str) -> str:
  """The `tfds build` command that prepares `name` (`<name>[/<config>][:<version>]`) in
  `data_dir`: a builder with configs gets its default one (a bare name builds them all), one
  with manual downloads the `--manual_dir` flag."""
  base, _, version = name.partition(':')
  if '/' not in base and getattr(builder_cls, 'BUILDER_CONFIGS', None):
    default = getattr(builder_cls, 'DEFAULT_BUILDER_CONFIG_NAME', None)
    base = f'{base}/{default or builder_cls.BUILDER_CONFIGS[0].name}'
  command = f'tfds build {base}{":" + version if version else ""} --data_dir={data_dir}'
  if getattr(builder_cls, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None):
    command += ' --manual_dir=<directory of the files downloaded by hand>'
  return command


def _versions(directory: str) -> list[str]:
  if not tf.io.gfile.isdir(directory):
    return []
  return sorted(v.rstrip('/') for v in tf.io.gfile.listdir(directory)
                if tf.io.gfile.exists(os.path.join(directory, v, 'dataset_info.json')))


def _prepared_builder(name: str, data_dir: str | None, description: str, task: str):
  """The TFDS builder of `name`, prepared in `data_dir`; DataSourceError saying how to prepare
  it otherwise (nothing is downloaded)."""
  root = data_dir or tfds.core.constants.get_default_data_dir()
  where = f'task {task}: data.source {description!r}'
  try:
    builder_cls = tfds.builder_cls(name.partition(':')[0].partition('/')[0])
  except tfds.core.registered.DatasetNotFoundError:
    builder_cls = None
  builder, reason = None, ''
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    pass  # not in the catalog and no prepared files: the message below says what to do
  except Exception as e:  # pylint: disable=broad-except
    reason = f' TFDS: {error_text.short(e, limit=400)}.'  # e.g. a version the code lacks
  if builder is not None and builder.is_prepared():
    return builder
  searched = builder.data_dir if builder is not None else os.path.join(
      root, name.partition(':')[0])
  found = _versions(os.path.dirname(searched) if builder is not None else searched)
  message = (f'{where}: the TFDS data set {name!r} is not prepared in {root} (searched '
             f'{searched}{"; versions there: " + ", ".join(found) if found else ""}).'
             f'{reason} ')
  if builder_cls is None:
    message += (f'{name!r} is not in the TFDS catalog: prepare it with its own builder, '
                f'`tfds build <path to its builder module> --data_dir={root}`, or '
                f'tfds.dataset_builders.store_as_tfds_dataset(..., data_dir={root!r}).')
  else:
    message += f'Prepare it with `{build_command(name, builder_cls, root)}`'
    instructions = getattr(builder_cls, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None)
    if instructions:
      message += f' (TFDS: {" ".join(instructions.split())[:300]})'
    message += '.'
  raise errors.DataSourceError(message)


class TFDSSource(sources.Source):
  """A prepared TFDS data set."""

  def __init__(self, name: str, modality: str, description: str, task: str, *,
               data_dir: str | None = None, input_key: str = '', label_key: str = ''):
    self.name = name
    self.modality = modality
    self.description = description
    self.task = task
    self.impl = modalities.get(modality)
    if not self.impl.tfds_feature:
      raise errors.DataSourceError(f'task {task}: data.source {description!r}: modality '
                                   f'{modality!r} has no TFDS reader.')
    self.builder = _prepared_builder(name, data_dir, description, task)
    feats = self.builder.info.features
    self.input_key, self.label_key, self.id_key = feature_keys(
        feats, self.impl, input_key=input_key, label_key=label_key,
        where=f'task {task}: {description}')
    self.input_feature = feats[self.input_key]
    self._counts: dict[str, int] = {}

  def _dataset(self, split: str) -> tf.data.Dataset:
    decoders = None
    if self.impl.tfds_encoded:
      decoders = {self.input_key: tfds.decode.SkipDecoding()}
    try:
      return self.builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
    except Exception as e:  # pylint: disable=broad-except
      raise errors.DataSourceError(
          f'task {self.task}: data.source {self.description!r}: cannot read split '
          f'{split!r} from {self.builder.data_dir}: {error_text.short(e)}') from None

  def _split_info(self, split: str):
    try:
      return self.builder.info.splits[split]
    except Exception as e:  # pylint: disable=broad-except
      raise errors.DataSourceError(
          f'task {self.task}: data.source {self.description!r}: split {split!r} cannot be '
          f'read from {self.builder.data_dir} (its splits: '
          f'{", ".join(sorted(self.builder.info.splits))}): {error_text.short(e)}') from None

  def check(self, split: str) -> None:
    self._split_info(split)
    self._dataset(split)

  def epoch_records(self, split: str, file_seed: tf.Tensor | None = None) -> tf.data.Dataset:
    del file_seed  # TFDS reads its files in a fixed order; blocks are shuffled downstream.
    keys = [self.input_key, self.label_key] + ([self.id_key] if self.id_key else [])
    prefix = f'{self.name}/{split}#'

    def keep(i, example):
      return (tf.strings.join([prefix, tf.strings.as_string(i)]),
              {k: example[k] for k in keys})

    return self._dataset(split).enumerate().map(
        tf.autograph.experimental.do_not_convert(keep))

  def num_records(self, split: str) -> int:
    """Examples of `split` (slices too), from the prepared data set's dataset_info.json."""
    if split not in self._counts:
      self._counts[split] = int(self._split_info(split).num_examples)
    return self._counts[split]

  def parse(self, raw: Any) -> dict:
    labels = tf.reshape(tf.cast(raw[self.label_key], tf.int64), [-1])
    return {'id': self.example_id(raw), 'labels': labels,
            **self.impl.tfds_payload(raw[self.input_key], self.input_feature)}

  def example_id(self, raw: Any) -> tf.Tensor:
    if self.id_key:
      return tf.strings.as_string(raw[self.id_key]) if raw[self.id_key].dtype != tf.string \
          else raw[self.id_key]
    return tf.constant('', tf.string)
