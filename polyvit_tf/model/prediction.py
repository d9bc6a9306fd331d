"""One prediction path per task: views -> combined logits -> probabilities.

Training's evaluation (polyvit_tf/train/evaluation.py), the exported signatures
(polyvit_tf/export/signatures.py) and the TFX evaluator (pipelines/evaluation.py) all call
`predict`, so the probabilities that are served are the scores that were evaluated and blessed.

The activation rule: a task's probabilities are the activation its loss trains, a sigmoid per
class for `sigmoid_xent` (multi-label tasks, and image tasks, which the original code trains
BiT style whether or not they are multi-label) and a softmax over classes for `softmax_xent`.

Views (multi-crop: video temporal x spatial crops, audio windows; one for images) are combined
per `eval.view_averaging`: 'probs' averages the views' probabilities, 'logits' averages the
logits and applies the activation to the mean. The returned `logits` are the views' mean
either way.

Memory: with `eval.max_clips_per_pass` = n > 0 the B x V views of a batch run through the
model in ceil(B x V / n) passes of equal size (at most n views each, the last padded by fewer
views than there are passes), one pass after the other (the same numbers as one pass); 0 runs
them all at once. Examples of a single view (images) always run as one pass of the batch:
there eval.batch_size already bounds the memory. The default, 2, is the original's (ViViT's
multi-crop test, which Scenic's video configs run with `multicrop_clips_per_device = 2`: two
clips per device at a time).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import tensorflow as tf

# loss -> activation of the probabilities (the one rule; see the module docstring).
ACTIVATIONS = {'softmax_xent': 'softmax', 'sigmoid_xent': 'sigmoid'}


@dataclasses.dataclass(frozen=True)
class PredictionSpec:
  """How one task's predictions are made."""
  num_classes: int
  activation: str  # 'sigmoid' | 'softmax'
  view_averaging: str  # 'probs' | 'logits'
  max_clips_per_pass: int = 0  # 0: all views of a batch in one pass

  @classmethod
  def of(cls, spec, task: str) -> 'PredictionSpec':
    """The PredictionSpec of `task` from resolved specs (polyvit_tf.configs.specs)."""
    t = spec.task(task)
    return cls(t.num_classes, ACTIVATIONS[t.loss], spec.eval.view_averaging,
               spec.eval.max_clips_per_pass)


class Prediction(NamedTuple):
  """A batch's prediction (a tuple, so tf.function and tf.distribute can return it)."""
  logits: tf.Tensor  # float32 (B, C): the mean of the views' logits
  probabilities: tf.Tensor  # float32 (B, C)


def activation(logits: tf.Tensor, kind: str) -> tf.Tensor:
  """Per-class sigmoid or softmax over the last axis, in float32."""
  logits = tf.cast(logits, tf.float32)
  if kind == 'sigmoid':
    return tf.math.sigmoid(logits)
  if kind == 'softmax':
    return tf.nn.softmax(logits, axis=-1)
  raise ValueError(f'activation must be one of {sorted(set(ACTIVATIONS.values()))}, got '
                   f'{kind!r}')


def combine_views(view_logits: tf.Tensor, spec: PredictionSpec) -> Prediction:
  """Prediction of (B, V, C) view logits."""
  view_logits = tf.cast(view_logits, tf.float32)
  logits = tf.reduce_mean(view_logits, axis=1)
  if spec.view_averaging == 'probs':
    probabilities = tf.reduce_mean(activation(view_logits, spec.activation), axis=1)
  elif spec.view_averaging == 'logits':
    probabilities = activation(logits, spec.activation)
  else:
    raise ValueError(f'view averaging must be probs or logits, got {spec.view_averaging!r}')
  return Prediction(logits, probabilities)


def view_logits(logits_fn: Callable[[tf.Tensor], tf.Tensor], views: tf.Tensor,
                spec: PredictionSpec) -> tf.Tensor:
  """float32 (B, V, C) logits of (B, V, *input_shape) views; `logits_fn` maps a batch of
  single views (N, *input_shape) to (N, C) logits. At most `spec.max_clips_per_pass` views
  go through `logits_fn` at once when there are several views per example; examples of a
  single view (images) run in one pass, as the original code evaluates them."""
  example_shape = tuple(views.shape[2:])
  batch, num_views = tf.shape(views)[0], tf.shape(views)[1]
  flat = tf.reshape(views, (-1,) + example_shape)
  run = lambda x: tf.cast(logits_fn(x), tf.float32)  # noqa: E731
  chunk = int(spec.max_clips_per_pass)
  if chunk <= 0 or views.shape[1] == 1:  # one view per example: eval.batch_size bounds it
    logits = run(flat)
  else:
    n = tf.shape(flat)[0]
    passes = tf.maximum((n + chunk - 1) // chunk, 1)  # ceil(n / chunk) passes ...
    size = (n + passes - 1) // passes  # ... of equal size <= min(chunk, n): < passes padded

    def one_pass(i):  # slices the batch (no copy of all of it), pads the last pass only
      x = flat[i * size:tf.minimum((i + 1) * size, n)]
      return run(tf.pad(x, [[0, size - tf.shape(x)[0]]] + [[0, 0]] * len(example_shape)))

    # One pass at a time (parallel_iterations=1), so peak memory is one pass's.
    logits = tf.map_fn(one_pass, tf.range(passes), parallel_iterations=1,
                       fn_output_signature=tf.TensorSpec((None, spec.num_classes),
                                                         tf.float32))
    logits = tf.reshape(logits, (-1, spec.num_classes))[:n]
  return tf.reshape(logits, tf.stack([batch, num_views, spec.num_classes]))


def predict(logits_fn: Callable[[tf.Tensor], tf.Tensor], views: tf.Tensor,
            spec: PredictionSpec) -> Prediction:
  """The prediction of a batch of examples' views (B, V, *input_shape)."""
  return combine_views(view_logits(logits_fn, views, spec), spec)


def predict_one_view(logits_fn: Callable[[tf.Tensor], tf.Tensor], inputs: tf.Tensor,
                     spec: PredictionSpec) -> Prediction:
  """`predict` of examples of one view each, (B, *input_shape), in one pass (the tensor
  signatures: no view axis is added to the input, which keeps them convertible to TFLite)."""
  return combine_views(tf.expand_dims(tf.cast(logits_fn(inputs), tf.float32), 1), spec)
