"""Exact matmul FLOP counts of PolyViT, derived from the config.

Convention (the usual "model FLOPs" of MFU figures): one multiply-add is 2 FLOPs and only
matrix products are counted (patch embedding, Q/K/V/out projections, the two attention
products, the MLP, the head). Normalisation, softmax, GELU, residual adds and the optimizer
update are not counted; they are memory-bound and show up as lost efficiency instead.

Per example, with S = N + 1 tokens, D hidden, M MLP width, P = prod(patch) * channels,
C classes and L blocks (adaptor + shared):
  tokenizer   2 * N * P * D
  projections L * 4 * 2 * S * D * D
  attention   L * 2 * 2 * S * S * D          (q k^T and weights v, all heads together)
  mlp         L * 2 * 2 * S * D * M
  head        2 * D * C
A training step (forward + backward) costs 3x the forward products except the patch
embedding, whose input needs no gradient (forward + kernel gradient only): 2x.
`tests/benchmarks/test_flops.py` checks these numbers against the dot and convolution
instructions of the XLA-compiled training step.
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from polyvit_tf.configs import specs as specs_lib


@dataclasses.dataclass(frozen=True)
class FlopCount:
  """Forward matmul FLOPs of one example of one task, by part."""
  tokenizer: int
  projections: int
  attention: int
  mlp: int
  head: int

  @property
  def forward(self) -> int:
    return self.tokenizer + self.projections + self.attention + self.mlp + self.head

  @property
  def train(self) -> int:
    """Forward + backward of one example (see the module docstring)."""
    return 3 * self.forward - self.tokenizer

  def as_dict(self) -> dict[str, int]:
    return {**dataclasses.asdict(self), 'forward': self.forward, 'train': self.train}


def forward_flops(config: ml_collections.ConfigDict, task: str) -> FlopCount:
  """Forward matmul FLOPs per example of `task` under `config`."""
  spec = specs_lib.resolve(config)
  t, mod, m = spec.task(task), spec.modality_of(task), spec.model
  d, mlp, layers = m.hidden_size, m.mlp_dim, m.num_layers
  n = mod.num_patches
  s = n + 1
  patch = math.prod(mod.patch_size) * mod.channels
  return FlopCount(
      tokenizer=2 * n * patch * d,
      projections=layers * 4 * 2 * s * d * d,
      attention=layers * 2 * 2 * s * s * d,
      mlp=layers * 2 * 2 * s * d * mlp,
      head=2 * d * t.num_classes)


def train_step_flops(config: ml_collections.ConfigDict, task: str,
                     batch_size: int | None = None) -> int:
  """Matmul FLOPs of one training step of `task` (forward + backward) at `batch_size`
  (default: the task's configured batch size)."""
  if batch_size is None:
    batch_size = specs_lib.resolve(config).training[task].batch_size
  batch = int(batch_size)
  return batch * forward_flops(config, task).train
