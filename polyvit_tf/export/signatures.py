"""Serving signatures of a PolyViT: one per task on preprocessed tensors, plus raw-input ones.

Signature names (for task `t`):
  t            preprocessed tensor, float32 (batch, *input_shape), input key = the modality
               (`image`, `audio`, `video`, ...). `serving_default` is the first task's.
  t_<suffix>   raw media, preprocessed in the graph by the task's modality module
               (polyvit_tf/modalities/<m>.py, `raw_inputs`: the same functions the
               evaluation pipeline uses):
                 image: t_raw     `encoded`      string (batch,)         JPEG / PNG bytes
                 audio: t_raw     `wav`          string (batch,)         WAV bytes
                 video: t_raw     `jpeg_frames`  string (batch, frames)  JPEG bytes per frame;
                                                 empty strings are padding (dropped)
                        t_frames  `frames`       uint8 (batch, T, H, W, 3), decoded RGB frames
  t_examples    serialized tf.Example, `examples` string (batch,): the task's examples as
                the TFRecords hold them (polyvit_tf/data/features.py), parsed and
                preprocessed exactly as evaluation does (features.parse, then the modality's
                `eval_inputs`), so TFX's standard Evaluator (TFMA) and BulkInferrer can run
                the model on an Examples artifact; labels are not needed and are ignored

Every signature returns the task's prediction (polyvit_tf/model/prediction.py, the path the
evaluators use):
  logits        float32 (batch, classes): the mean of the views' logits
  probabilities float32 (batch, classes): the activation the task's loss trains (sigmoid per
                class for sigmoid_xent, softmax for softmax_xent), views combined per
                `eval.view_averaging`
  top_k_ids     int32 (batch, k), classes by decreasing probability, k = min(top_k, classes)
  top_k_scores  float32 (batch, k)
  top_k_names   string (batch, k): class names from `tasks.<t>.class_names` (`class_<i>`
                when empty), embedded in the graph as a constant.
The tensor signatures take one view per row; the raw ones `tasks.<t>.eval_views` views per
example, combined per `eval.view_averaging` ('logits', the default as ViViT's and Scenic's
multi-crop test, averages the logits and applies the activation to the mean; 'probs' averages
the views' probabilities), evaluated at most `eval.max_clips_per_pass` at a time when that is
set.

Hostile input: every raw and examples signature checks its request before decoding anything
(so the TF Serving binary, which only loads this SavedModel, is protected too): at most
MAX_RAW_BATCH rows, then per example the decode budgets of polyvit_tf.data.options (the
modality module's raw preprocessing applies them; for tf.Examples its `eval_inputs` checks
them before decoding, as in evaluation); examples are preprocessed RAW_PARALLEL_EXAMPLES at a
time, which bounds a request's peak memory. A breach fails the call with an
InvalidArgumentError whose message names the limit and the value (tf.Examples: the task, the
row, the example's id and the reason; an example evaluation would skip fails the request).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import ml_collections
import tensorflow as tf

from polyvit_tf import modalities
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import errors
from polyvit_tf.data import features
from polyvit_tf.model import PolyViT
from polyvit_tf.model import prediction as prediction_lib

OUTPUT_KEYS = ('logits', 'probabilities', 'top_k_ids', 'top_k_scores', 'top_k_names')
NUMERIC_OUTPUT_KEYS = OUTPUT_KEYS[:-1]
DEFAULT_TOP_K = 5
MAX_RAW_BATCH = 256          # rows of one raw-signature request
RAW_PARALLEL_EXAMPLES = 2    # examples of one request decoded at the same time
EXAMPLES = 'examples'        # suffix and input key of the tf.Example signatures


@dataclasses.dataclass(frozen=True)
class Signature:
  """One serving signature: its name, the task, input kind, the function and its input spec."""
  name: str
  task: str
  kind: str  # 'tensor', a raw input's suffix ('raw', 'frames', ...) or EXAMPLES
  input_spec: tf.TensorSpec
  fn: Callable[[tf.Tensor], dict[str, tf.Tensor]]


def head_outputs(prediction: prediction_lib.Prediction, *, names: Sequence[str],
                 top_k: int) -> dict[str, tf.Tensor]:
  """The signature outputs of a batch's prediction."""
  k = min(top_k, len(names))
  scores, ids = tf.math.top_k(prediction.probabilities, k=k)
  return {
      'logits': prediction.logits,
      'probabilities': prediction.probabilities,
      'top_k_ids': tf.cast(ids, tf.int32),
      'top_k_scores': scores,
      'top_k_names': tf.gather(tf.constant(list(names), dtype=tf.string), ids),
  }


def task_signatures(model: PolyViT, config: ml_collections.ConfigDict, task: str, *,
                    top_k: int = DEFAULT_TOP_K, raw: bool = True) -> list[Signature]:
  """The signatures of one task: the tensor one first, then its raw-input ones, then its
  tf.Example one."""
  spec = specs_lib.resolve(config)
  t, geometry = spec.task(task), spec.modality_of(task)
  keras_model = model.model_for(task)
  logits_fn = lambda x: keras_model(x, training=False)  # noqa: E731
  predicting = prediction_lib.PredictionSpec.of(spec, task)
  tensor_spec = tf.TensorSpec((None,) + geometry.input_shape, tf.float32, name=t.modality)

  def tensor_fn(x):  # the rows it is sent, one view each, in one pass
    return head_outputs(prediction_lib.predict_one_view(logits_fn, x, predicting),
                        names=t.class_names, top_k=top_k)

  sigs = [Signature(task, task, 'tensor', tensor_spec, tensor_fn)]
  if not raw:
    return sigs
  modality, opts = geometry.impl, spec.data[task].options

  def batch_fn(preprocess_one, example_spec: tf.TensorSpec):
    """A signature function: the row limit, then `preprocess_one` on each row (its views,
    RAW_PARALLEL_EXAMPLES at a time), then the one prediction path."""
    def fn(x):
      rows = tf.shape(x, out_type=tf.int64)[0]
      check = errors.assert_checks([(
          rows > MAX_RAW_BATCH, errors.OVER_BUDGET,
          errors.text('request of ', rows, ' examples exceeds the limit of ',
                      str(MAX_RAW_BATCH), ' examples per raw-input request (MAX_RAW_BATCH)'))])
      views = tf.map_fn(preprocess_one, errors.gated(x, check),
                        fn_output_signature=example_spec,
                        parallel_iterations=RAW_PARALLEL_EXAMPLES)
      return head_outputs(prediction_lib.predict(logits_fn, views, predicting),
                          names=t.class_names, top_k=top_k)
    return fn

  raw_views = tf.TensorSpec((None,) + geometry.input_shape, tf.float32)  # (V, *input_shape)
  for raw_input in modality.raw_inputs(opts):
    sigs.append(Signature(f'{task}_{raw_input.suffix}', task, raw_input.suffix,
                          raw_input.spec, batch_fn(raw_input.views, raw_views)))
  eval_views = tf.TensorSpec((spec.data[task].num_views,) + geometry.input_shape, tf.float32)
  sigs.append(Signature(f'{task}_{EXAMPLES}', task, EXAMPLES,
                        tf.TensorSpec((None,), tf.string, name=EXAMPLES),
                        batch_fn(example_views(task, t.modality, opts), eval_views)))
  return sigs


# errors.REASONS as a tensor's values, indexed by the status code.
_REASON_TEXTS = [errors.reason_message(code) for code in range(max(errors.REASONS) + 1)]


def example_views(task: str, modality: str, opts) -> Callable[[tf.Tensor], tf.Tensor]:
  """One serialized tf.Example -> float32 views (V, *input_shape), as evaluation makes them
  (polyvit_tf.data.pipeline.eval_dataset: features.parse, with core TF ops only, then the
  modality's `eval_inputs`, which checks the decode budgets before decoding); an
  InvalidArgumentError naming the task, the example's id, the reason and the failed check's
  message when evaluation would skip it as bad."""
  def views(serialized):
    example = features.parse(serialized, modality, serving=True)
    impl = modalities.get(modality)
    inputs, status = impl.eval_inputs(example, opts)
    checks = impl.eval_checks(example, opts)
    detail = errors.first_failure(checks)[1] if checks else tf.constant('')
    reason = tf.gather(tf.constant(_REASON_TEXTS), tf.clip_by_value(
        status, 0, len(_REASON_TEXTS) - 1))
    example_id = tf.where(tf.strings.length(example['id']) > 0, example['id'], '(no id)')
    check = tf.debugging.Assert(tf.equal(status, errors.OK), [errors.text(
        'task ', task, ': tf.Example ', example_id, ': ', reason, ': ',
        tf.where(tf.strings.length(detail) > 0, detail, '-'))], summarize=1)
    return errors.gated(inputs, check)
  return views


def all_signatures(model: PolyViT, config: ml_collections.ConfigDict, *,
                   top_k: int = DEFAULT_TOP_K, raw: bool = True) -> list[Signature]:
  """Every task's signatures, tasks in config order (so the first is `serving_default`)."""
  return [s for task in model.task_names
          for s in task_signatures(model, config, task, top_k=top_k, raw=raw)]
