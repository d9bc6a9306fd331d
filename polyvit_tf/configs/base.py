"""Building blocks of PolyViT configs (ml_collections).

A config has these sections; everything else (token grids, parameter counts, step counts,
learning rates, signatures) is derived from it:

  seed            run seed (schedule, initialisation, augmentation)
  model           encoder size, L_adapt, dropout
  modalities      per modality: input size, channels, patch (tubelet) size
  tasks           per task (ordered by name everywhere): modality, classes, head,
                  loss, steps, learning rate, batch size, regularisers, data source
  schedule        task sampling schedule of Sec. 4.2
  optimizer       SGD with momentum (or AdamW), clipping, idle-parameter policy
  lr_schedule     warmup + decay shape shared by all tasks
  train / eval    loop, checkpoint and evaluation settings
  init            pretrained checkpoint to start from and how to map it (docs/checkpoints.md)
  distribution    tf.distribute strategy
"""

from __future__ import annotations

from typing import Any, Sequence

import ml_collections

from polyvit_tf import modalities as modalities_lib
from polyvit_tf.configs import pipeline as pipeline_section
from polyvit_tf.configs import sizes

# The values the config's enumerated fields may take (checked by polyvit_tf.configs.specs;
# the modules that implement them document what each one means).
LOSSES = ('softmax_xent', 'sigmoid_xent')
HEAD_INITS = ('zeros', 'lecun_normal')
POOLINGS = ('cls', 'gap')
# eval.view_averaging: how the views of a multi-crop example (video crops, audio clips) are
# combined, in evaluation and in the exported raw signatures (polyvit_tf/model/prediction.py).
# The first is the default: 'logits' averages the logits (ViViT's and Scenic's multi-crop
# test), 'probs' the views' probabilities.
VIEW_AVERAGING = ('logits', 'probs')
# eval.max_clips_per_pass: the original's clips per device at a time (ViViT's multi-crop test,
# `multicrop_clips_per_device = 2` in Scenic's video configs), and the largest value accepted
# (a pass of more clips bounds nothing: 4096 clips at 32x224x224 are 74 GiB of input alone).
MAX_CLIPS_PER_PASS_DEFAULT = 2
MAX_CLIPS_PER_PASS_LIMIT = 4096
SCHEDULES = ('task_by_task', 'alternating', 'uniform', 'weighted', 'accumulated')
LR_DECAYS = ('cosine', 'linear', 'constant')
OPTIMIZERS = ('sgd', 'adamw')
IDLE_PARAMS = ('shared_momentum', 'freeze_idle')
STRATEGIES = ('auto', 'default', 'mirrored', 'multi_worker', 'tpu')
# init.source formats: vit_npz (the original Google ViT / AugReg .npz), big_vision_npz,
# hf (Hugging Face ViT, safetensors or .bin), polyvit (this project's work directory).
INIT_FORMATS = ('vit_npz', 'big_vision_npz', 'hf', 'polyvit')
VIDEO_KERNELS = ('central_frame', 'average', 'repeat')  # 2D patch kernel -> tubelet kernel
POSEMB_RESIZE = ('bilinear', 'bilinear_half_pixel')  # position-embedding grid resize

# The fields of `tasks.<t>.data` that every modality has; each modality module adds its own
# (polyvit_tf/modalities/<m>.py, `data_defaults`).
DATA_DEFAULTS = dict(
    source='',
    train_split='train',
    eval_split='test',
    validation_split='',  # for learning-rate grid searches (probes); '' = none
    shuffle_buffer=10_000,
    num_parallel_calls=-1,  # tf.data.AUTOTUNE
    skip_bad_examples=True,
    data_dir='',  # TFDS data_dir / demo data root; '' = the default
    input_key='',  # TFDS feature holding the input; '' = the first of the modality's type
    label_key='',  # TFDS label feature; '' = `label` or the first ClassLabel
    augment=True,  # training augmentation on/off (eval never augments)
    random_flip=True,  # training flips (image and video)
)


def model_config(size: str = 'B', num_adapt_layers: int = 0,
                 **overrides: Any) -> ml_collections.ConfigDict:
  """Encoder config for a standard size; `overrides` replace any field (e.g. for tiny tests)."""
  dims = sizes.get_size(size)
  cfg = ml_collections.ConfigDict(dict(
      size=size,
      hidden_size=dims.hidden_size,
      num_layers=dims.num_layers,
      num_heads=dims.num_heads,
      mlp_dim=dims.mlp_dim,
      num_adapt_layers=num_adapt_layers,
      dropout_rate=0.0,
      attention_dropout_rate=0.0,
      layer_norm_epsilon=1e-6,
  ))
  cfg.update(overrides)
  return cfg


def modality_config(input_size: Sequence[int], patch_size: Sequence[int],
                    channels: int = 3) -> ml_collections.ConfigDict:
  """One modality's input: `input_size` is (H, W) or (T, H, W); `patch_size` matches it."""
  return ml_collections.ConfigDict(dict(
      input_size=tuple(input_size), patch_size=tuple(patch_size), channels=channels))


def paper_modalities(video_tubelet: Sequence[int] = (4, 16, 16),
                     audio_channels: int = 3) -> ml_collections.ConfigDict:
  """Input dimensions of the paper's Table 7 (fine-tuning rows)."""
  return ml_collections.ConfigDict(dict(
      image=modality_config((384, 384), (16, 16), 3),
      # Log-mel spectrogram: 800 frames (8 s at 100 frames/s) x 128 mel bins. The original
      # code tiles the single log-mel channel to 3 channels (audio_channels=3).
      audio=modality_config((800, 128), (16, 16), audio_channels),
      video=modality_config((32, 224, 224), video_tubelet, 3),
  ))


def data_config(source: str = '', **overrides: Any) -> ml_collections.ConfigDict:
  """Where a task's examples come from and how they are read.

  `source` is `tfds:<name>`, `tfrecord:<dir or glob with {split}>` or `demo:<name>`; the
  splits name the train and eval splits (`train[:98%]` style slicing is allowed for TFDS).
  Besides DATA_DEFAULTS it has every registered modality's preprocessing fields, which apply
  to the task's modality only (docs/data.md); their defaults, in the modality modules, follow
  the original code (image), ViViT (video) and AST / MBT (audio).
  """
  cfg = ml_collections.ConfigDict({**DATA_DEFAULTS, **modalities_lib.data_defaults()})
  cfg.source = source
  cfg.update(overrides)
  return cfg


def task_config(modality: str, num_classes: int, *, train_steps: int,
                learning_rate: float, warmup_steps: int, batch_size: int,
                multilabel: bool = False, loss: str | None = None,
                head_init: str | None = None, pooling: str = 'cls',
                stochastic_depth: float = 0.0, mixup_alpha: float = 0.0,
                label_smoothing: float = 0.0, eval_views: int = 1,
                data: ml_collections.ConfigDict | None = None,
                class_names: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """One task (data set + label space + head + its single-task training hyper-parameters).

  `loss` and `head_init` default to the modality's (polyvit_tf/modalities/<m>.py): the paper
  and original code start video and audio heads at zero, image heads LeCun normal (Appendix
  A); image tasks and multi-label tasks use sigmoid cross-entropy, single-label audio/video
  tasks softmax cross-entropy.
  """
  if modality in modalities_lib.names():
    impl = modalities_lib.get(modality)
    loss = impl.default_loss(multilabel) if loss is None else loss
    head_init = impl.default_head_init if head_init is None else head_init
  return ml_collections.ConfigDict(dict(
      modality=modality,
      num_classes=num_classes,
      multilabel=multilabel,
      loss=loss,
      head_init=head_init,
      pooling=pooling,
      train_steps=train_steps,
      warmup_steps=warmup_steps,
      learning_rate=learning_rate,
      batch_size=batch_size,
      stochastic_depth=stochastic_depth,
      mixup_alpha=mixup_alpha,
      label_smoothing=label_smoothing,
      eval_views=eval_views,
      class_names=tuple(class_names),
      data=data if data is not None else data_config(),
  ))


def epochs_to_steps(epochs: float, train_size: int, batch_size: int) -> int:
  """Number of SGD steps of `epochs` passes over `train_size` examples."""
  return int(round(epochs * train_size / batch_size))


def base_config() -> ml_collections.ConfigDict:
  """Everything but model, modalities and tasks, with the paper's defaults."""
  return ml_collections.ConfigDict(dict(
      name='polyvit',
      seed=0,
      schedule=dict(
          # task_by_task | alternating | uniform | weighted | accumulated (Sec. 4.2).
          name='weighted',
          # Task order for task_by_task/alternating; empty = config order (task_by_task
          # then draws a seeded random order, as the paper does).
          task_order=(),
      ),
      optimizer=dict(
          name='sgd',  # sgd | adamw
          momentum=0.9,
          weight_decay=0.0,
          grad_clip_norm=1.0,
          # Where a step's gradient is clipped: steps whose modality is listed clip each
          # replica's gradient (of its own mean loss) before the all-reduce and average the
          # clipped ones; the others clip the averaged gradient after it. The original
          # trainer clips video and audio per device (as ViViT / MBT do) and images after
          # the all-reduce (as ViT does). With one replica both are the same.
          clip_per_replica_modalities=('video', 'audio'),
          # 'shared_momentum': the paper (one momentum state; parameters of tasks not in the
          #   current step keep moving with the momentum). 'freeze_idle': parameters that
          #   receive no gradient this step (other tasks' heads, other modalities'
          #   tokenizers/adaptors) are left untouched, momentum included.
          idle_params='shared_momentum',
          # Learning rate of the accumulated schedule; 0 = the smallest task rate (Appendix B).
          accumulated_learning_rate=0.0,
          # AdamW only (decoupled weight decay).
          beta1=0.9,
          beta2=0.999,
          epsilon=1e-8,
      ),
      lr_schedule=dict(decay='cosine', end_factor=0.0),  # cosine | linear | constant
      train=dict(
          checkpoint_every_steps=1000,
          max_checkpoints_to_keep=3,
          log_every_steps=50,
          eval_every_steps=0,  # 0: evaluate at the end only
          use_xla=False,
          mixed_precision=False,  # mixed_bfloat16 when True
          total_steps_override=0,  # >0: stop after this many steps (quick runs)
          # Multi-worker: how often (steps) workers agree on a pending SIGTERM before saving.
          preemption_sync_every_steps=10,
      ),
      eval=dict(
          batch_size=64,
          max_examples=0,  # >0: evaluate on the first max_examples examples of each task
          # How the views of an example are combined (multi-crop), one of VIEW_AVERAGING:
          # 'logits' (ViViT / Scenic) averages the logits, 'probs' the views' probabilities.
          view_averaging=VIEW_AVERAGING[0],
          # >0: evaluate at most this many views (clips) per replica in one forward pass;
          # 0 or None = a batch of examples with all their views at once. Results do not
          # depend on it (docs/training.md, "Evaluation"; benchmarks/eval_memory.py).
          max_clips_per_pass=MAX_CLIPS_PER_PASS_DEFAULT,
          periodic_split='eval',  # split of the evaluations every train.eval_every_steps
          # Linear probes (Sec. 5.4, Appendix D): the learning-rate grid (chosen on
          # probe_split) of the tasks that set no tasks.<t>.probe_learning_rates of their own
          # (configs/paper.py:table9_probes sets Table 9's per task).
          probe_learning_rates=(0.03, 0.1, 0.3),
          probe_split='validation',
      ),
      # Initialisation from a pretrained checkpoint (polyvit_tf.checkpoints, docs/checkpoints.md).
      init=dict(
          # '<format>:<path>' with format vit_npz | big_vision_npz | hf | polyvit; '' = random.
          source='',
          # 2D patch kernel -> video tubelet kernel: central_frame (the original's default:
          # zeros but the middle frame t//2) | average (tiled over time, divided by t).
          video_kernel='central_frame',
          # Position-embedding grid resize: bilinear (scipy.ndimage.zoom order=1, corners
          # aligned, as the original) | bilinear_half_pixel (tf.image.resize / jax.image.resize).
          posemb_resize='bilinear',
          # Appendix D (a modality the source lacks, e.g. linear probes): 2D -> tubelet kernel
          # repeat (the paper) | central_frame (what the original code does) | average.
          crossmodal_video_kernel='repeat',
          # polyvit sources: the modality a missing modality is converted from; '' = auto
          # (image, then video, then audio, whichever the source has).
          crossmodal_source='',
          # A task whose head starts from the checkpoint's head (same number of classes, no
          # pre-logits layer); '' = every head new (the paper).
          head_task='',
      ),
      distribution=dict(
          # auto | default | mirrored | multi_worker | tpu. auto: TPU if `tpu` is set,
          # multi_worker if TF_CONFIG names several workers, mirrored if >1 local device
          # (GPUs, or num_cpu_devices logical CPUs), default otherwise.
          strategy='auto', tpu='',
          num_cpu_devices=0),  # >1: split the CPU into this many logical devices
  ))


def assemble(model: ml_collections.ConfigDict, modalities: ml_collections.ConfigDict,
             tasks: dict[str, ml_collections.ConfigDict],
             **sections: Any) -> ml_collections.ConfigDict:
  """A full config from its parts; `sections` update the base sections (e.g. name=...)."""
  cfg = base_config()
  cfg.model = model
  # Only the modalities the tasks use are part of the model.
  used = {t.modality for t in tasks.values()}
  cfg.modalities = ml_collections.ConfigDict(
      {m: modalities[m] for m in modalities_lib.names() if m in used})
  cfg.tasks = ml_collections.ConfigDict(tasks)
  # The TFX pipeline's section (blessing, resources, training mode, InfraValidator).
  cfg.pipeline = pipeline_section.section(tasks)
  for key, value in sections.items():
    if isinstance(value, dict):
      cfg[key].update(value)
    else:
      cfg[key] = value
  return cfg
