"""The config-derived FLOP count equals the products XLA compiles for the training step.

The independent count parses the optimized HLO of the real gradient computation (the
trainer's forward + backward, compiled with jit_compile): every `dot` contributes
2 * |output| * |contracted dims| and every `convolution` 2 * |output| * |window| * input
features. Dead code (the unused input gradient of the patch embedding) is gone after
optimisation, so the sum is what the step actually multiplies.
"""

from __future__ import annotations

import math
import re

import pytest
import tensorflow as tf

from polyvit_tf.configs import tiny
from polyvit_tf.model import PolyViT
from polyvit_tf.model import flops
from polyvit_tf.train import losses

_SHAPE = r'[a-z0-9]+\[([0-9,]*)\]'
_INSTR = re.compile(r'= ' + _SHAPE + r'\{[0-9,]*\} (dot|convolution)\((.*)$')
_OPERAND = re.compile(_SHAPE)


def _dims(text: str) -> list[int]:
  return [int(d) for d in text.split(',') if d]


def hlo_matmul_flops(hlo: str) -> int:
  """2 * multiply-adds of every dot and convolution instruction of an HLO module text."""
  total = 0
  for line in hlo.splitlines():
    match = _INSTR.search(line)
    if not match:
      continue
    out, kind, rest = _dims(match.group(1)), match.group(2), match.group(3)
    lhs = _dims(_OPERAND.search(rest).group(1))
    if kind == 'dot':
      contracting = _dims(re.search(r'lhs_contracting_dims=\{([0-9,]*)\}', rest).group(1))
      total += 2 * math.prod(out) * math.prod(lhs[i] for i in contracting)
    else:
      window = _dims(re.search(r'size=([0-9x]+)', rest).group(1).replace('x', ','))
      labels = re.search(r'dim_labels=([a-z0-9]+)_', rest).group(1)
      groups = re.search(r'feature_group_count=(\d+)', rest)
      features = lhs[labels.index('f')] // (int(groups.group(1)) if groups else 1)
      total += 2 * math.prod(out) * math.prod(window) * features
  return total


@pytest.fixture(scope='module')
def model():
  return PolyViT(tiny.get_config('adapt1'), seed=0)


@pytest.mark.parametrize('task', ['image_a', 'image_b', 'audio_a', 'video_a'])
def test_train_flops_equal_compiled_step(model, task):
  config = model.config
  keras_model = model.model_for(task)
  variables = keras_model.trainable_variables
  spec = model.task(task)
  batch = 3

  @tf.function(jit_compile=True)
  def step(x, y):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(losses.per_example_loss(spec.loss, y, keras_model(x, training=True)))
    return loss, tape.gradient(loss, variables)

  x = tf.zeros((batch,) + model.input_shape(task))
  y = tf.zeros((batch, spec.num_classes))
  hlo = step.experimental_get_compiler_ir(x, y)(stage='optimized_hlo')
  assert flops.train_step_flops(config, task, batch) == hlo_matmul_flops(hlo)


def test_forward_flops_by_hand():
  # Paper ViT-B/16 at 384 px: 576 patches of 16*16*3, 577 tokens, 12 blocks of width 768.
  from polyvit_tf.configs import paper  # pylint: disable=import-outside-toplevel
  config = paper.get_config('table2_b_adapt0')
  task = next(t for t in config.tasks if config.tasks[t].modality == 'image')
  c = config.tasks[task].num_classes
  s, d, m = 577, 768, 3072
  expected = (2 * 576 * 768 * d + 12 * (8 * s * d * d + 4 * s * s * d + 4 * s * d * m)
              + 2 * d * c)
  assert flops.forward_flops(config, task).forward == expected
  # About 2 * 86M parameters * 577 tokens + attention: ~112 GFLOPs forward.
  assert 1.0e11 < expected < 1.2e11


def test_unknown_task_is_a_config_error():
  from polyvit_tf.configs.errors import ConfigError  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConfigError, match='tasks.nope'):
    flops.forward_flops(tiny.get_config(), 'nope')
