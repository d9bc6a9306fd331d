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

import importlib

__all__ = ['train_dataset', 'eval_dataset', 'bad_example_summary']
_HOMES = {'train_dataset': 'pipeline', 'eval_dataset': 'pipeline',
          'bad_example_summary': 'errors'}


def __getattr__(name: str):
  # Lazily, so that importing one library of the package (e.g. data.image, which the
  # modality modules use) does not import the pipelines, and through them the config specs.
  if name in _HOMES:
    return getattr(importlib.import_module(f'polyvit_tf.data.{_HOMES[name]}'), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
