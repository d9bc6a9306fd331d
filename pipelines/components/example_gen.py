"""PolyViTExampleGen: every task's data (TFDS, TFRecords of media, demo) in one Examples artifact."""


from absl import logging
from tfx import v1 as tfx
from tfx.types import artifact_utils

from pipelines import examples as examples_lib
from polyvit_tf.configs import io as config_io


@tfx.dsl.components.component
def PolyViTExampleGen(  # pylint: disable=invalid-name
    examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    config_json: tfx.dsl.components.Parameter[str],
    num_shards: tfx.dsl.components.Parameter[int] = 1):
  """Writes `<task>_{train,eval[,validation]}` splits of tf.Examples (GZIP TFRecords)."""
  config = config_io.loads(config_json)
  counts = examples_lib.write_splits(config, examples.uri, num_shards)
  for split, n in counts.items():
    logging.info('PolyViTExampleGen: %s: %d examples', split, n)
    examples.set_int_custom_property(f'num_examples/{split}', n)
  examples.split_names = artifact_utils.encode_split_names(list(counts))
  # What StatisticsGen / ExampleValidator / tfx-bsl read to know how to decode the files.
  examples.set_string_custom_property('payload_format', 'FORMAT_TF_EXAMPLE')
  examples.set_string_custom_property('file_format', 'tfrecords_gzip')
