"""Parameter counts of the paper set-ups: the built model vs a count derived from the config."""

from __future__ import annotations

import math
import subprocess
import sys

import keras
import pytest

from polyvit_tf.configs import paper
from polyvit_tf.model import PolyViT
from polyvit_tf.configs import specs as specs_lib

# The paper's reported totals (Tables 2, 4, 5, 8), in millions; ours must round to them.
PAPER_MILLIONS = {'table2_b_adapt0': 93, 'table2_b_adapt6': 178, 'table8_l_adapt0': 312,
                  'table8_l_adapt12': 615, 'table4_b_audio': 87, 'table5_l_video': 308}


def expected_count(config) -> dict[str, int]:
  """Counts from the formulas of a ViT, written from the config alone (not from layers)."""
  m = config.model
  d, mlp = m.hidden_size, m.mlp_dim
  block = 4 * (d * d + d) + (d * mlp + mlp) + (mlp * d + d) + 2 * (2 * d)
  counts = {}
  for mod, mc in config.modalities.items():
    tokens = math.prod(i // p for i, p in zip(mc.input_size, mc.patch_size)) + 1
    counts[f'tokenizers/{mod}'] = math.prod(mc.patch_size) * mc.channels * d + d + d + tokens * d
    counts[f'adaptors/{mod}'] = m.num_adapt_layers * block
  counts['shared_encoder'] = (m.num_layers - m.num_adapt_layers) * block + 2 * d
  for task, tc in config.tasks.items():
    counts[f'heads/{task}'] = (d + 1) * tc.num_classes
  return counts


# What PolyViT(config).count_params() totals for the L set-ups (built once with the params
# tool; docs/model.md).
BUILT_L_TOTALS = {'table8_l_adapt0': 312_480_463, 'table8_l_adapt12': 614_789_839,
                  'table5_l_video': 308_471_099}


def _is_large(setup: str) -> bool:
  return paper.get_config(setup).model.size == 'L'


@pytest.mark.parametrize('setup', [s for s in paper.SETUPS if not _is_large(s)])
def test_paper_setup_parameter_count(setup):
  """ViT-B set-ups built: every part's count equals the formula, the total the paper's."""
  config = paper.get_config(setup)
  counts = PolyViT(config).count_params()
  assert counts == expected_count(config)
  total = sum(counts.values())
  print(f'{setup}: total_params={total}')
  assert round(total / 1e6) == PAPER_MILLIONS[setup]
  keras.backend.clear_session()


@pytest.mark.parametrize('setup', [s for s in paper.SETUPS if _is_large(s)])
def test_large_setup_parameter_count_from_the_formula(setup):
  """ViT-L set-ups: the formula the B builds check part by part (same layers, other widths
  and depths), against the paper's totals. Building them (2.4 GB of float32 for
  table8_l_adapt12) took ~2 minutes of the suite; `python -m polyvit_tf.tools.params
  --config=polyvit_tf/configs/paper.py:<setup>` builds one (figures in docs/model.md)."""
  config = paper.get_config(setup)
  total = sum(expected_count(config).values())
  assert total == BUILT_L_TOTALS[setup]
  assert round(total / 1e6) == PAPER_MILLIONS[setup]


def test_paper_setups_match_tables():
  c = paper.get_config('table2_b_adapt6')
  assert c.model.num_adapt_layers == 6 and c.model.hidden_size == 768
  names = specs_lib.resolve(c).task_names
  assert list(names) == sorted(names) and len(c.tasks) == 9
  assert specs_lib.resolve(c).modalities['image'].sequence_length == 577
  assert specs_lib.resolve(c).modalities['audio'].sequence_length == 401
  assert specs_lib.resolve(c).modalities['video'].sequence_length == 1569
  assert c.tasks.pets.train_steps == 500 and c.tasks.resisc45.learning_rate == 0.1
  assert c.tasks.mini_audioset.multilabel and c.tasks.mini_audioset.loss == 'sigmoid_xent'
  assert c.tasks.kinetics400.head_init == 'zeros' and c.tasks.cifar10.head_init == 'lecun_normal'
  assert c.tasks.kinetics400.warmup_steps == round(2.5 * 215_000 / 64)
  v = paper.get_config('table5_l_video')
  assert specs_lib.resolve(v).modalities['video'].sequence_length == 16 * 14 * 14 + 1
  assert set(v.tasks.keys()) == {'kinetics400', 'kinetics600', 'moments_in_time'}
  large = paper.get_config('table8_l_adapt12')
  assert large.tasks.vggsound.mixup_alpha == 0.7 and large.tasks.mini_audioset.mixup_alpha == 0.5
  with pytest.raises(ValueError, match='table9'):
    paper.get_config('table9')


def test_params_tool_prints_total_last():
  out = subprocess.run(
      [sys.executable, '-m', 'polyvit_tf.tools.params',
       '--config=polyvit_tf/configs/paper.py:table4_b_audio'],
      capture_output=True, text=True, check=True).stdout
  lines = out.strip().splitlines()
  config = paper.get_config('table4_b_audio')
  assert lines[-1] == f'total_params={sum(expected_count(config).values())}'
  assert any(line.startswith('shared_encoder') for line in lines)
