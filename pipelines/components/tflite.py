"""TFLiteExport: the blessed model as one multi-signature .tflite file (an artifact).

Its manifest (and the artifact's `version`) records the version the evaluator picked, the one
Pusher pushes the model as (pipelines/versioning.py).
"""


import os

from tfx import v1 as tfx
from tfx.utils import path_utils

from pipelines import versioning
from polyvit_tf.export import tflite as tflite_lib

Model = tfx.types.standard_artifacts.Model
FILE_NAME = 'polyvit.tflite'


class NotBlessedError(RuntimeError):
  pass


@tfx.dsl.components.component
def TFLiteExport(  # pylint: disable=invalid-name
    model: tfx.dsl.components.InputArtifact[Model],
    blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    tflite_model: tfx.dsl.components.OutputArtifact[Model],
    quantization: tfx.dsl.components.Parameter[str] = 'float32'):
  """Converts every task's signature of the blessed SavedModel into `polyvit.tflite`."""
  if blessing.get_int_custom_property('blessed') != 1:
    raise NotBlessedError(f'{model.uri} is not blessed; refusing to export it to TFLite.')
  path = os.path.join(tflite_model.uri, FILE_NAME)
  version = versioning.blessed_version(blessing)
  tflite_lib.export_tflite(path_utils.serving_model_path(model.uri), path,
                           quantization=quantization, version=version)
  tflite_model.set_int_custom_property(versioning.VERSION_KEY, version)
  tflite_model.set_string_custom_property('format', 'tflite')
  tflite_model.set_string_custom_property('path', path)
  tflite_model.set_string_custom_property('quantization', quantization)
  tflite_model.set_string_custom_property('source_model', model.uri)
