"""What a modality is: the interface every modality module implements.

A modality (image, audio, video, ...) is ONE module, `polyvit_tf/modalities/<name>.py`, that
defines a subclass of `Modality` and an instance `MODALITY`, registered by name in
polyvit_tf/modalities/__init__.py. Everything that differs per modality is an attribute or a
method here; the rest of the library looks the modality up and calls it:

  config         input rank and channels, the `tasks.<t>.data` fields it reads (with their
                 defaults), default loss and head init, its options from the config
  tf.Example     features, parsing into the canonical payload (also with core TF ops only,
                 for TF Serving), writing, the TFX schema
  pipelines      training inputs (augmented) and evaluation views of one example
  serving        raw-input signatures (their input specs and in-graph preprocessing) and
                 how the client turns a file into a raw-signature input
  media files    conversion of a file (the converter), writing a payload back as a file
                 (the demo prediction), synthetic examples (tests), TFDS payloads
  checkpoints    how a pretrained tokenizer becomes this modality's (kernel, positions)

Methods of one example work in graph mode on tensors; `opts` is the task's resolved options
(what `options` returned, `specs.resolve(config).data[task].options`) and `geometry` the
modality's `specs.ModalitySpec`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.data.media import MediaError


@dataclasses.dataclass(frozen=True)
class RawInput:
  """The raw-input serving signature `<task>_<suffix>`: its batched input and preprocessing."""
  suffix: str
  spec: tf.TensorSpec  # batched input; its name is the signature's input key
  views: Callable[[tf.Tensor], tf.Tensor]  # one example -> float32 (V, *input_shape)


def warmup_pixels() -> np.ndarray:
  """uint8 (16, 16, 3) smooth colours: the picture of the image and video warm-up inputs."""
  y, x = np.mgrid[:16, :16]
  return np.stack([y * 16, x * 16, (x + y) * 8], -1).astype(np.uint8)


class DataFields:
  """A task's `tasks.<t>.data` as one modality reads it: defaults from the modality's
  `data_defaults`, errors as ConfigError naming `tasks.<t>.data.<field>`."""

  def __init__(self, task: str, data: Mapping[str, Any], defaults: Mapping[str, Any]):
    self.task, self._data, self._defaults = task, data, defaults

  def __getitem__(self, field: str) -> Any:
    if field in self._data:
      return self._data[field]
    if field not in self._defaults:
      raise KeyError(f'{field!r} is not a data field of this modality')
    return self._defaults[field]

  def key(self, field: str) -> str:
    return f'tasks.{self.task}.data.{field}'

  def error(self, field: str, message: str) -> ConfigError:
    return ConfigError(f'{self.key(field)} {message}')

  def range(self, field: str, low: float | None = None, high: float | None = None, *,
            integer: bool = False, low_open: bool = False) -> float | int:
    """The field as a number in [low, high] (low excluded when `low_open`)."""
    value = self[field]
    try:
      number = int(value) if integer else float(value)
    except (TypeError, ValueError):
      raise self.error(field, f'must be a number, got {value!r}.') from None
    if integer and number != value:
      raise self.error(field, f'must be an integer, got {value!r}.')
    below = low is not None and (number <= low if low_open else number < low)
    if below or (high is not None and number > high):
      bounds = f'{"(" if low_open else "["}{low}, {high if high is not None else "inf"}]'
      raise self.error(field, f'must be in {bounds}, got {value!r}.')
    return number

  def interval(self, field: str, low: float, high: float | None = None) -> tuple[float, float]:
    """The field as (a, b) with low < a <= b (<= high)."""
    value = tuple(float(v) for v in self[field])
    if len(value) != 2 or not low < value[0] <= value[1] or (high is not None
                                                             and value[1] > high):
      limit = f' <= {high}' if high is not None else ''
      raise self.error(field, f'must be (min, max) with {low} < min <= max{limit}, got '
                       f'{value}.')
    return value


class Modality:
  """Everything that differs per modality (see the module docstring)."""

  name: str = ''
  input_rank: int = 0  # entries of modalities.<m>.input_size and patch_size
  input_axes: str = ''  # what they are, for messages: '(H, W)', '(T, H, W)', ...
  channels: tuple[int, ...] = (1, 3)  # allowed modalities.<m>.channels
  data_defaults: Mapping[str, Any] = {}  # the tasks.<t>.data fields it reads
  default_head_init: str = 'zeros'
  media_extensions: tuple[str, ...] = ()  # files the converter reads (folder inputs)
  tfds_feature: str = ''  # the tfds.features class of its input ('' = no TFDS reader)
  tfds_encoded: bool = False  # read that feature encoded (tfds.decode.SkipDecoding)
  crossmodal_rank: int = 100  # preference as the source of a cross-modal conversion (low first)

  def __repr__(self) -> str:
    return f'<modality {self.name}>'

  # -------------------------------------------------------------------------- config
  def default_loss(self, multilabel: bool) -> str:
    """The loss of a task that does not set one."""
    return 'sigmoid_xent' if multilabel else 'softmax_xent'

  def options(self, geometry, data: DataFields, eval_views: int) -> Any:
    """The task's frozen options (validated; ConfigError via `data.error`)."""
    raise NotImplementedError

  def num_views(self, opts: Any) -> int:
    """Evaluation views per example (multi-crop)."""
    return int(opts.num_views)

  # ------------------------------------------------------------------------ tf.Example
  def feature_spec(self) -> dict:
    """tf.io.parse_single_example spec of the payload features."""
    raise NotImplementedError

  def payload_spec(self) -> dict[str, tf.TensorSpec]:
    """TensorSpecs of the canonical payload every source maps its examples to."""
    raise NotImplementedError

  def parse(self, parsed: dict) -> dict:
    """Parsed payload features -> the canonical payload (no media decoding)."""
    raise NotImplementedError

  def serving_parse(self, parsed: dict) -> dict:
    """`parse` with TensorFlow's core ops only, for the `<task>_examples` signatures (the TF
    Serving binary has no custom ops); the same payload for every example it accepts."""
    return self.parse(parsed)

  def payload_features(self, payload: Mapping[str, np.ndarray]) -> dict[str, tf.train.Feature]:
    """A canonical payload (numpy values) as tf.Example features (re-encoding sources)."""
    raise NotImplementedError

  def schema_features(self) -> list[tuple[str, str, bool]]:
    """(feature, 'bytes' | 'int' | 'float', required) of the TFX schema of its examples."""
    raise NotImplementedError

  # ------------------------------------------------------------------------- pipelines
  def train_inputs(self, payload: dict, opts: Any,
                   seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(float32 input (*input_shape), status) of one training example, augmented."""
    raise NotImplementedError

  def eval_inputs(self, payload: dict, opts: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """(float32 views (V, *input_shape), status) of one evaluation example."""
    raise NotImplementedError

  def eval_checks(self, payload: dict, opts: Any) -> list:
    """The errors.Check list behind `eval_inputs`' status (decode budgets, before decoding),
    whose messages name the limit and the value; [] when it has none (the status's reason
    then explains a refused example)."""
    return []

  # --------------------------------------------------------------------------- serving
  def raw_inputs(self, opts: Any) -> list[RawInput]:
    """The raw-input signatures of a task (the eval preprocessing, in the graph)."""
    raise NotImplementedError

  def preprocessing_spec(self, opts: Any) -> dict | None:
    """What an app needs to reproduce `raw_inputs` outside TensorFlow, as a JSON-able dict
    (the TFLite manifest carries it; polyvit_tf/edge/reference_preprocess.py executes the
    built-in modalities'); None: no description."""
    return None

  def warmup_input(self, suffix: str, geometry) -> np.ndarray:
    """A batch of one small valid input of the raw signature `<task>_<suffix>` (the export's
    TF Serving warm-up requests replay it, so it must pass the decode checks)."""
    raise NotImplementedError(f'modality {self.name!r} has no warm-up input')

  def client_file(self, path: str, settings: Mapping[str, Any]) -> Any:
    """The input of one example of the raw signature `<task>_raw` from a file the serving
    client is given (decoded as the converter decodes files for training), its declared sizes
    checked against the decode budgets first; MediaError (polyvit_tf.data.media) with the
    reason when it cannot be used. `settings`: the client's decoding flags (e.g. video_fps,
    video_short_side), each modality takes what it needs."""
    raise MediaError(f'the {self.name} modality has no client-side file reader')

  # ----------------------------------------------------------------------- media files
  def convert_file(self, path: str, opts: Any) -> dict[str, tf.train.Feature]:
    """The payload features of one media file (the converter; `opts` its ConvertOptions);
    polyvit_tf.data.media.MediaError with the reason when it cannot be converted."""
    raise NotImplementedError(f'modality {self.name!r} has no media converter')

  def write_media_file(self, payload: Mapping[str, np.ndarray], stem: str) -> str:
    """Writes a canonical payload as a file a user could have (`stem` + extension)."""
    raise NotImplementedError(f'modality {self.name!r} cannot write media files')

  def synthetic_payload(self, labels: Sequence[int], num_classes: int, geometry, opts: Any,
                        rng: np.random.Generator) -> dict[str, tf.train.Feature]:
    """Payload features of a small synthetic example whose class is visible (tests)."""
    raise NotImplementedError(f'modality {self.name!r} has no synthetic examples')

  def tfds_payload(self, value: tf.Tensor, feature: Any) -> dict:
    """The canonical payload of a TFDS example's input feature."""
    raise NotImplementedError(f'modality {self.name!r} has no TFDS reader')

  def normalisation_stats(self, source, split: str, opts: Any, max_examples: int) -> dict:
    """Input normalisation statistics over a split (polyvit_tf.data.stats): at least
    'num_examples' and 'skipped'."""
    raise ConfigError(f'modality {self.name!r} has no normalisation statistics.')

  def normalisation_fields(self, stats: dict) -> dict:
    """The `tasks.<t>.data` fields to set from `normalisation_stats`' result."""
    raise ConfigError(f'modality {self.name!r} has no normalisation statistics.')

  # ----------------------------------------------------------------------- checkpoints
  def init_tokenizer(self, tok, geometry, *, video_kernel: str, posemb_resize: str,
                     where: str):
    """(TokenizerWeights, actions) of pretrained tokenizer weights `tok` (any modality's)
    for this modality's geometry: kernel inflated / summed / channel-converted, position
    embeddings resized (and tiled over time). See polyvit_tf.checkpoints.crossmodal."""
    from polyvit_tf.checkpoints import crossmodal  # pylint: disable=import-outside-toplevel
    return crossmodal.adapt_tokenizer(
        tok, patch_size=geometry.patch_size, channels=geometry.channels, grid=geometry.grid,
        video_kernel=video_kernel, posemb_resize=posemb_resize, where=where)

  def probe_patch_size(self, patch_size: tuple[int, ...],
                       source_patch_size: tuple[int, ...]) -> tuple[int, ...]:
    """The patch size of a probe tokenizer loaded from one of `source_patch_size`: the
    source's spatial (last two) axes, since patch kernels cannot be resampled (other ranks:
    as configured)."""
    if len(patch_size) < 2 or len(source_patch_size) < 2:
      return tuple(patch_size)
    return tuple(patch_size[:-2]) + tuple(source_patch_size[-2:])
