"""The video modality: clips (T, H, W, C) in [-1, 1], 3D tubelets.

tf.Example payload: `video/frames` bytes[] (one JPEG or PNG per frame, in time order) and
`video/frame_rate` float. Canonical payload: {'frames': encoded frames (n,), 'frame_rate'}.
Training (ViViT): a random window of T frames every `data.frame_stride` frames, short side
resized (`data.short_side`, 0 = crop * 256 / 224) with scale jitter, a random crop, flip and
colour augmentation; evaluation and serving: temporal x spatial views (`tasks.<t>.eval_views`,
`data.eval_spatial_views`). Raw-input signatures: `<task>_raw` with `jpeg_frames` string
(batch, frames) (empty strings pad shorter clips) and `<task>_frames` with `frames` uint8
(batch, T, H, W, 3). The preprocessing itself is polyvit_tf/data/video.py.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.data import errors
from polyvit_tf.data import features
from polyvit_tf.data import media
from polyvit_tf.data import video as video_lib
from polyvit_tf.data.options import VideoOptions
from polyvit_tf.modalities import base

FRAMES = 'video/frames'
FRAME_RATE = 'video/frame_rate'
FRAME_EXTENSIONS = ('.jpg', '.jpeg', '.png')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')


def example(example_id: str, labels: int | Sequence[int], frames: Sequence[bytes],
            frame_rate: float) -> tf.train.Example:
  """A video example from JPEG-encoded frames in time order."""
  return features.example(example_id, labels, _frame_features(frames, frame_rate))


def _frame_features(frames: Sequence[bytes], frame_rate: float) -> dict:
  return {FRAMES: features.bytes_feature(frames),
          FRAME_RATE: features.float_feature([frame_rate])}


def view_grid(eval_views: int, spatial_views: int = 0) -> tuple[int, int]:
  """(temporal, spatial) views: spatial 3 when it divides eval_views (ViViT's 4 x 3), else 1."""
  if spatial_views <= 0:
    spatial_views = 3 if eval_views % 3 == 0 else 1
  if eval_views % spatial_views:
    raise ValueError(f'eval_views {eval_views} is not a multiple of spatial views '
                     f'{spatial_views}')
  return eval_views // spatial_views, spatial_views


def frame_files(directory: str) -> list[str]:
  """The frame images of a directory, in file-name order."""
  files = sorted(f for f in os.listdir(directory) if f.lower().endswith(FRAME_EXTENSIONS))
  if not files:
    raise ValueError(f'{directory}: no frame images ({FRAME_EXTENSIONS}).')
  return [os.path.join(directory, f) for f in files]


def decode_video(path: str) -> np.ndarray:
  """uint8 (T, H, W, 3) RGB frames of a video file (PyAV)."""
  import av  # pylint: disable=import-outside-toplevel
  with av.open(path) as container:
    frames = [f.to_ndarray(format='rgb24') for f in container.decode(video=0)]
  if not frames:
    raise ValueError(f'{path}: no video frames decoded.')
  return np.stack(frames)


def _read_frame_dirs(paths: Sequence[str]) -> np.ndarray:
  """Frame directories -> string (batch, frames), '' padding the shorter clips."""
  videos = []
  for directory in paths:
    clip = []
    for path in frame_files(directory):
      with open(path, 'rb') as f:
        clip.append(f.read())
    videos.append(clip)
  length = max(len(v) for v in videos)
  return np.array([v + [b''] * (length - len(v)) for v in videos], dtype=object)


def _read_video_file(paths: Sequence[str]) -> np.ndarray:
  (path,) = paths
  return decode_video(path)[np.newaxis]


def _synthetic_frames(labels: Sequence[int], num_frames: int, size, rng) -> list[bytes]:
  """A blob moving in the direction of the (first) label, JPEG frames a little larger than
  the crop."""
  import io  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  h, w = size[0] + 8, size[1] + 8
  yy, xx = np.mgrid[0:h, 0:w]
  c = labels[0]
  dy, dx = [(0, 1), (0, -1), (1, 0), (-1, 0)][c % 4]
  speed = 1.0 + c // 4
  cy, cx = h / 2 - dy * num_frames * speed / 2, w / 2 - dx * num_frames * speed / 2
  out = []
  for f in range(num_frames):
    blob = np.exp(-((yy - cy - dy * speed * f) ** 2 + (xx - cx - dx * speed * f) ** 2) / 8.0)
    frame = 30 + 200 * blob[..., None] * np.ones(3) + rng.normal(0, 5, (h, w, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)).save(buffer, format='JPEG',
                                                                  quality=90)
    out.append(buffer.getvalue())
  return out


class VideoModality(base.Modality):
  """Video clips (see the module docstring)."""

  name = 'video'
  input_rank = 3
  input_axes = '(T, H, W)'
  data_defaults = {
      'frame_stride': 2,  # frames between sampled frames (ViViT: 32 frames at stride 2)
      'short_side': 0,  # short side before cropping; 0 = crop * 256 / 224
      'scale_jitter': (0.9, 1.33),  # training scale jitter (ViViT)
      'color_augment': False,  # colour jitter / drop (ViViT's Kinetics configs: off)
      'eval_spatial_views': 0,  # spatial crops per temporal view; 0 = 3 if it divides eval_views
  }
  media_extensions = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.mpg', '.mpeg', '.m4v')
  tfds_feature = 'Video'
  tfds_encoded = True

  def options(self, geometry, data: base.DataFields, eval_views: int) -> VideoOptions:
    try:
      temporal, spatial = view_grid(
          eval_views, data.range('eval_spatial_views', integer=True))
    except ValueError as e:
      raise ConfigError(f'tasks.{data.task}.eval_views / {data.key("eval_spatial_views")}: '
                        f'{e}') from None
    opts = VideoOptions(
        num_frames=geometry.input_size[0], size=geometry.input_size[1:],
        channels=geometry.channels, stride=data.range('frame_stride', 1, integer=True),
        short_side=data.range('short_side', 0, integer=True), augment=bool(data['augment']),
        scale_jitter=data.interval('scale_jitter', 0.0), random_flip=bool(data['random_flip']),
        color_augment=bool(data['color_augment']), temporal_views=temporal,
        spatial_views=spatial)
    if opts.resize_short_side < max(opts.size):
      raise data.error('short_side', f'{opts.resize_short_side} is smaller than the crop '
                       f'{opts.size} of modalities.{self.name}.input_size.')
    return opts

  # ------------------------------------------------------------------------ tf.Example
  def feature_spec(self) -> dict:
    return {FRAMES: tf.io.VarLenFeature(tf.string),
            FRAME_RATE: tf.io.FixedLenFeature([], tf.float32, default_value=0.0)}

  def payload_spec(self) -> dict:
    return {'frames': tf.TensorSpec([None], tf.string),
            'frame_rate': tf.TensorSpec([], tf.float32)}

  def parse(self, parsed: dict) -> dict:
    return {'frames': tf.sparse.to_dense(parsed[FRAMES], default_value=''),
            'frame_rate': parsed[FRAME_RATE]}

  def payload_features(self, payload: Mapping[str, np.ndarray]) -> dict:
    return _frame_features(list(payload['frames']), float(payload['frame_rate']))

  def schema_features(self) -> list:
    return [(FRAMES, 'bytes', True), (FRAME_RATE, 'float', True)]

  # ------------------------------------------------------------------------- pipelines
  def train_inputs(self, payload, opts, seed):
    status = tf.where(tf.equal(tf.shape(payload['frames'])[0], 0), errors.EMPTY, errors.OK)
    clip = tf.cond(tf.equal(status, errors.OK),
                   lambda: video_lib.train_clip(payload['frames'], opts, seed),
                   lambda: tf.zeros([opts.num_frames, *opts.size, opts.channels]))
    return clip, status

  def eval_inputs(self, payload, opts):
    status = tf.where(tf.equal(tf.shape(payload['frames'])[0], 0), errors.EMPTY, errors.OK)
    views = tf.cond(tf.equal(status, errors.OK),
                    lambda: video_lib.eval_views(payload['frames'], opts),
                    lambda: tf.zeros([opts.num_views, opts.num_frames, *opts.size,
                                      opts.channels]))
    return views, status

  # --------------------------------------------------------------------------- serving
  def raw_inputs(self, opts):
    def from_jpegs(frames):
      # Rows of a batch may have different lengths: empty strings pad the short ones.
      return video_lib.eval_views(tf.boolean_mask(frames, tf.strings.length(frames) > 0), opts)

    return [
        base.RawInput('raw', tf.TensorSpec((None, None), tf.string, name='jpeg_frames'),
                      from_jpegs),
        base.RawInput('frames', tf.TensorSpec((None, None, None, None, 3), tf.uint8,
                                              name='frames'),
                      lambda frames: video_lib.eval_views(frames, opts)),
    ]

  def client_inputs(self):
    return [base.ClientInput('raw', 'jpeg_frames', ('/',), _read_frame_dirs),
            base.ClientInput('frames', 'frames', VIDEO_EXTENSIONS, _read_video_file,
                             per_file=True)]

  # ----------------------------------------------------------------------- media files
  def convert_file(self, path, opts):
    frames = media.video_frames(path, opts.video_fps, opts.video_short_side,
                                opts.video_max_frames)
    return _frame_features(frames, opts.video_fps)

  def write_media_file(self, payload, stem):
    path = stem + '_frames'
    os.makedirs(path, exist_ok=True)
    for i, frame in enumerate(payload['frames']):
      with open(os.path.join(path, f'frame_{i:04d}.jpg'), 'wb') as f:
        f.write(frame)
    return path

  def synthetic_payload(self, labels, num_classes, geometry, opts, rng):
    del num_classes
    span = (opts.num_frames - 1) * opts.stride + 3
    return _frame_features(_synthetic_frames(labels, span, geometry.input_size[1:], rng), 25.0)

  def tfds_payload(self, value, feature):
    del feature
    return {'frames': value, 'frame_rate': tf.constant(0.0, tf.float32)}


MODALITY = VideoModality()
