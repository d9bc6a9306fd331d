"""TFDS data sets as a Source: `data.source = 'tfds:<name>[:<version>]'`.

The builder must be prepared already (nothing is downloaded at run time); `data.data_dir`
selects its directory (default: TFDS's). Splits are TFDS split strings, so the paper's
validation slices work (`train[:98%]`, `train[98%:]`). Images and video frames are read
encoded (tfds.decode.SkipDecoding) and decoded by our pipeline, where a corrupt one is
counted and skipped. The input feature is the first Image / Audio / Video feature (or
`data.input_key`); the label is `label` or the first ClassLabel, or a Sequence of ClassLabel
for multi-label sets (or `data.label_key`); the id is the `id`, `file_name` or `filename`
text feature when there is one, else `<name>/<split>#<position>`.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from polyvit_tf import modalities
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.data import errors
from polyvit_tf.data import sources


def _is_class_label(feature) -> bool:
  return isinstance(feature, tfds.features.ClassLabel)


def _is_label_sequence(feature) -> bool:
  return (isinstance(feature, tfds.features.Sequence) and
          _is_class_label(feature.feature))


class TFDSSource(sources.Source):
  """A prepared TFDS data set."""

  def __init__(self, name: str, modality: str, description: str, task: str, *,
               data_dir: str | None = None, input_key: str = '', label_key: str = ''):
    self.name = name
    self.modality = modality
    self.description = description
    self.task = task
    self.impl = modalities.get(modality)
    feature_type = getattr(tfds.features, self.impl.tfds_feature, None) if (
        self.impl.tfds_feature) else None
    if feature_type is None:
      raise errors.DataSourceError(f'task {task}: data.source {description!r}: modality '
                                   f'{modality!r} has no TFDS reader.')
    try:
      self.builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # pylint: disable=broad-except
      raise errors.DataSourceError(
          f'task {task}: data.source {description!r}: no TFDS builder: {e}') from None
    feats = self.builder.info.features
    of_type = lambda f: isinstance(f, feature_type)
    if not input_key and modality in feats and of_type(feats[modality]):
      input_key = modality  # e.g. 'image' rather than an image-typed 'segmentation_mask'
    self.input_key = input_key or self._find(
        feats, of_type, f'a {modality} feature (set data.input_key)')
    if input_key and input_key not in feats:
      raise ConfigError(f'task {task}: data.input_key {input_key!r} is not a '
                                   f'feature of {description} ({list(feats.keys())}).')
    if label_key:
      self.label_key = label_key
    elif 'label' in feats and _is_class_label(feats['label']):
      self.label_key = 'label'
    else:
      self.label_key = self._find(
          feats, lambda f: _is_class_label(f) or _is_label_sequence(f),
          'a ClassLabel feature (set data.label_key)')
    self.id_key = next((k for k in ('id', 'file_name', 'filename') if k in feats and
                        isinstance(feats[k], tfds.features.Text)), '')
    self.input_feature = feats[self.input_key]
    self._counts: dict[str, int] = {}

  def _find(self, feats, predicate, what: str) -> str:
    for key, feature in feats.items():
      if predicate(feature):
        return key
    raise ConfigError(f'task {self.task}: {self.description} has no {what}; features: '
                      f'{list(feats.keys())}.')

  def _dataset(self, split: str) -> tf.data.Dataset:
    decoders = None
    if self.impl.tfds_encoded:
      decoders = {self.input_key: tfds.decode.SkipDecoding()}
    try:
      return self.builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
    except Exception as e:  # pylint: disable=broad-except
      raise errors.DataSourceError(
          f'task {self.task}: data.source {self.description!r}: cannot read split '
          f'{split!r} (is the data set prepared in {self.builder.data_dir}?): {e}') from None

  def check(self, split: str) -> None:
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
    if split not in self._counts:
      n = None
      if tf.io.gfile.exists(self.builder.data_dir):
        try:
          n = int(self.builder.info.splits[split].num_examples)
        except Exception:  # pylint: disable=broad-except
          n = None
      if n is None:
        n = int(self._dataset(split).reduce(tf.constant(0, tf.int64), lambda c, _: c + 1))
      self._counts[split] = n
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
