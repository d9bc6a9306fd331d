"""`python -m polyvit_tf.tools.convert`: a checkpoint in, a loadable PolyViT work dir out."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from polyvit_tf import workdir
from polyvit_tf.checkpoints import inflate
from polyvit_tf.configs import tiny
from polyvit_tf.model import weights
from polyvit_tf.tools import convert
from tests.checkpoints import reference_vit

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_convert_writes_a_work_dir_that_load_model_reads(tmp_path):
  params = reference_vit.random_vit(0)
  np.savez(tmp_path / 'vit.npz', **reference_vit.vit_npz_arrays(params))
  out = str(tmp_path / 'out')
  report, path = convert.convert(tiny.get_config('adapt1'), f'vit_npz:{tmp_path}/vit.npz', out)
  assert path.endswith('ckpt-0')
  config, model = workdir.load_model(out)
  assert config.init.source == f'vit_npz:{tmp_path}/vit.npz'
  got = weights.get(model)
  np.testing.assert_array_equal(got['tokenizer_image/kernel'], params['embedding']['kernel'])
  np.testing.assert_array_equal(  # the paper's default: central frame
      got['tokenizer_video/kernel'],
      inflate.inflate_kernel(params['embedding']['kernel'], 2, 'central_frame'))
  np.testing.assert_array_equal(got['shared_block_1/mlp_out/bias'],
                                params['blocks'][1]['mlp']['Dense_1']['bias'])
  assert sorted(report.missing) == sorted(f'head_{t}/{w}' for t in config.tasks
                                          for w in ('kernel', 'bias'))
  text = (tmp_path / 'out' / convert.REPORT).read_text()
  assert 'tokenizer_video/kernel' in text and 'inflated' in text and 'skipped' in text
  with pytest.raises(FileExistsError, match='--overwrite'):
    convert.convert(tiny.get_config('adapt1'), f'vit_npz:{tmp_path}/vit.npz', out)
  convert.convert(tiny.get_config(), f'vit_npz:{tmp_path}/vit.npz', out, overwrite=True)
  assert workdir.load_config(out).model.num_adapt_layers == 0


@pytest.mark.slow
def test_command_line(tmp_path):
  params = reference_vit.random_vit(1, posemb_cls=False)
  np.savez(tmp_path / 'bv.npz', **reference_vit.big_vision_arrays(params))
  out = tmp_path / 'out'
  cmd = [sys.executable, '-m', 'polyvit_tf.tools.convert',
         f'--source=big_vision_npz:{tmp_path}/bv.npz',
         '--config=polyvit_tf/configs/tiny.py:adapt1', f'--out={out}',
         '--config.init.video_kernel=average']
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', 'CUDA_VISIBLE_DEVICES': ''}
  result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  print(result.stdout)
  assert 'tokenizer_video/kernel' in result.stdout and 'on each of 2 frames' in result.stdout
  assert 'opt/mu/embedding/kernel' in result.stdout  # skipped optimizer state is listed
  _, model = workdir.load_model(str(out))
  np.testing.assert_allclose(np.asarray(model.tokenizers['video'].kernel),
                             inflate.inflate_kernel(params['embedding']['kernel'], 2, 'average'))
