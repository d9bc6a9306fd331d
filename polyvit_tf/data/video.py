"""Video preprocessing (ViViT): T frames at stride s, short-side resize, crops, [-1, 1].

Train: a random temporal window of T frames taken every `stride` frames (looping over the
clip when it is shorter, as DMVR does), short side resized to `short_side` times a scale
jitter factor in `scale_jitter`, a random crop of the configured size, a random horizontal
flip, then colour augmentation (`augment.color_augment` with `color_augment_prob` and
`color_drop_prob`; on by default, as in the original PolyViT and ViViT's Kinetics configs;
3-channel clips only). Eval: `temporal_views` windows evenly spaced over the clip x
`spatial_views` crops (one: centre; three: start, centre and end of the longer side) of the
clip resized to `short_side`, temporal-major (view = t * spatial + s).
Only the frames a window uses are decoded.

Budgets (VideoOptions: max_frames, max_frame_pixels, max_video_pixels): `clip_checks`
reads the first frame's size (its header for encoded frames) and bounds the frames the
clip's windows decode times the larger of the decoded and the resized frame size (a 1 x
8000 frame resized to a short side of 256 would be 2 M pixels); `decode_frames` checks
that every frame it decodes has that same header size. `clip_status` is the checks'
status (training skips the clip), `assert_clip` their assertion (serving).
"""

from __future__ import annotations

import tensorflow as tf

from polyvit_tf.data import audio as audio_lib
from polyvit_tf.data import augment
from polyvit_tf.data import errors
from polyvit_tf.data import image as image_lib
from polyvit_tf.data import options as options_lib
from polyvit_tf.data.options import VideoOptions

RESIZE_METHOD = 'bilinear'  # short-side resize (tf.image.resize)


def window_indices(num_frames: tf.Tensor, start: tf.Tensor, opts: VideoOptions) -> tf.Tensor:
  """Frame indices of one window, looping over a short clip, int32 (T,)."""
  steps = tf.range(opts.num_frames, dtype=tf.int32) * opts.stride
  return (tf.cast(start, tf.int32) + steps) % tf.maximum(tf.cast(num_frames, tf.int32), 1)


def span(opts: VideoOptions) -> int:
  """Frames covered by one window."""
  return (opts.num_frames - 1) * opts.stride + 1


def frame_size(frames: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(height, width) int64 of a clip's first frame (from its header when encoded); -1 when
  the clip is empty or the header unreadable."""
  if frames.dtype != tf.string:
    shape = tf.shape(frames, out_type=tf.int64)
    return shape[1], shape[2]
  first = tf.concat([frames[:1], ['']], axis=0)[0]
  _, height, width = image_lib.header_size(first)
  return height, width


def _decoded_frames(opts: VideoOptions, training: bool) -> int:
  return opts.num_frames * (1 if training else opts.temporal_views)


def clip_checks(frames: tf.Tensor, opts: VideoOptions, *, training: bool = False) -> list:
  """errors.Check list of one clip's frames (encoded (n,) or uint8 (n, h, w, 3))."""
  n = tf.shape(frames, out_type=tf.int64)[0]
  height, width = frame_size(frames)
  short = float(opts.resize_short_side)
  if training and opts.augment:  # the largest scale jitter
    short = max(round(short * opts.scale_jitter[1]), float(max(opts.size)))
  scale = short / tf.cast(tf.maximum(tf.minimum(height, width), 1), tf.float64)
  resized = image_lib.pixels(tf.math.round(tf.cast(height, tf.float64) * scale),
                             tf.math.round(tf.cast(width, tf.float64) * scale))
  per_frame = tf.maximum(image_lib.pixels(height, width), resized)
  count = _decoded_frames(opts, training)
  first = [] if frames.dtype != tf.string else image_lib.budget_checks(
      tf.concat([frames[:1], ['']], axis=0)[0], opts.max_frame_pixels, 'video frame 0')
  return [
      (tf.equal(n, 0), errors.EMPTY, 'video has no frames'),
      (n > opts.max_frames, errors.OVER_BUDGET,
       errors.text('video of ', n, ' frames exceeds the budget of ', str(opts.max_frames),
                   ' frames (max_video_frames)')),
  ] + first + [
      ((height < 1) | (width < 1), errors.UNDECODABLE,
       errors.text('video frames of ', height, ' x ', width, ' pixels')),
      (image_lib.pixels(height, width) > opts.max_frame_pixels, errors.OVER_BUDGET,
       errors.text('video frames of ', height, ' x ', width, ' pixels exceed the budget of ',
                   str(opts.max_frame_pixels), ' pixels per frame (max_image_pixels)')),
      (count * per_frame > opts.max_video_pixels, errors.OVER_BUDGET,
       errors.text(str(count), ' decoded frames of ', height, ' x ', width, ' pixels (',
                   per_frame, ' after resizing to a short side of ', f'{short:g}',
                   ') exceed the budget of ', str(opts.max_video_pixels),
                   ' frame pixels per video (max_video_pixels)')),
  ]


def clip_status(frames: tf.Tensor, opts: VideoOptions, *, training: bool = False) -> tf.Tensor:
  """errors status of a clip under `opts`' budgets (OK: safe to decode)."""
  return errors.check_status(clip_checks(frames, opts, training=training))


def assert_clip(frames: tf.Tensor, opts: VideoOptions) -> tf.Operation:
  """Fails (InvalidArgumentError naming the limit) unless the clip is within budget."""
  return errors.assert_checks(clip_checks(frames, opts))


def _same_size_check(frames: tf.Tensor, picked: tf.Tensor) -> tf.Operation:
  """Every picked encoded frame's header declares the first frame's size."""
  height, width = frame_size(frames)
  sizes = tf.map_fn(lambda f: tf.stack(image_lib.header_size(f)[1:]), picked,
                    fn_output_signature=tf.TensorSpec([2], tf.int64))
  same = tf.reduce_all(tf.equal(sizes, tf.stack([height, width])), axis=1)
  bad = tf.argmin(tf.cast(same, tf.int32))
  return errors.assert_checks([(
      ~tf.reduce_all(same), errors.UNDECODABLE,
      errors.text('video frames differ in size: ', sizes[bad][0], ' x ', sizes[bad][1],
                  ' after ', height, ' x ', width))])


def decode_frames(frames: tf.Tensor, indices: tf.Tensor, channels: int = 3,
                  max_frame_pixels: int = options_lib.MAX_IMAGE_PIXELS) -> tf.Tensor:
  """Encoded frames (n,) or uint8 frames (n, h, w, 3) -> uint8 (len(indices), h, w, C).

  Encoded frames are decoded only when every picked one has the first frame's size.
  """
  picked = tf.gather(frames, indices)
  if picked.dtype == tf.string:
    picked = errors.gated(picked, _same_size_check(frames, picked))
    picked = tf.map_fn(
        lambda f: image_lib.decode(f, 3, max_frame_pixels), picked,
        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
  if channels == 1:
    picked = tf.image.rgb_to_grayscale(picked)
  return picked


def _resize_short_side(frames: tf.Tensor, short_side: tf.Tensor) -> tf.Tensor:
  """(T, h, w, C) -> float32 with min(h', w') == short_side, aspect ratio kept."""
  h = tf.cast(tf.shape(frames)[1], tf.float32)
  w = tf.cast(tf.shape(frames)[2], tf.float32)
  scale = tf.cast(short_side, tf.float32) / tf.minimum(h, w)
  new = tf.cast(tf.math.round(tf.stack([h * scale, w * scale])), tf.int32)
  return tf.image.resize(tf.cast(frames, tf.float32), new, method=RESIZE_METHOD)


def _to_unit(frames: tf.Tensor) -> tf.Tensor:
  return image_lib.to_unit_range(frames)


def train_clip(frames: tf.Tensor, opts: VideoOptions, seed: tf.Tensor) -> tf.Tensor:
  """One clip's frames (encoded (n,) or uint8 (n, h, w, 3)) -> float32 (T, H, W, C)."""
  t_seed, scale_seed, crop_seed, flip_seed, color_seed = augment.split(seed, 5)
  n = tf.shape(frames)[0]
  if opts.augment:
    start = augment.uniform_int(t_seed, 0, n - span(opts))
  else:
    start = audio_lib.view_starts(n, span(opts), 1)[0]
  clip = decode_frames(frames, window_indices(n, start, opts), opts.channels,
                       opts.max_frame_pixels)
  height, width = opts.size
  short = float(opts.resize_short_side)
  if opts.augment:
    low, high = opts.scale_jitter
    factor = low + (high - low) * tf.random.stateless_uniform([], scale_seed)
    short = tf.maximum(tf.math.round(short * factor), float(max(height, width)))
  clip = _resize_short_side(clip, short)
  if opts.augment:
    clip = tf.image.stateless_random_crop(
        clip, [opts.num_frames, height, width, opts.channels], crop_seed)
    if opts.random_flip:
      flip = augment.bernoulli(flip_seed, 0.5)
      clip = tf.cond(flip, lambda: tf.reverse(clip, axis=[2]), lambda: clip)
    if opts.color_augment and opts.channels == 3:
      clip = augment.color_augment(clip / 255.0, color_seed, prob_color=opts.color_augment_prob,
                                   prob_drop=opts.color_drop_prob) * 255.0
  else:
    clip = _spatial_crops(clip, opts.size, 1)[0]
  return tf.ensure_shape(_to_unit(clip), (opts.num_frames, height, width, opts.channels))


def _spatial_crops(clip: tf.Tensor, size, num: int) -> list[tf.Tensor]:
  """`num` crops of `size` (centre; or start, centre, end along the longer side)."""
  height, width = size
  h, w = tf.shape(clip)[1], tf.shape(clip)[2]
  centre = ((h - height) // 2, (w - width) // 2)
  if num == 1:
    offsets = [centre]
  else:
    along_height = h > w
    offsets = []
    for i in range(num):
      frac = i / (num - 1)
      oh = tf.cast(tf.math.round(frac * tf.cast(h - height, tf.float32)), tf.int32)
      ow = tf.cast(tf.math.round(frac * tf.cast(w - width, tf.float32)), tf.int32)
      offsets.append((tf.where(along_height, oh, centre[0]),
                      tf.where(along_height, centre[1], ow)))
  return [clip[:, oh:oh + height, ow:ow + width, :] for oh, ow in offsets]


def eval_views(frames: tf.Tensor, opts: VideoOptions) -> tf.Tensor:
  """One clip's frames -> float32 (temporal * spatial views, T, H, W, C)."""
  n = tf.shape(frames)[0]
  starts = audio_lib.view_starts(n, span(opts), opts.temporal_views)
  views = []
  for t in range(opts.temporal_views):
    clip = decode_frames(frames, window_indices(n, starts[t], opts), opts.channels,
                         opts.max_frame_pixels)
    clip = _resize_short_side(clip, opts.resize_short_side)
    for crop in _spatial_crops(clip, opts.size, opts.spatial_views):
      views.append(tf.ensure_shape(_to_unit(crop), (opts.num_frames, *opts.size,
                                                    opts.channels)))
  return tf.stack(views, axis=0)
