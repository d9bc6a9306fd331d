"""Moving a tokenizer between modalities and geometries (Sec. 4.3 and Appendix D).

`adapt_tokenizer` turns one tokenizer's weights (a pretrained 2D ViT's, or a PolyViT
modality's) into another patch shape, channel count and token grid:

- 2D -> tubelets: the kernel inflated (`video_kernel`: central_frame / average for
  initialisation from a 2D ViT (Sec. 4.3, ViViT), repeat for probes (Appendix D)); position
  embeddings resized to the frame grid, then repeated for every temporal slot.
- tubelets -> 2D: the kernel summed over frames; position embeddings averaged over frames,
  then resized (Appendix D).
- 2D <-> 2D (image <-> audio): the kernel as it is; position embeddings resized.
- channels: 3 -> 1 sums over RGB (1-channel spectrograms); 1 -> 3 copies / 3.
- The CLS token, the CLS position embedding and the bias are kept.

The original code hard-codes these for ViT-B/16 at 384/224/800x128 (and, for image -> video
probes, uses the central frame although the paper says repeat); here every size comes from the
configs, and the paper is followed (`crossmodal_video_kernel='repeat'`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from polyvit_tf.checkpoints import inflate
from polyvit_tf.checkpoints import resize
from polyvit_tf.checkpoints.canonical import CheckpointError
from polyvit_tf.checkpoints.canonical import TokenizerWeights
from polyvit_tf.configs.specs import ModalitySpec


def _fmt(shape: Sequence[int]) -> str:
  return 'x'.join(str(int(s)) for s in shape)


def adapt_tokenizer(
    tok: TokenizerWeights, *, patch_size: Sequence[int], channels: int, grid: Sequence[int],
    video_kernel: str = 'central_frame', posemb_resize: str = 'bilinear',
    where: str = 'tokenizer') -> tuple[TokenizerWeights, dict[str, tuple[str, str]]]:
  """`tok` converted to (patch_size, channels, grid).

  Returns the new weights and, per item ('kernel', 'bias', 'cls', 'posemb'), (action, detail)
  with action 'loaded' (unchanged), 'inflated', 'converted', 'resized' or 'tiled'.
  Raises CheckpointError when the spatial patch sizes differ (patch kernels are not resampled).
  """
  patch_size, grid = tuple(int(p) for p in patch_size), tuple(int(g) for g in grid)
  if len(patch_size) != len(grid):
    raise ValueError(f'{where}: patch {patch_size} and grid {grid} differ in rank.')
  if len(grid) not in (2, 3) or len(tok.patch_size) not in (2, 3):
    raise CheckpointError(f'{where}: only 2D patches and 3D tubelets convert into each other; '
                          f'the source patch is {_fmt(tok.patch_size)}, the target '
                          f'{_fmt(patch_size)}.')
  src_rank, dst_rank = len(tok.patch_size), len(patch_size)
  if tok.patch_size[-2:] != patch_size[-2:]:
    raise CheckpointError(
        f'{where}: the checkpoint patch is {_fmt(tok.patch_size[-2:])} pixels, the config\'s '
        f'{_fmt(patch_size[-2:])}; resampling patch kernels is not supported (set the '
        'modality\'s patch_size to the checkpoint\'s).')
  actions: dict[str, tuple[str, str]] = {'bias': ('loaded', ''), 'cls': ('loaded', '')}

  # Patch kernel: time axis, then channels.
  kernel, action, details = tok.kernel, 'loaded', []
  if src_rank == 2 and dst_rank == 3:
    kernel = inflate.inflate_kernel(kernel, patch_size[0], video_kernel)
    action = 'inflated'
    details.append({'central_frame': f'2D kernel on frame {patch_size[0] // 2} of '
                                     f'{patch_size[0]}, zeros elsewhere',
                    'average': f'2D kernel / {patch_size[0]} on each of {patch_size[0]} frames',
                    'repeat': f'2D kernel repeated on {patch_size[0]} frames'}[video_kernel])
  elif src_rank == 3 and dst_rank == 2:
    kernel = inflate.sum_frames(kernel)
    action = 'converted'
    details.append(f'summed over {tok.patch_size[0]} frames')
  elif src_rank == 3 and tok.patch_size[0] != patch_size[0]:
    raise CheckpointError(f'{where}: tubelets of {tok.patch_size[0]} frames cannot become '
                          f'tubelets of {patch_size[0]} frames.')
  kernel, note = inflate.convert_channels(kernel, channels)
  if note:
    action = 'converted' if action == 'loaded' else action
    details.append(note)
  actions['kernel'] = (action, '; '.join(details))

  # Position embeddings: the CLS entry is kept; the grid goes through 2D.
  d = tok.hidden_size
  cls_pos, old = tok.posemb[:1], tok.posemb[1:].reshape(tok.grid + (d,))
  action, details = 'loaded', []
  if src_rank == 3 and dst_rank == 3:
    if tok.grid != grid:
      old = resize.resize_grid(old, grid, posemb_resize)
      action, details = 'resized', [f'{_fmt(tok.grid)} -> {_fmt(grid)} ({posemb_resize})']
    new = old
  else:
    if src_rank == 3:
      old = inflate.mean_frames(old)
      action = 'converted'
      details.append(f'mean over {tok.grid[0]} frames')
    if old.shape[:2] != grid[-2:]:
      details.append(f'{_fmt(old.shape[:2])} -> {_fmt(grid[-2:])} ({posemb_resize})')
      old = resize.resize_grid(old, grid[-2:], posemb_resize)
      action = 'resized' if action == 'loaded' else action
    new = old
    if dst_rank == 3:
      new = inflate.tile_frames(old, grid[0])
      action = 'tiled'
      details.append(f'tiled over {grid[0]} frames')
  posemb = np.concatenate([cls_pos, new.reshape(-1, d)], axis=0).astype(np.float32)
  actions['posemb'] = (action, '; '.join(details + (['CLS entry kept'] if details else [])))
  out = TokenizerWeights(kernel=np.ascontiguousarray(kernel, np.float32), bias=tok.bias,
                         cls=tok.cls, posemb=posemb, grid=grid)
  return out, actions


def convert_tokenizer(tok: TokenizerWeights, target: ModalitySpec, *,
                      video_kernel: str = 'repeat',
                      posemb_resize: str = 'bilinear') -> TokenizerWeights:
  """Appendix D: `tok` (any modality) as a tokenizer for the `target` modality (e.g. an image
  model's tokenizer for an audio probe)."""
  out, _ = target.impl.init_tokenizer(tok, target, video_kernel=video_kernel,
                                      posemb_resize=posemb_resize,
                                      where=f'tokenizer_{target.name}')
  return out
