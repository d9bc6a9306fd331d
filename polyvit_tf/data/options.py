"""The options of the per-modality preprocessing libraries (image.py, audio.py, video.py).

Frozen values built from the config by each modality's module (polyvit_tf/modalities/<m>.py,
`options`), where the defaults and checks of its `tasks.<t>.data` fields are written; the
resolved options of a task are `polyvit_tf.configs.specs.resolve(config).data[task].options`.
"""

from __future__ import annotations

import dataclasses

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
  augment: bool
  inception_crop_area: tuple[float, float]
  random_flip: bool
  max_pixels: int = MAX_IMAGE_PIXELS


@dataclasses.dataclass(frozen=True)
class AudioOptions:
  frames: int
  mel_bins: int
  channels: int
  norm_mean: float
  norm_std: float
  augment: bool
  freq_masks: int
  freq_mask_width: int
  time_masks: int
  time_mask_width: int
  num_views: int
  sample_rate: int = 16_000  # the front end's rate (filterbank.SAMPLE_RATE)
  min_sample_rate: int = MIN_SAMPLE_RATE
  max_sample_rate: int = MAX_SAMPLE_RATE
  max_seconds: float = MAX_AUDIO_SECONDS


@dataclasses.dataclass(frozen=True)
class VideoOptions:
  num_frames: int
  size: tuple[int, int]
  channels: int
  stride: int
  short_side: int  # 0: round(crop * 256 / 224)
  augment: bool
  scale_jitter: tuple[float, float]
  random_flip: bool
  color_augment: bool
  color_augment_prob: float
  color_drop_prob: float
  temporal_views: int
  spatial_views: int
  max_frames: int = MAX_VIDEO_FRAMES
  max_frame_pixels: int = MAX_IMAGE_PIXELS
  max_video_pixels: int = MAX_VIDEO_PIXELS

  @property
  def resize_short_side(self) -> int:
    return self.short_side or int(round(min(self.size) * SHORT_SIDE_RATIO))

  @property
  def num_views(self) -> int:
    return self.temporal_views * self.spatial_views
