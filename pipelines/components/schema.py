"""A curated schema per task, derived from the config (the label domain SchemaGen cannot know).

An inferred schema learns the label range from the data it is shown, so a data set whose
labels fall outside the task's classes would be accepted. The config knows the classes: each
task's schema requires `id` and `labels` with an int domain [0, num_classes - 1] (exactly one
value for single-label tasks) and the modality's payload features (its module's
`schema_features`); TFDV then reports an out-of-range label or a missing feature as an anomaly
of that task's splits.
"""


import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx.utils import io_utils

from polyvit_tf import modalities
from polyvit_tf.data import features

_KINDS = {'bytes': schema_pb2.BYTES, 'int': schema_pb2.INT, 'float': schema_pb2.FLOAT}


def _feature(schema: schema_pb2.Schema, name: str, kind: int, required: bool):
  f = schema.feature.add()
  f.name, f.type = name, kind
  f.presence.min_fraction = 1.0 if required else 0.0
  f.presence.min_count = 1 if required else 0
  return f


def task_schema(modality: str, num_classes: int, multilabel: bool) -> schema_pb2.Schema:
  """The schema one task's examples must satisfy."""
  schema = schema_pb2.Schema()
  ident = _feature(schema, features.ID, schema_pb2.BYTES, True)
  ident.value_count.min = ident.value_count.max = 1
  labels = _feature(schema, features.LABELS, schema_pb2.INT, True)
  labels.int_domain.min, labels.int_domain.max = 0, num_classes - 1
  labels.value_count.min = 1
  if not multilabel:
    labels.value_count.max = 1
  # The modality's payload features (polyvit_tf/modalities/<m>.py, `schema_features`);
  # a required one holds exactly one value unless it is a sequence (e.g. video frames).
  impl = modalities.get(modality)
  spec = impl.feature_spec()
  for name, kind, required in impl.schema_features():
    f = _feature(schema, name, _KINDS[kind], required)
    if required and not isinstance(spec.get(name), tf.io.VarLenFeature):
      f.value_count.min = f.value_count.max = 1
  return schema


@tfx.dsl.components.component
def TaskSchemaGen(  # pylint: disable=invalid-name
    schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    task_json: tfx.dsl.components.Parameter[str]):
  """Writes the schema of one task (`task_json`: {"modality", "num_classes", "multilabel"})."""
  task = json.loads(task_json)
  io_utils.write_pbtxt_file(
      os.path.join(schema.uri, 'schema.pbtxt'),
      task_schema(task['modality'], int(task['num_classes']), bool(task['multilabel'])))
