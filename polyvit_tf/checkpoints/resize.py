"""Resizing position-embedding grids.

'bilinear' is what the original ViT / ViViT / PolyViT code does:
`scipy.ndimage.zoom(grid, (new_h / old_h, new_w / old_w, 1), order=1)`. With scipy's default
`grid_mode=False`, output sample i sits at input coordinate i * (old - 1) / (new - 1): the
corner samples map onto the corner samples ("align corners"), and each axis is interpolated
linearly in turn. It is written here in numpy (the same numbers, any rank, no scipy needed).

'bilinear_half_pixel' is the other common convention (tf.image.resize / jax.image.resize
without antialiasing, used by big_vision and timm): sample i sits at (i + 0.5) * old / new - 0.5,
clamped to the edges.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from polyvit_tf.configs import base

METHODS = base.POSEMB_RESIZE


def _coordinates(old: int, new: int, method: str) -> np.ndarray:
  i = np.arange(new, dtype=np.float64)
  if method == 'bilinear':
    return i * ((old - 1) / (new - 1)) if new > 1 else np.zeros(1)
  return np.clip((i + 0.5) * (old / new) - 0.5, 0.0, old - 1)


def _resize_axis(x: np.ndarray, axis: int, new: int, method: str) -> np.ndarray:
  old = x.shape[axis]
  if old == new:
    return x
  pos = _coordinates(old, new, method)
  lo = np.clip(np.floor(pos).astype(np.int64), 0, max(old - 2, 0))
  hi = np.minimum(lo + 1, old - 1)
  frac = pos - lo
  shape = [1] * x.ndim
  shape[axis] = new
  frac = frac.reshape(shape)
  return np.take(x, lo, axis=axis) * (1.0 - frac) + np.take(x, hi, axis=axis) * frac


def resize_grid(grid: np.ndarray, new_shape: Sequence[int],
                method: str = 'bilinear') -> np.ndarray:
  """Linear interpolation of the leading len(new_shape) axes of `grid` (e.g. (h, w, D))."""
  if method not in METHODS:
    raise ValueError(f'posemb resize method must be one of {METHODS}, got {method!r}.')
  new_shape = tuple(int(s) for s in new_shape)
  if len(new_shape) > grid.ndim or any(s < 1 for s in new_shape):
    raise ValueError(f'cannot resize a {grid.shape} grid to {new_shape}.')
  out = np.asarray(grid, dtype=np.float64)
  for axis, new in enumerate(new_shape):
    out = _resize_axis(out, axis, new, method)
  return out.astype(grid.dtype)


def resize_posemb(posemb: np.ndarray, old_grid: Sequence[int], new_grid: Sequence[int],
                  method: str = 'bilinear') -> np.ndarray:
  """(N_old + 1, D) -> (N_new + 1, D): the CLS entry is kept, the grid entries resized."""
  old_grid, new_grid = tuple(old_grid), tuple(new_grid)
  if len(old_grid) != len(new_grid):
    raise ValueError(f'grids {old_grid} and {new_grid} differ in rank.')
  cls, grid = posemb[:1], posemb[1:].reshape(old_grid + (posemb.shape[-1],))
  grid = resize_grid(grid, new_grid, method)
  return np.concatenate([cls, grid.reshape(-1, posemb.shape[-1])], axis=0)
