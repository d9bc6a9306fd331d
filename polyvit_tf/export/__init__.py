"""Export of a trained PolyViT: SavedModel (one signature per task, TF Serving layout), TFLite.

  export_saved_model(workdir, out_dir, *, version=None) -> '<out_dir>/<version>'
  export_tflite(saved_model_dir, out_path, *, quantization='float32', tasks=None) -> out_path
      (+ labels and a manifest with each task's preprocessing, also embedded in the .tflite;
      polyvit_tf/edge reproduces the preprocessing in NumPy for apps)

Reports (size vs single-task files, agreement with the SavedModel, latency) and the
agreement gate: `report`.
Command line: `python -m polyvit_tf.export --workdir=<run> --out=<dir> [--format=tflite]`.
See docs/serving.md.
"""

from polyvit_tf.export.savedmodel import export_model
from polyvit_tf.export.savedmodel import export_saved_model
from polyvit_tf.export.savedmodel import latest_version_dir
from polyvit_tf.export.savedmodel import read_config
from polyvit_tf.export.savedmodel import read_metadata
from polyvit_tf.export.tflite import export_tflite

__all__ = ['export_model', 'export_saved_model', 'export_tflite', 'latest_version_dir',
           'read_config', 'read_metadata']
