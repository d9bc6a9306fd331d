"""Kernel and position-embedding conversions between 2D patches, tubelets and channel counts.

Kernels are channels-last: 2D (h, w, C, D), tubelet (t, h, w, C, D). Position-embedding grids
are (gh, gw, D) or (gt, gh, gw, D); tokens are ordered (t, h, w) row-major (the Tokenizer's
order), so tiling a 2D grid over time repeats the whole frame grid once per temporal slot.
"""

from __future__ import annotations

import numpy as np

from polyvit_tf.configs import base

VIDEO_KERNELS = base.VIDEO_KERNELS


def inflate_kernel(kernel: np.ndarray, frames: int, method: str) -> np.ndarray:
  """A 2D patch kernel (h, w, C, D) as a tubelet kernel (frames, h, w, C, D).

  central_frame: zeros except frame `frames // 2` (ViViT's and the original's default).
  average: the kernel on every frame divided by `frames` ("filter inflation", I3D).
  repeat: the kernel on every frame, undivided (the paper's Appendix D for probes).
  central_frame and average give the 2D embedding on a clip of identical frames.
  """
  if kernel.ndim != 4:
    raise ValueError(f'expected a 2D patch kernel (h, w, C, D), got shape {kernel.shape}.')
  if method == 'central_frame':
    out = np.zeros((frames,) + kernel.shape, kernel.dtype)
    out[frames // 2] = kernel
    return out
  tiled = np.repeat(kernel[None], frames, axis=0)
  if method == 'average':
    return (tiled / frames).astype(kernel.dtype)
  if method == 'repeat':
    return tiled
  raise ValueError(f'video kernel method must be one of {VIDEO_KERNELS}, got {method!r}.')


def sum_frames(kernel: np.ndarray) -> np.ndarray:
  """A tubelet kernel (t, h, w, C, D) as a 2D kernel: the sum over frames (Appendix D)."""
  if kernel.ndim != 5:
    raise ValueError(f'expected a tubelet kernel (t, h, w, C, D), got shape {kernel.shape}.')
  return kernel.sum(axis=0)


def convert_channels(kernel: np.ndarray, channels: int) -> tuple[np.ndarray, str]:
  """(kernel with `channels` input channels, what was done).

  3 -> 1: the sum over RGB, so a 1-channel input x gives what the RGB kernel gives on x tiled
  to three channels (AST and the original feed log-mels tiled to 3 channels).
  1 -> 3: the kernel copied to every channel and divided by 3 (the inverse: an input whose
  three channels are equal gives the 1-channel embedding); not in the paper.
  """
  have = kernel.shape[-2]
  if have == channels:
    return kernel, ''
  if channels == 1:
    return kernel.sum(axis=-2, keepdims=True), f'summed over {have} channels'
  if have == 1:
    return (np.repeat(kernel, channels, axis=-2) / channels).astype(kernel.dtype), (
        f'copied to {channels} channels / {channels}')
  raise ValueError(f'cannot convert a {have}-channel kernel to {channels} channels.')


def tile_frames(grid: np.ndarray, frames: int) -> np.ndarray:
  """A 2D position-embedding grid (gh, gw, D) repeated for each of `frames` temporal slots."""
  return np.repeat(grid[None], frames, axis=0)


def mean_frames(grid: np.ndarray) -> np.ndarray:
  """A (gt, gh, gw, D) grid averaged over time (Appendix D: video -> image/audio)."""
  return grid.mean(axis=0)
