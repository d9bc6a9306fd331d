r"""Training-step throughput against a peer: KerasHub's ViTBackbone at the same configuration.

    python -m benchmarks.peer [--quick] [--out=benchmarks/results] [--sizes=S,B]

The peer is `keras_hub.models.ViTBackbone` (keras-hub 0.20.0, the last release that installs
beside the pinned TF 2.16 / Keras 3 stack) with a linear head on its class token, trained the
idiomatic Keras way: `compile(SGD(momentum=0.9, global_clipnorm=1.0), <the task's loss>)` and
`train_on_batch`. Ours is the trainer's step function (benchmarks.runners.StepRunner).
Both have the same width, depth, heads, MLP, patch embedding (16x16 patches of the same
number of values) and number of tokens, so the same matmul FLOPs; throughput ratio =
peer step time / our step time, from interleaved steps (ours, peer, ours, ...) in one
process. Without XLA both sides run as TF graphs (peer `jit_compile=False`, ours
`train.use_xla=False`); with XLA the peer compiles its whole train step
(`jit_compile=True`) and so does ours (`train.use_xla`: the whole replica step).

ViTBackbone takes square images only, so each modality is laid out as a square image with
the same patches: audio 800x128 (50x8 patches) <-> 320x320x3 (20x20); video tubelets
4x16x16x3 <-> 16x16x12 patches, and the video row uses 16x320x320 clips (4x20x20 = 1600
tubelets, 1601 tokens) <-> 640x640x12, the closest square to the paper's 1569 tokens.
"""

from __future__ import annotations

import gc
from typing import Sequence

from absl import app
from absl import flags
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from benchmarks import common
from benchmarks import runners
from polyvit_tf.configs import base
from polyvit_tf.configs import sizes as sizes_lib
from polyvit_tf.model import flops as flops_lib

_QUICK = flags.DEFINE_bool('quick', False, '~197 tokens instead of the paper counts.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Directory of the JSON results.')
_SIZES = flags.DEFINE_list('sizes', None, 'Encoder sizes (default S,B; quick: Ti,S).')
_MODALITIES = flags.DEFINE_list('modalities', ['image', 'audio', 'video'], 'Modalities.')
_XLA = flags.DEFINE_list('xla', ['off'], 'XLA settings to compare: off, on or both.')
_STEPS = flags.DEFINE_integer('steps', 0, 'Timed step pairs per configuration (0: auto).')

# (our modality config, the peer's square image side and channels), paper and quick.
LAYOUTS = {
    False: {
        'image': (base.modality_config((384, 384), (16, 16), 3), 384, 3),
        'audio': (base.modality_config((800, 128), (16, 16), 3), 320, 3),
        'video': (base.modality_config((16, 320, 320), (4, 16, 16), 3), 640, 12),
    },
    True: {
        'image': (base.modality_config((224, 224), (16, 16), 3), 224, 3),
        'audio': (base.modality_config((448, 112), (16, 16), 3), 224, 3),
        'video': (base.modality_config((16, 112, 112), (4, 16, 16), 3), 224, 12),
    },
}


class PeerRunner:
  """KerasHub ViT + linear head on the class token, compiled and trained with Keras."""

  def __init__(self, size: str, side: int, channels: int, num_classes: int, batch: int,
               loss: str, jit_compile: bool, seed: int = 0):
    dims = sizes_lib.get_size(size)
    import keras_hub  # pylint: disable=import-outside-toplevel
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(side, side, channels), patch_size=16, num_layers=dims.num_layers,
        num_heads=dims.num_heads, hidden_dim=dims.hidden_size, mlp_dim=dims.mlp_dim)
    inputs = keras.Input((side, side, channels))
    tokens = backbone(inputs)
    logits = keras.layers.Dense(num_classes, name='head')(tokens[:, 0])
    self.model = keras.Model(inputs, logits)
    self.num_tokens = int(tokens.shape[1])
    loss_fn = (keras.losses.BinaryCrossentropy(from_logits=True) if loss == 'sigmoid_xent'
               else keras.losses.CategoricalCrossentropy(from_logits=True))
    self.model.compile(optimizer=keras.optimizers.SGD(1e-4, momentum=0.9, global_clipnorm=1.0),
                       loss=loss_fn, jit_compile=jit_compile)
    rng = np.random.default_rng(seed)
    self.x = tf.constant(rng.uniform(-1, 1, (batch, side, side, channels)).astype(np.float32))
    y = np.zeros((batch, num_classes), np.float32)
    y[np.arange(batch), rng.integers(0, num_classes, batch)] = 1.0
    self.y = tf.constant(y)

  def __call__(self) -> float:
    return float(self.model.train_on_batch(self.x, self.y))


def peer_flops(size: str, side: int, channels: int, num_classes: int) -> int:
  """Forward+backward matmul FLOPs of the peer per example (the formula of
  polyvit_tf.model.flops applied to the peer's square image and 16x16 patches)."""
  dims = sizes_lib.get_size(size)
  n = (side // 16) ** 2
  s, d, m, layers = n + 1, dims.hidden_size, dims.mlp_dim, dims.num_layers
  return flops_lib.FlopCount(
      tokenizer=2 * n * 16 * 16 * channels * d, projections=layers * 8 * s * d * d,
      attention=layers * 4 * s * s * d, mlp=layers * 4 * s * d * m,
      head=2 * d * num_classes).train


def measure(size: str, modality: str, xla: bool, *, quick: bool, steps: int) -> dict:
  ours_mod, side, channels = LAYOUTS[quick][modality]
  batch = (runners.QUICK_BATCH if quick else runners.PAPER_BATCH)[(size, modality)]
  config = runners.one_task_config(
      size, modality, batch, quick=quick, xla=xla, bf16=False,
      modality_configs=ml_collections.ConfigDict({modality: ours_mod}))
  ours = runners.StepRunner(config, modality)
  classes = runners.NUM_CLASSES[modality]
  peer = PeerRunner(size, side, channels, classes, batch, config.tasks[modality].loss, xla)
  flops_ours = flops_lib.forward_flops(config, modality).train
  flops_peer = peer_flops(size, side, channels, classes)
  if flops_ours != flops_peer:
    raise AssertionError(f'{size}/{modality}: FLOPs differ: ours {flops_ours}, '
                         f'peer {flops_peer}')
  ours_tokens = ours.model.modalities[modality].sequence_length
  if ours_tokens != peer.num_tokens:
    raise AssertionError(f'{size}/{modality}: tokens differ: {ours_tokens} vs '
                         f'{peer.num_tokens}')
  for fn in (ours, peer, ours, peer):  # tracing / compilation
    fn()
  t_ours, t_peer = [], []
  for _ in range(steps):
    t_ours += common.time_calls(ours, steps=1, warmup=0)
    t_peer += common.time_calls(peer, steps=1, warmup=0)
  del ours, peer
  gc.collect()
  ratios = [p / o for o, p in zip(t_ours, t_peer)]
  ours_s, peer_s = common.median(t_ours), common.median(t_peer)
  return dict(size=size, modality=modality, xla=xla, tokens=ours_tokens, batch=batch,
              step_gflop=batch * flops_ours / 1e9, ours_seconds=ours_s, peer_seconds=peer_s,
              ours_seconds_all=t_ours, peer_seconds_all=t_peer,
              ours_gflops=batch * flops_ours / ours_s / 1e9,
              peer_gflops=batch * flops_peer / peer_s / 1e9,
              throughput_ratio=common.median(ratios), throughput_ratio_all=ratios)


COLUMNS = [('size', 'size', 's'), ('modality', 'modality', 's'), ('tokens', 'tokens', 'd'),
           ('xla_label', 'XLA', 's'), ('batch', 'batch', 'd'), ('ours_seconds', 'ours s/step', '.3f'),
           ('peer_seconds', 'peer s/step', '.3f'), ('ours_gflops', 'ours GFLOP/s', '.1f'),
           ('peer_gflops', 'peer GFLOP/s', '.1f'),
           ('throughput_ratio', 'ours/peer throughput', '.3f')]


def main(argv: Sequence[str]) -> None:
  del argv
  quick = _QUICK.value
  sizes = _SIZES.value or (['Ti', 'S'] if quick else ['S', 'B'])
  steps = _STEPS.value or (3 if quick else 4)
  try:
    import keras_hub  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise SystemExit(f'benchmarks.peer needs the `bench` extra (keras-hub 0.20.0): run '
                     f'`make bench` or `EXTRAS=test,bench bash scripts/install.sh` ({e}).')
  print(f'peer: keras_hub {keras_hub.__version__} ViTBackbone; keras {keras.__version__}',
        flush=True)
  rows = []
  for size in sizes:
    for modality in _MODALITIES.value:
      for setting in _XLA.value:
        row = measure(size, modality, setting == 'on', quick=quick, steps=steps)
        row['xla_label'] = setting
        rows.append(row)
        print(common.table([row], COLUMNS), flush=True)
  print()
  print(common.table(rows, COLUMNS))
  path = common.write_json(_OUT.value, 'peer_quick' if quick else 'peer',
                           {'quick': quick, 'keras_hub': keras_hub.__version__, 'rows': rows})
  print(f'\nwrote {path}')


if __name__ == '__main__':
  app.run(main)
