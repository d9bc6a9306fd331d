"""What an app needs to reproduce a task's serving preprocessing, as a JSON-able dict.

Every value is read from the config (polyvit_tf.data.options.for_task: geometry, views,
normalisation, stride, crops; `eval.view_averaging`) or from the constants of the
preprocessing code the SavedModel's raw signatures run (data/image.py, audio.py, video.py,
filterbank.py); nothing is typed a second time. The TFLite manifest carries it per task
(export/tflite.py, `preprocessing` and `combine_views`) and polyvit_tf/edge/
reference_preprocess.py executes it. One function per modality (`image_spec`, `audio_spec`,
`video_spec`); `for_task` picks by the task's modality.
"""

from __future__ import annotations

import ml_collections

from polyvit_tf.data import audio as audio_lib
from polyvit_tf.data import filterbank
from polyvit_tf.data import image as image_lib
from polyvit_tf.data import options as options_lib
from polyvit_tf.data import resample as resample_lib
from polyvit_tf.data import video as video_lib
from polyvit_tf.export import signatures as signatures_lib
from polyvit_tf.model import spec as spec_lib

FORMAT = 'polyvit_tf.preprocessing/1'
# tf.image.rgb_to_grayscale (data/image.py and data/video.py use it for one-channel inputs).
_GRAYSCALE = {'weights': [0.2989, 0.5870, 0.1140], 'max_value': 255,
              'doc': 'tf.image.rgb_to_grayscale: g = (r w0 + g w1 + b w2) / 255 in float32, '
                     'uint8 = trunc(g * 255.5)'}
_EVENLY_SPACED = ('starts of `count` windows of `length` steps over a clip of `total`: one '
                  'window centred at (total - length) // 2 (0 when shorter); more: '
                  'round_half_even(linspace(0, max(total - length, 0), count)) in float32')


def _value_scaling() -> dict:
  return {'divisor': image_lib.PIXEL_DIVISOR, 'offset': image_lib.PIXEL_OFFSET,
          'doc': 'float32 pixels in [0, 255] (after resizing) -> x / divisor + offset'}


def _bilinear(method: str) -> dict:
  return {'method': method, 'half_pixel_centers': True, 'antialias': False,
          'doc': 'tf.image.resize: source position (i + 0.5) * in / out - 0.5, clamped '
                 'neighbours, float32 lerp along width then height'}


def image_spec(opts: options_lib.ImageOptions) -> dict:
  """Eval / serving preprocessing of an image task (data/image.py eval_image)."""
  return {
      'modality': 'image',
      'input': 'decoded RGB pixels, uint8 (height, width, 3), any size (the raw signature '
               'decodes JPEG / PNG / GIF / BMP with tf.io.decode_image)',
      'channels': opts.channels,
      'grayscale': _GRAYSCALE if opts.channels == 1 else None,
      'resize': {'size': list(opts.size), 'keep_aspect_ratio': False,
                 **_bilinear(image_lib.RESIZE_METHOD)},
      'value_scaling': _value_scaling(),
      'views': {'count': 1},
      'limits': {'max_pixels': opts.max_pixels,
                 'doc': 'height x width of the decoded image (the raw signature refuses more)'},
  }


def audio_spec(opts: options_lib.AudioOptions) -> dict:
  """Eval / serving preprocessing of an audio task (data/audio.py log_mel + eval_views)."""
  window, hop, fft_length = filterbank.frame_geometry(opts.sample_rate)
  high_freq = filterbank.HIGH_FREQ
  return {
      'modality': 'audio',
      'input': 'mono float waveform in [-1, 1] at any sample rate (the raw signature reads '
               '16-bit PCM WAV: samples / 32768, channels averaged)',
      'wav': {'sample_width_bytes': 2, 'scale': 1.0 / 32768, 'channels': 'mean'},
      'resample': {'method': 'fft', 'to': opts.sample_rate,
                   'compute_dtype': resample_lib.COMPUTE_DTYPE.name,
                   'doc': 'scipy.signal.resample: rfft, keep the bins below both Nyquist '
                          'frequencies (an even common length doubles (down) or halves (up) '
                          'its Nyquist bin), irfft at round_half_even(n * to / rate), times '
                          'new length / old length; skipped when the rate is already `to`'},
      'log_mel': {
          'sample_rate': opts.sample_rate,
          'subtract_mean': filterbank.SUBTRACT_MEAN,
          'frame_length': window, 'frame_shift': hop,
          'frame_length_ms': filterbank.FRAME_LENGTH_MS,
          'frame_shift_ms': filterbank.FRAME_SHIFT_MS,
          'fft_length': fft_length,
          'preemphasis': filterbank.PREEMPHASIS,
          'window': filterbank.WINDOW,
          'mel_bins': opts.mel_bins,
          'low_freq': filterbank.LOW_FREQ,
          'high_freq': high_freq if high_freq > 0 else 0.5 * opts.sample_rate + high_freq,
          'log_floor': filterbank.LOG_FLOOR,
          'compute_dtype': filterbank.COMPUTE_DTYPE.name,
          'doc': 'Kaldi fbank (torchaudio.compliance.kaldi.fbank, htk_compat, no dither, no '
                 'energy): clip mean removed; whole frames only (snip_edges); per-frame DC '
                 'removal; pre-emphasis x[i] - p x[i-1] (x[-1] = x[0]); window; zero-padded '
                 'rfft; power |X|^2; Kaldi mel filters 1127 ln(1 + f / 700), triangles in '
                 'mel space, Nyquist row zero; ln(max(mel, log_floor))',
      },
      'frames': opts.frames,
      'pad_value': filterbank.LOG_FLOOR_VALUE,
      'normalization': {'mean': opts.norm_mean, 'std': opts.norm_std,
                        'std_scale': audio_lib.NORM_STD_SCALE,
                        'doc': '(x - mean) / (std_scale * std)'},
      'channels': opts.channels,
      'views': {'count': opts.num_views, 'length': opts.frames, 'placement': _EVENLY_SPACED,
                'doc': 'each view: `frames` log-mel frames from its start, padded at the end '
                       'with pad_value, normalised, tiled to `channels`'},
      'limits': {'sample_rate': [opts.min_sample_rate, opts.max_sample_rate],
                 'max_seconds': opts.max_seconds, 'min_resampled_samples': window,
                 'doc': 'refused like the raw signature: a rate outside `sample_rate`, a clip '
                        'longer than max_seconds, or under one analysis window (frame_length '
                        'samples) once resampled (round_half_even(n * to / rate))'},
  }


def video_spec(opts: options_lib.VideoOptions) -> dict:
  """Eval / serving preprocessing of a video task (data/video.py eval_views)."""
  return {
      'modality': 'video',
      'input': 'decoded RGB frames, uint8 (n, height, width, 3), in time order (the raw '
               'signature decodes one JPEG / PNG per frame)',
      'frames': opts.num_frames,
      'stride': opts.stride,
      'frame_indices': '(start + i * stride) mod n for i < frames (a short clip loops)',
      'channels': opts.channels,
      'grayscale': _GRAYSCALE if opts.channels == 1 else None,
      'resize': {'short_side': opts.resize_short_side, 'keep_aspect_ratio': True,
                 'size_doc': 'round_half_even(h * s / min(h, w)), round_half_even(w * s / '
                             'min(h, w)) in float32',
                 **_bilinear(video_lib.RESIZE_METHOD)},
      'crop': {'size': list(opts.size),
               'doc': 'one spatial view: centred ((h - H) // 2, (w - W) // 2); more: '
                      'offsets round_half_even(i / (count - 1) * (side - crop)) along the '
                      'longer side, centred along the other'},
      'value_scaling': _value_scaling(),
      'views': {'count': opts.num_views, 'temporal': opts.temporal_views,
                'spatial': opts.spatial_views, 'length': video_lib.span(opts),
                'placement': _EVENLY_SPACED, 'order': 'temporal-major: view = t * spatial + s'},
      'limits': {'max_frames': opts.max_frames, 'max_frame_pixels': opts.max_frame_pixels,
                 'max_video_pixels': opts.max_video_pixels,
                 'doc': 'frames of the clip; height x width of a frame; frames decoded x the '
                        'larger of the decoded and the resized frame size (the raw signature '
                        'refuses more)'},
  }


_BY_MODALITY = {'image': image_spec, 'audio': audio_spec, 'video': video_spec}


def for_task(config: ml_collections.ConfigDict, task: str) -> dict:
  """The preprocessing of `task`: its modality's spec of options_lib.for_task(config, task)."""
  modality = spec_lib.task_spec(config, task).modality
  if modality not in _BY_MODALITY:
    raise ValueError(f'task {task!r}: no preprocessing spec for modality {modality!r}.')
  return _BY_MODALITY[modality](options_lib.for_task(config, task))


def combine_views(config: ml_collections.ConfigDict) -> dict:
  """How the views of one example are combined (the evaluator's eval.view_averaging)."""
  return {'mode': signatures_lib.view_averaging(config),
          'doc': 'logits = mean of the view logits; probabilities = mean of the views\' '
                 'probabilities (probs) or the activation of the mean logits (logits)'}
