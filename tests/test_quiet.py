"""Quiet command lines (polyvit_tf/quiet.py): nothing before a command's own output unless
--verbose; errors still print. The command lines run as subprocesses, all at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from polyvit_tf import quiet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A line of TensorFlow's C++ logging: `2026-12-01 10:58:38.054549: I external/...cc:32] ...`.
TF_CPP_LINE = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\]', re.M)


def test_verbose_is_read_from_the_arguments_as_absl_parses_a_bool():
  assert not quiet.wants_verbose([])
  assert quiet.wants_verbose(['--config=x', '--verbose'])
  assert quiet.wants_verbose(['-verbose']) and quiet.wants_verbose(['--verbose=true'])
  assert not quiet.wants_verbose(['--verbose=false']) and not quiet.wants_verbose(['--verbose=0'])
  assert not quiet.wants_verbose(['--verbose', '--noverbose'])
  assert quiet.wants_verbose(['--noverbose', '--verbose'])
  assert not quiet.wants_verbose(['--', '--verbose'])  # after `--`: an argument, not a flag
  assert not quiet.wants_verbose(['verbose', '--verbose_logging', '--config.verbose=1'])


def test_only_python_dash_m_commands_of_the_package_are_quieted():
  assert quiet.command_module(['python', '-m', 'polyvit_tf.train', '--x']) == (
      'polyvit_tf.train', ['--x'])
  assert quiet.command_module(['python', '-u', '-X', 'dev', '-m', 'serving.client']) == (
      'serving.client', [])
  assert quiet.command_module(['python', '-mpipelines.run_local', '--v']) == (
      'pipelines.run_local', ['--v'])
  assert quiet.command_module(['python', 'script.py', '-m', 'polyvit_tf.x']) == (None, [])
  assert quiet.command_module(['python', '-c', 'import polyvit_tf']) == (None, [])
  assert quiet.command_module(['python', '-W', '-m', 'polyvit_tf.x']) == (None, [])
  # pytest itself: this process is no command line of ours.
  assert quiet.for_command_line('polyvit_tf') is None


def _start(*args: str) -> subprocess.Popen:
  env = {k: v for k, v in os.environ.items()
         if k not in ('TF_CPP_MIN_LOG_LEVEL', 'PYTHONWARNINGS')}
  env['PYTHONPATH'] = ROOT
  return subprocess.Popen([sys.executable, '-m', *args], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_command_lines_print_nothing_before_their_own_output_unless_verbose():
  tiny = '--config=polyvit_tf/configs/tiny.py'
  runs = {
      'params': _start('polyvit_tf.tools.params', tiny),
      'bad config --verbose': _start(
          'polyvit_tf.tools.params', '--config=polyvit_tf/configs/paper.py:no_such_setup',
          '--verbose'),
      # polyvit_tf/data/__init__.py imports TensorFlow before data/stats.py runs.
      'stats': _start('polyvit_tf.data.stats'),
      # A server nobody listens on (port 9, discard); its own flag set accepts --noverbose.
      'client': _start('serving.client', '--server=127.0.0.1:9', '--list', '--timeout=2',
                       '--noverbose'),
  }
  out = {name: (p.communicate(timeout=300), p.returncode) for name, p in runs.items()}

  (stdout, stderr), code = out['params']
  assert code == 0 and stderr == '', stderr
  assert stdout.startswith('config: tiny  model: Ti'), stdout[:200]

  (stdout, stderr), code = out['bad config --verbose']
  assert code != 0 and "Unknown paper set-up 'no_such_setup'" in stderr, stderr[-2000:]
  assert TF_CPP_LINE.search(stderr), stderr[:2000]  # TensorFlow's C++ logging is back

  for name, expected in (('stats', 'FATAL Flags parsing error:\n  flag --config=None'),
                         ('client', 'error: UNAVAILABLE: failed to connect')):
    (stdout, stderr), code = out[name]
    assert code != 0 and expected in stderr, (name, stderr[-2000:])
    assert not TF_CPP_LINE.search(stderr) and 'Warning' not in stderr, (name, stderr[:2000])
  assert out['stats'][0][1].startswith('FATAL Flags parsing error')
  assert out['client'][0][1].startswith('error: UNAVAILABLE')
