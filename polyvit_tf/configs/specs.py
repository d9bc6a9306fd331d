"""The config resolved once: frozen, typed specs of the model, tasks, modalities, data, eval.

    spec = specs.resolve(config)     # one Specs per distinct config (cached by its content)
    spec.task_names                  # tasks in config order
    spec.tasks[t]                    # TaskSpec: label space, head, loss, pooling, views, names
    spec.modalities[m]               # ModalitySpec: geometry of a used modality; .impl is the
                                     # registered Modality (polyvit_tf.modalities)
    spec.modality_of(t)              # the ModalitySpec of task t
    spec.data[t]                     # DataSpec: source, splits, reading, the modality's options
    spec.training[t]                 # TrainingSpec: batch size, steps, warmup, rate, mixup, ...
    spec.model, spec.eval, spec.train, spec.schedule, spec.lr_schedule, spec.optimizer,
    spec.distribution, spec.init     # the other sections, likewise
    spec.validate()                  # resolves every section (training and export call it)

Every section is validated once, when first resolved, raising ConfigError (the one error type
of config problems) naming the key. A config may lack keys (an older work directory's
config.json) or whole sections (the data-only config of the TFX ExampleGen): defaults come from
where they are written once, polyvit_tf.configs.base and the modality modules; a missing
section fails only when it is used. The values enumerated fields may take are configs/base.py's;
the modules that implement a section (train/schedules.py, lr.py, optim.py, strategy.py,
checkpoints/) read its spec. What can only be checked against the world (a strategy's replica
count, a work directory's saved config, a TFDS data set's features) is checked where it is met,
with the same ConfigError.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import types
from typing import Any, Mapping

import ml_collections

from polyvit_tf import modalities as modalities_lib
from polyvit_tf.configs import base
from polyvit_tf.configs import io as config_io
from polyvit_tf.configs.errors import ConfigError

__all__ = ['ConfigError', 'DataSpec', 'DistributionSpec', 'EvalSpec', 'InitSpec',
           'LRScheduleSpec', 'ModalitySpec', 'ModelSpec', 'OptimizerSpec', 'ScheduleSpec', 'Specs',
           'TaskSpec', 'TrainSpec', 'TrainingSpec', 'parse_init_source', 'resolve']

# The data-set splits a task may name, and the `tasks.<t>.data` field of each.
SPLIT_FIELDS = {'train': 'train_split', 'eval': 'eval_split', 'validation': 'validation_split'}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """The encoder: `model.*`."""
  size: str
  hidden_size: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  num_adapt_layers: int
  dropout_rate: float
  attention_dropout_rate: float
  layer_norm_epsilon: float


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
  """Input geometry of one modality: `modalities.<name>`."""
  name: str
  input_size: tuple[int, ...]
  patch_size: tuple[int, ...]  # same rank as input_size
  channels: int

  @property
  def impl(self) -> modalities_lib.Modality:
    """The registered modality (everything that differs per modality)."""
    return modalities_lib.get(self.name)

  @property
  def input_shape(self) -> tuple[int, ...]:
    """Shape of one example (no batch dimension), channels last."""
    return self.input_size + (self.channels,)

  @property
  def grid(self) -> tuple[int, ...]:
    """Number of patches along each axis: floor(input / patch) (Sec. 3.1)."""
    return tuple(i // p for i, p in zip(self.input_size, self.patch_size))

  @property
  def num_patches(self) -> int:
    return math.prod(self.grid)

  @property
  def sequence_length(self) -> int:
    """Patches plus the class token (Table 7)."""
    return self.num_patches + 1


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One task's label space, head and evaluation: `tasks.<name>` (training fields apart)."""
  name: str
  modality: str
  num_classes: int
  multilabel: bool
  loss: str
  head_init: str
  pooling: str
  stochastic_depth: float
  eval_views: int
  class_names: tuple[str, ...]  # `class_<i>` for each class when the config names none


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
  """One task's single-task training hyper-parameters: `tasks.<name>.*`."""
  batch_size: int
  train_steps: int
  warmup_steps: int
  learning_rate: float
  mixup_alpha: float
  label_smoothing: float
  probe_learning_rates: tuple[float, ...]  # () = eval.probe_learning_rates (train/probes.py)


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """Where a task's examples come from and how its modality preprocesses them."""
  task: str
  source: str  # `tfrecord:...`, `tfds:...` or `demo:...` (opened by polyvit_tf.data.sources)
  splits: Mapping[str, str]  # 'train' | 'eval' | 'validation' -> data-set split ('' = none)
  shuffle_buffer: int
  num_parallel_calls: int  # <= 0: tf.data.AUTOTUNE
  skip_bad_examples: bool
  data_dir: str
  input_key: str
  label_key: str
  augment: bool  # training augmentation (each modality's options carry it too)
  options: Any  # the modality's frozen options (polyvit_tf.data.options)
  num_views: int  # evaluation views per example

  def split(self, purpose: str) -> str:
    """The data-set split behind 'train' | 'eval' | 'validation'."""
    if purpose not in SPLIT_FIELDS:
      raise ConfigError(f'task {self.task}: split {purpose!r} is not one of '
                        f'{sorted(SPLIT_FIELDS)}.')
    name = self.splits[purpose]
    if not name:
      raise ConfigError(f'task {self.task}: tasks.{self.task}.data.{SPLIT_FIELDS[purpose]} '
                        f'is empty; the task has no {purpose} split.')
    return name


@dataclasses.dataclass(frozen=True)
class EvalSpec:
  """Evaluation: `eval.*`."""
  batch_size: int
  max_examples: int
  view_averaging: str
  max_clips_per_pass: int
  periodic_split: str
  probe_learning_rates: tuple[float, ...]
  probe_split: str


@dataclasses.dataclass(frozen=True)
class TrainSpec:
  """The training loop: `train.*`."""
  checkpoint_every_steps: int
  max_checkpoints_to_keep: int
  log_every_steps: int
  eval_every_steps: int
  use_xla: bool
  mixed_precision: bool
  total_steps_override: int
  preemption_sync_every_steps: int


@dataclasses.dataclass(frozen=True)
class ScheduleSpec:
  """The task sampling schedule: `schedule.*` (train/schedules.py)."""
  name: str
  task_order: tuple[str, ...]  # () = config order / a seeded order


@dataclasses.dataclass(frozen=True)
class LRScheduleSpec:
  """The shared warmup + decay: `lr_schedule.*` (train/lr.py)."""
  decay: str
  end_factor: float


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
  """`optimizer.*` (train/optim.py)."""
  name: str
  momentum: float
  weight_decay: float
  grad_clip_norm: float
  idle_params: str
  accumulated_learning_rate: float  # 0 = the smallest task rate
  clip_per_replica_modalities: tuple[str, ...]  # clip before the all-reduce (train/optim.py)
  beta1: float
  beta2: float
  epsilon: float


@dataclasses.dataclass(frozen=True)
class DistributionSpec:
  """`distribution.*` (train/strategy.py)."""
  strategy: str
  tpu: str
  num_cpu_devices: int


def _init_default(field: str):
  return dataclasses.field(default_factory=lambda: base.base_config().init[field])


@dataclasses.dataclass(frozen=True)
class InitSpec:
  """Initialisation from a checkpoint: `init.*` (polyvit_tf.checkpoints, where it is known as
  InitOptions); the defaults are the paper's / the original code's (configs/base.py)."""
  source: str = _init_default('source')
  video_kernel: str = _init_default('video_kernel')
  posemb_resize: str = _init_default('posemb_resize')
  crossmodal_video_kernel: str = _init_default('crossmodal_video_kernel')
  crossmodal_source: str = _init_default('crossmodal_source')
  head_task: str = _init_default('head_task')


def parse_init_source(source: str) -> tuple[str, str]:
  """'<format>:<path>' -> (format, path); ConfigError naming init.source otherwise."""
  fmt, sep, path = source.partition(':')
  if not sep or fmt not in base.INIT_FORMATS or not path:
    raise ConfigError(f'init.source: {source!r} is not <format>:<path> with format one of '
                      f'{list(base.INIT_FORMATS)} (e.g. vit_npz:/ckpts/ViT-B_16.npz).')
  return fmt, path


def _frozen(mapping: dict) -> Mapping:
  return types.MappingProxyType(dict(mapping))


def _task_defaults() -> dict[str, Any]:
  """The defaults of `base.task_config` (the one place task defaults are written)."""
  return {name: p.default for name, p in inspect.signature(base.task_config).parameters.items()
          if p.default is not inspect.Parameter.empty}


class _Section:
  """Reads one config node with defaults; errors name `<prefix>.<field>`."""

  def __init__(self, node, prefix: str, defaults: Mapping[str, Any]):
    self.node, self.prefix, self.defaults = node if node is not None else {}, prefix, defaults

  def __getitem__(self, field: str) -> Any:
    if field in self.node:
      return self.node[field]
    if field in self.defaults:
      return self.defaults[field]
    raise ConfigError(f'{self.prefix}.{field}: missing.')

  def integer(self, field: str, low: int | None = None, high: int | None = None) -> int:
    value = self[field]
    if isinstance(value, bool) or not isinstance(value, int) or (
        low is not None and value < low) or (high is not None and value > high):
      bound = (f' in [{low}, {high}]' if low is not None and high is not None else
               f' >= {low}' if low is not None else f' <= {high}' if high is not None else '')
      raise ConfigError(f'{self.prefix}.{field} must be an integer{bound}, got {value!r}.')
    return int(value)

  def choice(self, field: str, allowed) -> str:
    value = self[field]
    if value not in allowed:
      raise ConfigError(f'{self.prefix}.{field}: {value!r} is not one of {list(allowed)}.')
    return value


class Specs:
  """The resolved config (see the module docstring). Build it with `resolve(config)`."""

  def __init__(self, config: ml_collections.ConfigDict):
    self._config = config

  # ---------------------------------------------------------------------------- tasks
  @functools.cached_property
  def task_names(self) -> tuple[str, ...]:
    names = tuple(self._config.get('tasks', {}).keys())
    if not names:
      raise ConfigError('tasks: the config has no tasks.')
    return names

  def _task_node(self, task: str):
    if task not in self._config.tasks:
      raise ConfigError(f'tasks.{task}: unknown task; the config has {list(self.task_names)}.')
    return self._config.tasks[task]

  def task(self, task: str) -> TaskSpec:
    """The TaskSpec of `task`; ConfigError naming the config's tasks when it has none."""
    self._task_node(task)
    return self.tasks[task]

  @functools.cached_property
  def tasks(self) -> Mapping[str, TaskSpec]:
    return _frozen({t: self._resolve_task(t) for t in self.task_names})

  def _resolve_task(self, task: str) -> TaskSpec:
    t = _Section(self._task_node(task), f'tasks.{task}', _task_defaults())
    try:
      modality = modalities_lib.get(t['modality'])
    except ConfigError as e:
      raise ConfigError(f'tasks.{task}.modality: {e}') from None
    num_classes = t.integer('num_classes', 1)
    multilabel = bool(t['multilabel'])
    loss = t['loss'] if t['loss'] is not None else modality.default_loss(multilabel)
    head_init = t['head_init'] if t['head_init'] is not None else modality.default_head_init
    for field, value, allowed in (('loss', loss, base.LOSSES),
                                  ('head_init', head_init, base.HEAD_INITS),
                                  ('pooling', t['pooling'], base.POOLINGS)):
      if value not in allowed:
        raise ConfigError(f'tasks.{task}.{field}: {value!r} is not one of {list(allowed)}.')
    if multilabel and loss != 'sigmoid_xent':
      raise ConfigError(f'tasks.{task}.loss: a multi-label task needs sigmoid_xent, got '
                        f'{loss!r}.')
    depth = float(t['stochastic_depth'])
    if not 0.0 <= depth < 1.0:
      raise ConfigError(f'tasks.{task}.stochastic_depth must be in [0, 1), got {depth}.')
    names = tuple(str(n) for n in (t['class_names'] or ()))
    if names and len(names) != num_classes:
      raise ConfigError(f'tasks.{task}.class_names has {len(names)} names for '
                        f'{num_classes} classes.')
    return TaskSpec(
        name=task, modality=modality.name, num_classes=num_classes, multilabel=multilabel,
        loss=loss, head_init=head_init, pooling=t['pooling'], stochastic_depth=depth,
        eval_views=t.integer('eval_views', 1),
        class_names=names or tuple(f'class_{i}' for i in range(num_classes)))

  @functools.cached_property
  def training(self) -> Mapping[str, TrainingSpec]:
    out = {}
    defaults = _task_defaults()
    for task in self.task_names:
      t = _Section(self._task_node(task), f'tasks.{task}', defaults)
      rate = t['learning_rate']
      if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ConfigError(f'tasks.{task}.learning_rate must be > 0, got {rate!r}.')
      probe_rates = tuple(float(r) for r in (t.node.get('probe_learning_rates') or ()))
      if any(not r > 0 for r in probe_rates):
        raise ConfigError(f'tasks.{task}.probe_learning_rates must be positive, got '
                          f'{list(probe_rates)}.')
      out[task] = TrainingSpec(
          batch_size=t.integer('batch_size', 1), train_steps=t.integer('train_steps', 1),
          warmup_steps=t.integer('warmup_steps', 0), learning_rate=float(rate),
          mixup_alpha=float(t['mixup_alpha']), label_smoothing=float(t['label_smoothing']),
          probe_learning_rates=probe_rates)
    return _frozen(out)

  # ----------------------------------------------------------------------- modalities
  @functools.cached_property
  def used_modalities(self) -> tuple[str, ...]:
    """Modalities of at least one task, in registry order (image, audio, video, ...)."""
    used = {self.tasks[t].modality for t in self.task_names}
    return tuple(m for m in modalities_lib.names() if m in used)

  @functools.cached_property
  def modalities(self) -> Mapping[str, ModalitySpec]:
    return _frozen({m: self._resolve_modality(m) for m in self.used_modalities})

  def _resolve_modality(self, name: str) -> ModalitySpec:
    impl = modalities_lib.get(name)
    key = f'modalities.{name}'
    if name not in self._config.get('modalities', {}):
      raise ConfigError(f'{key}: missing; a task uses this modality.')
    m = self._config.modalities[name]
    input_size, patch_size = tuple(m.input_size), tuple(m.patch_size)
    rank = impl.input_rank
    if len(input_size) != rank or len(patch_size) != rank:
      raise ConfigError(f'{key}: input_size {input_size} and patch_size {patch_size} must '
                        f'both have {rank} entries {impl.input_axes} for {name}.')
    if any(p <= 0 for p in patch_size) or any(i < p for i, p in zip(input_size, patch_size)):
      raise ConfigError(f'{key}.patch_size {patch_size} must be positive and fit in '
                        f'input_size {input_size}.')
    if any(i % p for i, p in zip(input_size, patch_size)):
      raise ConfigError(f'{key}.input_size {input_size} is not a multiple of patch_size '
                        f'{patch_size}; inputs would be dropped.')
    if m.channels not in impl.channels:
      raise ConfigError(f'{key}.channels must be one of {list(impl.channels)}, got '
                        f'{m.channels}.')
    return ModalitySpec(name, tuple(int(i) for i in input_size),
                        tuple(int(p) for p in patch_size), int(m.channels))

  def modality_of(self, task: str) -> ModalitySpec:
    """The ModalitySpec of `task`'s modality."""
    return self.modalities[self.task(task).modality]

  def input_shape(self, task: str) -> tuple[int, ...]:
    return self.modality_of(task).input_shape

  # ---------------------------------------------------------------------------- model
  @functools.cached_property
  def model(self) -> ModelSpec:
    if 'model' not in self._config:
      raise ConfigError('model: missing.')
    m = _Section(self._config.model, 'model', {})
    spec = ModelSpec(
        size=str(m.node.get('size', '')), hidden_size=m.integer('hidden_size', 1),
        num_layers=m.integer('num_layers', 1), num_heads=m.integer('num_heads', 1),
        mlp_dim=m.integer('mlp_dim', 1), num_adapt_layers=m.integer('num_adapt_layers', 0),
        dropout_rate=float(m['dropout_rate']),
        attention_dropout_rate=float(m['attention_dropout_rate']),
        layer_norm_epsilon=float(m['layer_norm_epsilon']))
    if spec.hidden_size % spec.num_heads:
      raise ConfigError(f'model.hidden_size {spec.hidden_size} is not divisible by '
                        f'model.num_heads {spec.num_heads}.')
    if spec.num_adapt_layers > spec.num_layers:
      raise ConfigError(f'model.num_adapt_layers must be in [0, model.num_layers='
                        f'{spec.num_layers}], got {spec.num_adapt_layers}.')
    return spec

  # ----------------------------------------------------------------------------- data
  @functools.cached_property
  def data(self) -> Mapping[str, DataSpec]:
    return _frozen({t: self._resolve_data(t) for t in self.task_names})

  def _resolve_data(self, task: str) -> DataSpec:
    spec = self.tasks[task]
    geometry = self.modality_of(task)
    impl = geometry.impl
    node = self._task_node(task).get('data') or {}
    d = _Section(node, f'tasks.{task}.data', base.DATA_DEFAULTS)
    options = impl.options(geometry, modalities_lib.DataFields(task, node, impl.data_defaults),
                           spec.eval_views)
    return DataSpec(
        task=task, source=str(d['source']),
        splits=_frozen({p: str(d[f] or '') for p, f in SPLIT_FIELDS.items()}),
        shuffle_buffer=max(1, d.integer('shuffle_buffer')),
        num_parallel_calls=d.integer('num_parallel_calls'),
        skip_bad_examples=bool(d['skip_bad_examples']), data_dir=str(d['data_dir'] or ''),
        input_key=str(d['input_key'] or ''), label_key=str(d['label_key'] or ''),
        augment=bool(d['augment']), options=options, num_views=int(impl.num_views(options)))

  # ----------------------------------------------------------------------------- eval
  @functools.cached_property
  def eval(self) -> EvalSpec:
    e = _Section(self._config.get('eval'), 'eval', base.base_config().eval)
    rates = tuple(float(r) for r in e['probe_learning_rates'])
    if not rates or any(r <= 0 for r in rates):
      raise ConfigError(f'eval.probe_learning_rates must be positive, got {list(rates)}.')
    return EvalSpec(
        batch_size=e.integer('batch_size', 1), max_examples=e.integer('max_examples', 0),
        view_averaging=e.choice('view_averaging', base.VIEW_AVERAGING),
        max_clips_per_pass=(0 if e['max_clips_per_pass'] is None else e.integer(
            'max_clips_per_pass', 0, base.MAX_CLIPS_PER_PASS_LIMIT)),
        periodic_split=e.choice('periodic_split', tuple(SPLIT_FIELDS)),
        probe_learning_rates=rates, probe_split=e.choice('probe_split', tuple(SPLIT_FIELDS)))

  # ---------------------------------------------------------------------------- train
  @functools.cached_property
  def train(self) -> TrainSpec:
    t = _Section(self._config.get('train'), 'train', base.base_config().train)
    spec = TrainSpec(
        checkpoint_every_steps=t.integer('checkpoint_every_steps', 0),
        max_checkpoints_to_keep=t.integer('max_checkpoints_to_keep', 1),
        log_every_steps=t.integer('log_every_steps', 1),
        eval_every_steps=t.integer('eval_every_steps', 0), use_xla=bool(t['use_xla']),
        mixed_precision=bool(t['mixed_precision']),
        total_steps_override=t.integer('total_steps_override', 0),
        preemption_sync_every_steps=t.integer('preemption_sync_every_steps', 1))
    return spec

  # ----------------------------------------------------------------- schedule, optimizer
  @functools.cached_property
  def schedule(self) -> ScheduleSpec:
    s = _Section(self._config.get('schedule'), 'schedule', base.base_config().schedule)
    name = s['name']
    if name not in base.SCHEDULES:
      raise ConfigError(f'schedule.name: unknown schedule {name!r}; expected one of '
                        f'{list(base.SCHEDULES)}.')
    order = tuple(s['task_order'] or ())
    if order:
      tasks = list(self.task_names)
      unknown = [t for t in order if t not in tasks]
      if unknown:
        raise ConfigError(f'schedule.task_order: unknown task(s) {unknown}; the config has '
                          f'{tasks}.')
      if sorted(order) != sorted(tasks):
        raise ConfigError(f'schedule.task_order must name every task exactly once; got '
                          f'{list(order)} for tasks {tasks}.')
    return ScheduleSpec(name, order)

  @functools.cached_property
  def lr_schedule(self) -> LRScheduleSpec:
    s = _Section(self._config.get('lr_schedule'), 'lr_schedule',
                 base.base_config().lr_schedule)
    end = float(s['end_factor'])
    if not 0.0 <= end <= 1.0:
      raise ConfigError(f'lr_schedule.end_factor must be in [0, 1], got {end}.')
    return LRScheduleSpec(s.choice('decay', base.LR_DECAYS), end)

  @functools.cached_property
  def optimizer(self) -> OptimizerSpec:
    o = _Section(self._config.get('optimizer'), 'optimizer', base.base_config().optimizer)
    spec = OptimizerSpec(
        name=o.choice('name', base.OPTIMIZERS), momentum=float(o['momentum']),
        weight_decay=float(o['weight_decay']), grad_clip_norm=float(o['grad_clip_norm']),
        idle_params=o.choice('idle_params', base.IDLE_PARAMS),
        accumulated_learning_rate=float(o['accumulated_learning_rate'] or 0.0),
        clip_per_replica_modalities=tuple(o['clip_per_replica_modalities'] or ()),
        beta1=float(o['beta1']), beta2=float(o['beta2']), epsilon=float(o['epsilon']))
    unknown = sorted(set(spec.clip_per_replica_modalities) - set(modalities_lib.names()))
    if unknown:
      raise ConfigError(f'optimizer.clip_per_replica_modalities: {unknown} are not '
                        f'modalities; expected a subset of {list(modalities_lib.names())}.')
    if not 0.0 <= spec.momentum < 1.0:
      raise ConfigError(f'optimizer.momentum must be in [0, 1), got {spec.momentum}.')
    if spec.weight_decay < 0:
      raise ConfigError(f'optimizer.weight_decay must be >= 0, got {spec.weight_decay}.')
    return spec

  @functools.cached_property
  def distribution(self) -> DistributionSpec:
    d = _Section(self._config.get('distribution'), 'distribution',
                 base.base_config().distribution)
    strategy = d.choice('strategy', base.STRATEGIES)
    if strategy == 'tpu' and not d['tpu']:
      raise ConfigError("distribution.tpu: the tpu strategy needs a TPU name ('local' on a "
                        'TPU VM).')
    return DistributionSpec(strategy, str(d['tpu'] or ''), int(d['num_cpu_devices'] or 0))

  @functools.cached_property
  def init(self) -> InitSpec:
    section = self._config.get('init') or {}
    fields = {f.name for f in dataclasses.fields(InitSpec)}
    unknown = sorted(set(section.keys()) - fields)
    if unknown:
      raise ConfigError(f'init: unknown field(s) {unknown}; expected {sorted(fields)}.')
    spec = InitSpec(**{k: section[k] for k in section.keys()})
    allowed = {'video_kernel': base.VIDEO_KERNELS[:2], 'posemb_resize': base.POSEMB_RESIZE,
               'crossmodal_video_kernel': base.VIDEO_KERNELS,
               'crossmodal_source': ('',) + modalities_lib.names()}
    for field, values in allowed.items():
      if getattr(spec, field) not in values:
        raise ConfigError(f'init.{field}: {getattr(spec, field)!r} is not one of '
                          f'{list(values)}.')
    tasks = list(self._config.get('tasks', {}).keys())
    if spec.head_task and spec.head_task not in tasks:
      raise ConfigError(f'init.head_task: {spec.head_task!r} is not a task of this config '
                        f'({tasks}).')
    if spec.source:
      parse_init_source(spec.source)
    return spec

  # ------------------------------------------------------------------------------ all
  SECTIONS = ('model', 'tasks', 'modalities', 'training', 'data', 'eval', 'train', 'schedule',
              'lr_schedule', 'optimizer', 'distribution', 'init')

  def validate(self, *sections: str) -> 'Specs':
    """Resolves `sections` (default: all of SECTIONS), raising ConfigError naming the first
    bad key; returns self."""
    for section in sections or self.SECTIONS:
      if section not in self.SECTIONS:
        raise ValueError(f'unknown section {section!r}; expected one of {self.SECTIONS}')
      getattr(self, section)
    return self


@functools.lru_cache(maxsize=64)
def _resolve_json(text: str) -> Specs:
  return Specs(config_io.loads(text))


def resolve(config: ml_collections.ConfigDict) -> Specs:
  """The Specs of `config`, one per distinct content (a changed config resolves anew)."""
  if isinstance(config, Specs):
    return config
  return _resolve_json(config.to_json(sort_keys=True))
