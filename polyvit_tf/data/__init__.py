"""Data for PolyViT: ingestion (TFDS, media folders / manifests -> TFRecords), tf.data
pipelines, the per-modality preprocessing libraries, and built-in demo data sets.

  pipeline.train_dataset / pipeline.eval_dataset   the per-task input pipelines
  image, audio, video, augment                     the preprocessing the modality modules
                                                   (polyvit_tf/modalities) call
  filterbank.log_mel_fbank                         Kaldi log-mel front end (AST) in tf.signal
  errors.BAD_EXAMPLES                              per-task log of skipped bad examples
  convert (CLI)                                    media -> TFRecords with Apache Beam
  stats (CLI)                                      audio normalisation statistics
  demo                                             the demo data sets (`demo:<name>` sources)

See docs/data.md.
"""

from polyvit_tf.data.errors import bad_example_summary
from polyvit_tf.data.pipeline import eval_dataset
from polyvit_tf.data.pipeline import train_dataset

__all__ = ['train_dataset', 'eval_dataset', 'bad_example_summary']
