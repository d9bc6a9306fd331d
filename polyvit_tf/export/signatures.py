"""Serving signatures of a PolyViT: one per task on preprocessed tensors, plus raw-input ones.

Signature names (for task `t`):
  t            preprocessed tensor, float32 (batch, *input_shape), input key = the modality
               (`image`, `audio`, `video`). `serving_default` is the first task's.
  t_raw        raw media, preprocessed in the graph by polyvit_tf.data.preprocess (the same
               functions the evaluation pipeline uses):
                 image: `encoded`      string (batch,)         JPEG / PNG bytes
                 audio: `wav`          string (batch,)         WAV bytes
                 video: `jpeg_frames`  string (batch, frames)  JPEG bytes per frame; empty
                                                               strings are padding (dropped)
  t_frames     video only: `frames` uint8 (batch, T, H, W, 3), decoded RGB frames.

Every signature returns
  logits        float32 (batch, classes)
  probabilities float32 (batch, classes): sigmoid per class for multi-label tasks, softmax
                otherwise
  top_k_ids     int32 (batch, k), classes by decreasing probability, k = min(top_k, classes)
  top_k_scores  float32 (batch, k)
  top_k_names   string (batch, k): class names from `tasks.<t>.class_names` (`class_<i>`
                when empty), embedded in the graph as a constant.

Hostile input: every raw signature checks its request before decoding anything (so the
TF Serving binary, which only loads this SavedModel, is protected too): at most
MAX_RAW_BATCH rows, then per example the decode budgets of polyvit_tf.data.options
(polyvit_tf.data.preprocess applies them); examples are preprocessed RAW_PARALLEL_EXAMPLES
at a time, which bounds a request's peak memory. A breach fails the call with an
InvalidArgumentError whose message names the limit and the value.

Multi-view inputs (audio clips, video crops: `tasks.<t>.eval_views` views per example) are
combined in the raw signatures exactly as the evaluator combines them (`eval.view_averaging`):
'logits' (the default, as ViViT's and Scenic's multi-crop test) averages the logits and applies
the sigmoid / softmax to the mean, 'probs' averages the per-view probabilities. `logits` is the
mean of the views' logits either way; top-k ranks the returned probabilities.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import ml_collections
import tensorflow as tf

from polyvit_tf.configs import base
from polyvit_tf.data import errors
from polyvit_tf.model import PolyViT

OUTPUT_KEYS = ('logits', 'probabilities', 'top_k_ids', 'top_k_scores', 'top_k_names')
NUMERIC_OUTPUT_KEYS = OUTPUT_KEYS[:-1]
DEFAULT_TOP_K = 5
MAX_RAW_BATCH = 256          # rows of one raw-signature request
RAW_PARALLEL_EXAMPLES = 2    # examples of one request decoded at the same time


@dataclasses.dataclass(frozen=True)
class Signature:
  """One serving signature: its name, the task, input kind, the function and its input spec."""
  name: str
  task: str
  kind: str  # 'tensor' | 'raw' | 'frames'
  input_spec: tf.TensorSpec
  fn: Callable[[tf.Tensor], dict[str, tf.Tensor]]


def class_names(config: ml_collections.ConfigDict, task: str) -> list[str]:
  """`tasks.<task>.class_names`, or `class_<i>` for each class when the config has none."""
  t = config.tasks[task]
  names = [str(n) for n in (t.class_names or ())]
  return names or [f'class_{i}' for i in range(int(t.num_classes))]


def activation(logits: tf.Tensor, multilabel: bool) -> tf.Tensor:
  """Per-class sigmoid (multi-label) or softmax over classes."""
  return tf.math.sigmoid(logits) if multilabel else tf.nn.softmax(logits, axis=-1)


def head_outputs(logits: tf.Tensor, *, multilabel: bool, names: list[str], top_k: int,
                 probabilities: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
  """The signature outputs of a batch of logits (batch, classes) (and probabilities, when
  they are not the activation of `logits`, e.g. averaged over views)."""
  logits = tf.cast(logits, tf.float32)
  if probabilities is None:
    probabilities = activation(logits, multilabel)
  k = min(top_k, len(names))
  scores, ids = tf.math.top_k(probabilities, k=k)
  return {
      'logits': logits,
      'probabilities': probabilities,
      'top_k_ids': tf.cast(ids, tf.int32),
      'top_k_scores': scores,
      'top_k_names': tf.gather(tf.constant(names, dtype=tf.string), ids),
  }


VIEW_AVERAGING = base.VIEW_AVERAGING


def view_averaging(config: ml_collections.ConfigDict) -> str:
  """`eval.view_averaging` (the first of VIEW_AVERAGING, 'logits', when the config has none)."""
  mode = config.get('eval', {}).get('view_averaging', VIEW_AVERAGING[0])
  if mode not in VIEW_AVERAGING:
    raise ValueError(f'eval.view_averaging must be one of {list(VIEW_AVERAGING)}, got '
                     f'{mode!r}.')
  return mode


def combine_views(view_logits: tf.Tensor, *, multilabel: bool,
                  mode: str) -> tuple[tf.Tensor, tf.Tensor]:
  """(logits, probabilities) of (batch, V, classes) view logits, combined as the evaluator."""
  view_logits = tf.cast(view_logits, tf.float32)
  logits = tf.reduce_mean(view_logits, axis=1)
  if mode == 'probs':
    return logits, tf.reduce_mean(activation(view_logits, multilabel), axis=1)
  return logits, activation(logits, multilabel)


def _view_logits(model: PolyViT, task: str, views: tf.Tensor) -> tf.Tensor:
  """Logits (batch, V, classes) of (batch, V, *input_shape) inputs."""
  flat = tf.reshape(views, (-1,) + model.input_shape(task))
  logits = model.model_for(task)(flat, training=False)
  return tf.reshape(logits, (tf.shape(views)[0], tf.shape(views)[1],
                             model.task(task).num_classes))


def _raw_kinds(model: PolyViT, config: ml_collections.ConfigDict, task: str):
  """(suffix, input spec, per-example preprocessing -> (V, *input_shape)) of a task's modality.

  The preprocessing is polyvit_tf.data.preprocess, imported (not rewritten) so that serving
  and evaluation cannot skew.
  """
  from polyvit_tf.data import preprocess  # pylint: disable=import-outside-toplevel

  spec = model.task(task)
  mod = model.modalities[spec.modality]
  kwargs = preprocess.task_kwargs(config, task)  # views, normalisation, frame stride, ...
  if spec.modality == 'image':
    return [('raw', tf.TensorSpec((None,), tf.string, name='encoded'),
             lambda encoded: preprocess.image_from_encoded(encoded, mod)[tf.newaxis])]
  if spec.modality == 'audio':
    return [('raw', tf.TensorSpec((None,), tf.string, name='wav'),
             lambda wav: preprocess.audio_from_wav(wav, mod, **kwargs))]
  if spec.modality == 'video':

    def from_jpegs(frames):
      # Rows of a batch may have different lengths: empty strings pad the short ones.
      frames = tf.boolean_mask(frames, tf.strings.length(frames) > 0)
      return preprocess.video_from_frames(frames, mod, **kwargs)

    return [
        ('raw', tf.TensorSpec((None, None), tf.string, name='jpeg_frames'), from_jpegs),
        ('frames', tf.TensorSpec((None, None, None, None, 3), tf.uint8, name='frames'),
         lambda frames: preprocess.video_from_frames(frames, mod, **kwargs)),
    ]
  raise ValueError(f'task {task!r}: no raw-input signature for modality {spec.modality!r}.')


def task_signatures(model: PolyViT, config: ml_collections.ConfigDict, task: str, *,
                    top_k: int = DEFAULT_TOP_K, raw: bool = True) -> list[Signature]:
  """The signatures of one task: the tensor one first, then its raw-input ones."""
  spec = model.task(task)
  names = class_names(config, task)
  tensor_spec = tf.TensorSpec((None,) + model.input_shape(task), tf.float32,
                              name=spec.modality)

  def tensor_fn(x):
    return head_outputs(model.model_for(task)(x, training=False),
                        multilabel=spec.multilabel, names=names, top_k=top_k)

  sigs = [Signature(task, task, 'tensor', tensor_spec, tensor_fn)]
  if not raw:
    return sigs
  example_shape = (None,) + model.input_shape(task)  # (V, *input_shape)
  mode = view_averaging(config)

  def raw_fn(preprocess_one):
    def fn(x):
      rows = tf.shape(x, out_type=tf.int64)[0]
      check = errors.assert_checks([(
          rows > MAX_RAW_BATCH, errors.OVER_BUDGET,
          errors.text('request of ', rows, ' examples exceeds the limit of ',
                      str(MAX_RAW_BATCH), ' examples per raw-input request (MAX_RAW_BATCH)'))])
      views = tf.map_fn(
          preprocess_one, errors.gated(x, check),
          fn_output_signature=tf.TensorSpec(example_shape, tf.float32),
          parallel_iterations=RAW_PARALLEL_EXAMPLES)
      logits, probabilities = combine_views(_view_logits(model, task, views),
                                            multilabel=spec.multilabel, mode=mode)
      return head_outputs(logits, multilabel=spec.multilabel, names=names, top_k=top_k,
                          probabilities=probabilities)
    return fn

  for suffix, input_spec, preprocess_one in _raw_kinds(model, config, task):
    sigs.append(Signature(f'{task}_{suffix}', task, suffix, input_spec,
                          raw_fn(preprocess_one)))
  return sigs


def all_signatures(model: PolyViT, config: ml_collections.ConfigDict, *,
                   top_k: int = DEFAULT_TOP_K, raw: bool = True) -> list[Signature]:
  """Every task's signatures, tasks in config order (so the first is `serving_default`)."""
  return [s for task in model.task_names
          for s in task_signatures(model, config, task, top_k=top_k, raw=raw)]
