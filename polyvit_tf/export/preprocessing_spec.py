"""What an app needs to reproduce a task's serving preprocessing, as a JSON-able dict.

Every value is read from the task's resolved options (polyvit_tf.configs.specs: geometry,
views, normalisation, stride, crops; `eval.view_averaging`) or from the constants of the
preprocessing code the SavedModel's raw signatures run (data/image.py, audio.py, video.py,
filterbank.py); nothing is typed a second time. The description is the modality module's
(`preprocessing_spec` in polyvit_tf/modalities/<m>.py, with the shared pieces of
modalities/describe.py). The TFLite manifest carries it per task (export/tflite.py,
`preprocessing` and `combine_views`) and polyvit_tf/edge/reference_preprocess.py executes it.
"""

from __future__ import annotations

import ml_collections

from polyvit_tf.configs import specs as specs_lib

FORMAT = 'polyvit_tf.preprocessing/1'


def for_task(config: ml_collections.ConfigDict, task: str) -> dict | None:
  """The preprocessing of `task` as its modality describes it (None: no description)."""
  spec = specs_lib.resolve(config)
  return spec.modality_of(task).impl.preprocessing_spec(spec.data[task].options)


def combine_views(config: ml_collections.ConfigDict) -> dict:
  """How the views of one example are combined (the evaluator's eval.view_averaging)."""
  return {'mode': specs_lib.resolve(config).eval.view_averaging,
          'doc': 'logits = mean of the view logits; probabilities = mean of the views\' '
                 'probabilities (probs) or the activation of the mean logits (logits)'}
