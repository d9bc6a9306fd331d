"""The tf.Example format of polyvit_tf TFRecords (what TFX ExampleGen reads and emits).

Every example has
  id                 bytes    example id or source path, used in error messages
  labels             int64[]  class ids: one for single-label tasks, any number for
                              multi-label tasks (a scalar `label` int64 is also accepted)
and the payload features of its modality (polyvit_tf/modalities/<m>.py documents them, e.g.
`image/encoded`, `audio/pcm16`, `video/frames`).

`parse(serialized, modality)` returns the canonical dict {'id', 'labels', **payload}, the form
every source (TFRecords, TFDS) maps its examples to before decoding; `example(...)` writes one.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from polyvit_tf import modalities

ID = 'id'
LABELS = 'labels'
LABEL = 'label'


def _common_spec() -> dict:
  return {
      ID: tf.io.FixedLenFeature([], tf.string, default_value=''),
      LABELS: tf.io.VarLenFeature(tf.int64),
      LABEL: tf.io.VarLenFeature(tf.int64),
  }


def feature_spec(modality: str) -> dict:
  """tf.io.parse_single_example spec of one modality's examples."""
  return {**_common_spec(), **modalities.get(modality).feature_spec()}


def canonical_structure(modality: str) -> dict:
  """TensorSpecs of the canonical dict: {'id', 'labels', **the modality's payload}."""
  return {'id': tf.TensorSpec([], tf.string), 'labels': tf.TensorSpec([None], tf.int64),
          **modalities.get(modality).payload_spec()}


def parse(serialized: tf.Tensor, modality: str, *, serving: bool = False) -> dict:
  """One serialized tf.Example -> the modality's canonical dict (no media decoding);
  `serving`: with TensorFlow's core ops only (the modality's `serving_parse`)."""
  f = tf.io.parse_single_example(serialized, feature_spec(modality))
  labels = tf.concat([tf.sparse.to_dense(f[LABELS]), tf.sparse.to_dense(f[LABEL])], axis=0)
  impl = modalities.get(modality)
  payload = impl.serving_parse(f) if serving else impl.parse(f)
  return {'id': f[ID], 'labels': labels, **payload}


# ------------------------------------------------------------------ writing (Python side)
def bytes_feature(values: Sequence[bytes]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def int64_feature(values: Sequence[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def float_feature(values: Sequence[float]) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _labels(labels: int | Sequence[int]) -> list[int]:
  return [int(labels)] if np.isscalar(labels) else [int(l) for l in labels]


def example(example_id: str, labels: int | Sequence[int],
            payload: Mapping[str, tf.train.Feature]) -> tf.train.Example:
  """An example from its id, label(s) and payload features (a modality's)."""
  feats = {ID: bytes_feature([example_id.encode()]), LABELS: int64_feature(_labels(labels)),
           **payload}
  return tf.train.Example(features=tf.train.Features(feature=feats))
