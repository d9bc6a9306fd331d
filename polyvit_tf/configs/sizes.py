"""Standard ViT encoder sizes (Dosovitskiy et al. 2021, Table 1; Ti and S from DeiT/AugReg)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EncoderSize:
  hidden_size: int
  num_layers: int
  num_heads: int
  mlp_dim: int


SIZES: dict[str, EncoderSize] = {
    'Ti': EncoderSize(hidden_size=192, num_layers=12, num_heads=3, mlp_dim=768),
    'S': EncoderSize(hidden_size=384, num_layers=12, num_heads=6, mlp_dim=1536),
    'B': EncoderSize(hidden_size=768, num_layers=12, num_heads=12, mlp_dim=3072),
    'L': EncoderSize(hidden_size=1024, num_layers=24, num_heads=16, mlp_dim=4096),
    'H': EncoderSize(hidden_size=1280, num_layers=32, num_heads=16, mlp_dim=5120),
}


def get_size(name: str) -> EncoderSize:
  """Returns the encoder size called `name` (Ti, S, B, L or H)."""
  try:
    return SIZES[name]
  except KeyError:
    raise ValueError(
        f'Unknown model size {name!r}; expected one of {sorted(SIZES)}.') from None
