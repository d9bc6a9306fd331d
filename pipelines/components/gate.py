"""Stops the run before training when ExampleValidator found anomalies in a task's data."""


import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils


class DataAnomaliesError(RuntimeError):
  """The task's data has anomalies; the message lists split, feature and description."""


def anomaly_lines(anomalies_uri: str, splits: list[str]) -> list[str]:
  """`<split>: <feature>: <description>` for every anomaly ExampleValidator recorded."""
  lines = []
  for split in splits:
    directory = os.path.join(anomalies_uri, f'Split-{split}')
    for name in tf.io.gfile.listdir(directory):
      result = anomalies_pb2.Anomalies()
      result.ParseFromString(tf.io.gfile.GFile(os.path.join(directory, name), 'rb').read())
      for feature, info in sorted(result.anomaly_info.items()):
        lines.append(f'{split}: {feature}: {info.short_description} ({info.description})')
      if result.HasField('dataset_anomaly_info'):
        lines.append(f'{split}: dataset: {result.dataset_anomaly_info.description}')
  return lines


@tfx.dsl.components.component
def DataValidationGate(  # pylint: disable=invalid-name
    anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies],
    task: tfx.dsl.components.Parameter[str]):
  """Fails (and so blocks the Trainer) when `task`'s splits have anomalies."""
  lines = anomaly_lines(anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names))
  if lines:
    raise DataAnomaliesError(
        f'task {task!r}: ExampleValidator found {len(lines)} anomalies; not training:\n  '
        + '\n  '.join(lines))
