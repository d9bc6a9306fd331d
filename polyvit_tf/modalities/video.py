"""The video modality: clips (T, H, W, C) in [-1, 1], 3D tubelets.

tf.Example payload: `video/frames` bytes[] (one JPEG or PNG per frame, in time order) and
`video/frame_rate` float. Canonical payload: {'frames': encoded frames (n,), 'frame_rate'}.
Training (ViViT): a random window of T frames every `data.frame_stride` frames, short side
resized (`data.short_side`, 0 = crop * 256 / 224) with scale jitter, a random crop, flip and
colour augmentation; evaluation and serving: temporal x spatial views (`tasks.<t>.eval_views`,
`data.eval_spatial_views`). Raw-input signatures: `<task>_raw` with `jpeg_frames` string
(batch, frames) (empty strings pad shorter clips) and `<task>_frames` with `frames` uint8
(batch, T, H, W, 3); the serving client sends a directory of frames, or a video file's frames
taken as the converter takes them, to `<task>_raw`. The preprocessing itself is
polyvit_tf/data/video.py.
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
from polyvit_tf.data import options as options_lib
from polyvit_tf.data import video as video_lib
from polyvit_tf.data.options import VideoOptions
from polyvit_tf.modalities import base
from polyvit_tf.modalities import describe
from polyvit_tf.modalities import image as image_modality

FRAMES = 'video/frames'
FRAME_RATE = 'video/frame_rate'
FRAME_EXTENSIONS = ('.jpg', '.jpeg', '.png')
# What the serving client takes frames from a video file at (the converter's defaults).
DEFAULT_CLIENT_FPS, DEFAULT_CLIENT_SHORT_SIDE = 25.0, 256


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
    raise media.MediaError(f'no frame images ({", ".join(FRAME_EXTENSIONS)}) in the directory')
  return [os.path.join(directory, f) for f in files]


def check_video_file(path: str) -> None:
  """The video's frame size (FFmpeg's stream parameters) is within the decode budget."""
  import av  # pylint: disable=import-outside-toplevel
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise media.MediaError('no video stream')
      stream = container.streams.video[0]
      width, height = stream.codec_context.width, stream.codec_context.height
  except media.MediaError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise media.MediaError(f'undecodable video ({type(e).__name__}: {str(e)[:160]})') from None
  if width * height > options_lib.MAX_IMAGE_PIXELS:
    raise media.MediaError(f'{width} x {height} pixels exceed the decode budget of '
                           f'{options_lib.MAX_IMAGE_PIXELS} pixels (max_image_pixels)')


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
      # Colour augmentation (DMVR's color_default_augm, as the original PolyViT and ViViT's
      # vivit_base_k400 configs: do_color_augment=True): with probability
      # color_augment_prob brightness, saturation, contrast and hue jitter, then with
      # probability color_drop_prob grey scale. Images have none (the original code).
      'color_augment': True,
      'color_augment_prob': 0.8,
      'color_drop_prob': 0.1,
      'eval_spatial_views': 0,  # spatial crops per temporal view; 0 = 3 if it divides eval_views
  }
  media_extensions = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.mpg', '.mpeg', '.m4v')
  tfds_feature = 'Video'
  tfds_encoded = True
  crossmodal_rank = 1

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
        color_augment=bool(data['color_augment']),
        color_augment_prob=data.range('color_augment_prob', 0.0, 1.0),
        color_drop_prob=data.range('color_drop_prob', 0.0, 1.0), temporal_views=temporal,
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
    status = video_lib.clip_status(payload['frames'], opts, training=True)
    clip = tf.cond(tf.equal(status, errors.OK),
                   lambda: video_lib.train_clip(payload['frames'], opts, seed),
                   lambda: tf.zeros([opts.num_frames, *opts.size, opts.channels]))
    return clip, status

  def eval_checks(self, payload, opts):
    return video_lib.clip_checks(payload['frames'], opts)

  def eval_inputs(self, payload, opts):
    status = errors.check_status(self.eval_checks(payload, opts))
    views = tf.cond(tf.equal(status, errors.OK),
                    lambda: video_lib.eval_views(payload['frames'], opts),
                    lambda: tf.zeros([opts.num_views, opts.num_frames, *opts.size,
                                      opts.channels]))
    return views, status

  # --------------------------------------------------------------------------- serving
  def raw_inputs(self, opts):
    def views(frames):  # the clip is checked against the decode budgets first
      return video_lib.eval_views(errors.gated(frames, video_lib.assert_clip(frames, opts)),
                                  opts)

    def from_jpegs(frames):
      # Rows of a batch may have different lengths: empty strings pad the short ones.
      return views(tf.boolean_mask(frames, tf.strings.length(frames) > 0))

    return [
        base.RawInput('raw', tf.TensorSpec((None, None), tf.string, name='jpeg_frames'),
                      from_jpegs),
        base.RawInput('frames', tf.TensorSpec((None, None, None, None, 3), tf.uint8,
                                              name='frames'), views),
    ]

  def preprocessing_spec(self, opts: options_lib.VideoOptions) -> dict:
    """Eval / serving preprocessing of a video task (data/video.py eval_views)."""
    return {
        'modality': 'video',
        'input': 'decoded RGB frames, uint8 (n, height, width, 3), in time order (the raw '
                 'signature decodes one JPEG / PNG per frame)',
        'frames': opts.num_frames,
        'stride': opts.stride,
        'frame_indices': '(start + i * stride) mod n for i < frames (a short clip loops)',
        'channels': opts.channels,
        'grayscale': describe.GRAYSCALE if opts.channels == 1 else None,
        'resize': {'short_side': opts.resize_short_side, 'keep_aspect_ratio': True,
                   'size_doc': 'round_half_even(h * s / min(h, w)), round_half_even(w * s / '
                               'min(h, w)) in float32',
                   **describe.bilinear(video_lib.RESIZE_METHOD)},
        'crop': {'size': list(opts.size),
                 'doc': 'one spatial view: centred ((h - H) // 2, (w - W) // 2); more: '
                        'offsets round_half_even(i / (count - 1) * (side - crop)) along the '
                        'longer side, centred along the other'},
        'value_scaling': describe.value_scaling(),
        'views': {'count': opts.num_views, 'temporal': opts.temporal_views,
                  'spatial': opts.spatial_views, 'length': video_lib.span(opts),
                  'placement': describe.EVENLY_SPACED,
                  'order': 'temporal-major: view = t * spatial + s'},
        'limits': {'max_frames': opts.max_frames, 'max_frame_pixels': opts.max_frame_pixels,
                   'max_video_pixels': opts.max_video_pixels,
                   'doc': 'frames of the clip; height x width of a frame; frames decoded x the '
                          'larger of the decoded and the resized frame size (the raw signature '
                          'refuses more)'},
    }

  def warmup_input(self, suffix, geometry):
    """A clip of 2 T moving 16 x 16 frames: uint8 for `frames`, JPEG for `raw`."""
    pixels = base.warmup_pixels()
    frames = np.stack([np.roll(pixels, t, axis=1) for t in range(2 * geometry.input_size[0])])
    if suffix == 'frames':
      return frames[np.newaxis]
    return np.array([[tf.io.encode_jpeg(f).numpy() for f in frames]], dtype=object)

  def client_file(self, path, settings):
    """A directory of JPEG / PNG frames (in file-name order, as they are), or any video
    FFmpeg reads as JPEG frames at `video_fps` with the short side resized to
    `video_short_side` (the converter's defaults): the frames of `<task>_raw`."""
    if os.path.isdir(path):
      frames = []
      for f in frame_files(path):
        image_modality.check_image_file(f)
        with open(f, 'rb') as stream:
          frames.append(stream.read())
      return frames
    check_video_file(path)
    return media.video_frames(path, settings.get('video_fps', DEFAULT_CLIENT_FPS),
                              settings.get('video_short_side', DEFAULT_CLIENT_SHORT_SIDE),
                              max_frames=options_lib.MAX_VIDEO_FRAMES)

  # ----------------------------------------------------------------------- media files
  def convert_file(self, path, opts):
    frames = media.video_frames(path, opts.video_fps, opts.video_short_side,
                                opts.video_max_frames, limits=opts.limits)
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
