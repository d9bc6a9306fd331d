"""Per-task preprocessing settings, derived from the config (the single source of truth).

Input geometry comes from `modalities.<m>` (via polyvit_tf.model.spec); augmentation and
normalisation settings from `tasks.<t>.data` (see polyvit_tf.configs.base.data_config);
the number of evaluation views from `tasks.<t>.eval_views`.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from polyvit_tf.data import errors
from polyvit_tf.model import spec as spec_lib

# ViViT resizes the short side to 256 before taking 224 crops; other crop sizes keep the ratio.
SHORT_SIDE_RATIO = 256 / 224

# Decode budgets: what one example may cost, checked from headers and shapes before any
# decoding or resampling, the same in training, evaluation and the serving signatures
# (docs/serving.md, "Limits"). A 12 MP photo, a 2-minute clip, a 1080p window fit.
MAX_IMAGE_PIXELS = 1 << 24        # decoded pixels of one image or video frame (16.8 M)
MIN_SAMPLE_RATE = 1_000           # Hz
MAX_SAMPLE_RATE = 384_000         # Hz
MAX_AUDIO_SECONDS = 120.0         # clip duration
MAX_VIDEO_FRAMES = 100_000        # frames of one clip
MAX_VIDEO_PIXELS = 1 << 25        # frames decoded for one clip x pixels per frame (33.6 M)


@dataclasses.dataclass(frozen=True)
class ImageOptions:
  size: tuple[int, int]
  channels: int
  augment: bool = True
  inception_crop_area: tuple[float, float] = (0.05, 1.0)
  random_flip: bool = True
  max_pixels: int = MAX_IMAGE_PIXELS


@dataclasses.dataclass(frozen=True)
class AudioOptions:
  frames: int
  mel_bins: int
  channels: int
  sample_rate: int = 16_000
  norm_mean: float = -4.2677393
  norm_std: float = 4.5689974
  augment: bool = True
  freq_masks: int = 1
  freq_mask_width: int = 48
  time_masks: int = 4
  time_mask_width: int = 48
  num_views: int = 1
  min_sample_rate: int = MIN_SAMPLE_RATE
  max_sample_rate: int = MAX_SAMPLE_RATE
  max_seconds: float = MAX_AUDIO_SECONDS


@dataclasses.dataclass(frozen=True)
class VideoOptions:
  num_frames: int
  size: tuple[int, int]
  channels: int
  stride: int = 2
  short_side: int = 0  # 0: round(crop * 256 / 224)
  augment: bool = True
  scale_jitter: tuple[float, float] = (0.9, 1.33)
  random_flip: bool = True
  color_augment: bool = True
  color_augment_prob: float = 0.8
  color_drop_prob: float = 0.1
  temporal_views: int = 1
  spatial_views: int = 1
  max_frames: int = MAX_VIDEO_FRAMES
  max_frame_pixels: int = MAX_IMAGE_PIXELS
  max_video_pixels: int = MAX_VIDEO_PIXELS

  @property
  def resize_short_side(self) -> int:
    return self.short_side or int(round(min(self.size) * SHORT_SIDE_RATIO))

  @property
  def num_views(self) -> int:
    return self.temporal_views * self.spatial_views


Options = ImageOptions | AudioOptions | VideoOptions


def _get(data: ml_collections.ConfigDict, key: str, default):
  return data[key] if key in data else default


def video_view_grid(eval_views: int, spatial_views: int = 0) -> tuple[int, int]:
  """(temporal, spatial) views: spatial 3 when it divides eval_views (ViViT's 4 x 3), else 1."""
  if spatial_views <= 0:
    spatial_views = 3 if eval_views % 3 == 0 else 1
  if eval_views % spatial_views:
    raise ValueError(f'eval_views {eval_views} is not a multiple of spatial views '
                     f'{spatial_views}')
  return eval_views // spatial_views, spatial_views


def for_task(config: ml_collections.ConfigDict, task: str) -> Options:
  """The preprocessing settings of `task`; DataConfigError names a bad field."""
  t = spec_lib.task_spec(config, task)
  m = spec_lib.modality_spec(config, t.modality)
  cfg = config.tasks[task]
  data = cfg.data
  key = f'tasks.{task}'
  views = int(cfg.eval_views)
  if views < 1:
    raise errors.DataConfigError(f'{key}.eval_views must be >= 1, got {views}.')
  augment = bool(_get(data, 'augment', True))
  if t.modality == 'image':
    area = tuple(float(a) for a in _get(data, 'inception_crop_area', (0.05, 1.0)))
    if not 0.0 < area[0] <= area[1] <= 1.0:
      raise errors.DataConfigError(f'{key}.data.inception_crop_area must be 0 < min <= max '
                                   f'<= 1, got {area}.')
    return ImageOptions(size=m.input_size, channels=m.channels, augment=augment,
                        inception_crop_area=area,
                        random_flip=bool(_get(data, 'random_flip', True)))
  if t.modality == 'audio':
    std = float(_get(data, 'audio_norm_std', 4.5689974))
    if std <= 0:
      raise errors.DataConfigError(f'{key}.data.audio_norm_std must be > 0, got {std}.')
    return AudioOptions(
        frames=m.input_size[0], mel_bins=m.input_size[1], channels=m.channels,
        norm_mean=float(_get(data, 'audio_norm_mean', -4.2677393)), norm_std=std,
        augment=augment,
        freq_masks=int(_get(data, 'specaugment_freq_masks', 1)),
        freq_mask_width=int(_get(data, 'specaugment_freq_width', 48)),
        time_masks=int(_get(data, 'specaugment_time_masks', 4)),
        time_mask_width=int(_get(data, 'specaugment_time_width', 48)),
        num_views=views)
  try:
    temporal, spatial = video_view_grid(views, int(_get(data, 'eval_spatial_views', 0)))
  except ValueError as e:
    raise errors.DataConfigError(f'{key}.eval_views / data.eval_spatial_views: {e}') from None
  jitter = tuple(float(s) for s in _get(data, 'scale_jitter', (0.9, 1.33)))
  if not 0.0 < jitter[0] <= jitter[1]:
    raise errors.DataConfigError(f'{key}.data.scale_jitter must be 0 < min <= max, got {jitter}.')
  stride = int(_get(data, 'frame_stride', 2))
  if stride < 1:
    raise errors.DataConfigError(f'{key}.data.frame_stride must be >= 1, got {stride}.')
  color_probs = {f: float(_get(data, f, d))
                 for f, d in (('color_augment_prob', 0.8), ('color_drop_prob', 0.1))}
  for field, p in color_probs.items():
    if not 0.0 <= p <= 1.0:
      raise errors.DataConfigError(f'{key}.data.{field} must be in [0, 1], got {p}.')
  opts = VideoOptions(
      num_frames=m.input_size[0], size=m.input_size[1:], channels=m.channels, stride=stride,
      short_side=int(_get(data, 'short_side', 0)), augment=augment, scale_jitter=jitter,
      random_flip=bool(_get(data, 'random_flip', True)),
      color_augment=bool(_get(data, 'color_augment', True)), **color_probs,
      temporal_views=temporal, spatial_views=spatial)
  if opts.resize_short_side < max(opts.size):
    raise errors.DataConfigError(
        f'{key}.data.short_side {opts.resize_short_side} is smaller than the crop '
        f'{opts.size} of modalities.video.input_size.')
  return opts
