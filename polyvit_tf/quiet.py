"""Quiet command lines: TensorFlow's C++ logging and known third-party warnings off, unless
`--verbose`.

Every command line of the project is `python -m <package>.<module>` with <package> one of
polyvit_tf, pipelines, serving, benchmarks; each package's `__init__` calls
`for_command_line(__name__)`, which acts only when the process was started as such a command
(`sys.orig_argv`). Python runs the package's `__init__` before the command's module and before
anything imports TensorFlow, which reads TF_CPP_MIN_LOG_LEVEL once, at its first log line
(a CLI module cannot do it itself: `python -m polyvit_tf.train` imports TensorFlow from
polyvit_tf/train/__init__.py before train/__main__.py runs). Absl parses flags only after the
imports, so `--verbose` is read from the command line here, and also defined as an absl
flag, so that every absl command line accepts it (argparse ones add it themselves).

Unless `--verbose` (or TF_CPP_MIN_LOG_LEVEL is already set, which wins):
  TF_CPP_MIN_LOG_LEVEL=3   TensorFlow's C++ INFO, WARNING and ERROR lines off: the CUDA stub,
                           cuFFT / cuDNN / cuBLAS factory (logged as errors, harmless),
                           cpu_feature_guard and TF-TRT lines at import; FATAL stays. A real
                           failure surfaces as a Python exception, which still prints.
                           Inherited by the command's subprocesses (Beam workers, rehearsed
                           Kubeflow tasks).
  warnings                 the Python-version FutureWarnings of google.api_core and the
                           google-cloud packages, google-cloud-aiplatform's storage notice,
                           Beam's and TFX's known UserWarnings (_IGNORED_WARNINGS)
  logging                  TensorFlow's "... is deprecated" lines and the known lines TFX
                           and Beam log on every run (_IGNORED_LOG_LINES), dropped by a
                           filter on their loggers and on absl's handler (child loggers)
Errors, the command's own output and every other warning stay.

Standard library only: the edge environment (LiteRT and NumPy) imports this too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings

FLAG = 'verbose'
TF_CPP_MIN_LOG_LEVEL = 'TF_CPP_MIN_LOG_LEVEL'
HELP = ('Show TensorFlow\'s C++ logging and the known third-party warnings that command lines '
        'hide by default (polyvit_tf/quiet.py).')

# (category, regex on the warning's module) of warnings that say nothing about this run.
_IGNORED_WARNINGS = (
    # "You are using a Python version (3.11.7) which Google will stop supporting ..."
    (FutureWarning, r'google\.api_core\._python_version_support'),
    # "Support for google-cloud-storage < 3.0.0 will be removed ..."
    (FutureWarning, r'google\.cloud\.aiplatform(\.|$)'),
)
# (logger name or its parent's, regex on the message) of records that say nothing about this
# run: TF's deprecation notices, TFX's input resolution on every run, Beam's missing optional
# speed-up.
_IGNORED_LOG_LINES = (
    ('tensorflow', r' is deprecated and will be removed|^Instructions for updating:'),
    ('absl', r'^(Artifact|Context)Query\.property_predicate is not supported'),
    ('apache_beam', r"^Couldn't find python-snappy"),
)

# Interpreter options whose value is the next argument (python -X dev -W error -m ...).
_OPTIONS_WITH_VALUE = ('-X', '-W', '--check-hash-based-pycs')
_state: dict[str, bool] = {}


def wants_verbose(args: list[str]) -> bool:
  """Whether `args` (the command's arguments) turn --verbose on, as absl would parse them:
  `--verbose`, `--verbose=true|1|t|yes`, `--noverbose`; the last one wins; none after `--`."""
  verbose = False
  for arg in args:
    if arg == '--':
      break
    name, _, value = arg.lstrip('-').partition('=')
    if not arg.startswith('-'):
      continue
    if name == FLAG:
      verbose = not value or value.lower() in ('true', 't', '1', 'yes', 'y')
    elif name == 'no' + FLAG and not value:
      verbose = False
  return verbose


def command_module(orig_argv: list[str]) -> tuple[str | None, list[str]]:
  """(module, its arguments) of a `python [options] -m <module> args...` command line, else
  (None, [])."""
  i = 1
  while i < len(orig_argv):
    arg = orig_argv[i]
    if arg == '-m' and i + 1 < len(orig_argv):
      return orig_argv[i + 1], list(orig_argv[i + 2:])
    if arg.startswith('-m') and len(arg) > 2:  # python -mpolyvit_tf.train
      return arg[2:], list(orig_argv[i + 1:])
    if not arg.startswith('-') or arg.startswith('-c') or arg == '-':
      return None, []  # a script, -c or stdin: not one of our command lines
    i += 2 if arg in _OPTIONS_WITH_VALUE else 1
  return None, []


def for_command_line(package: str) -> bool | None:
  """Quiet this process unless --verbose, when it was started as `python -m <package>.…`.

  Returns whether the command is verbose, or None when the process is no such command."""
  module, args = command_module(list(getattr(sys, 'orig_argv', [])))
  if module is None or not (module == package or module.startswith(package + '.')):
    return None
  return unless_verbose(args)


def unless_verbose(args: list[str] | None = None) -> bool:
  """Silences TensorFlow's C++ logging and the known third-party warnings unless `args`
  (default: sys.argv[1:]) say --verbose; defines the absl flag --verbose. Idempotent; call it
  before TensorFlow is imported. Returns whether the command is verbose."""
  if 'verbose' in _state:
    return _state['verbose']
  verbose = wants_verbose(sys.argv[1:] if args is None else args)
  _state['verbose'] = verbose
  define_flag()
  if not verbose:
    os.environ.setdefault(TF_CPP_MIN_LOG_LEVEL, '3')
    for category, module in _IGNORED_WARNINGS:
      warnings.filterwarnings('ignore', category=category, module=module)
    _filter_console()
  return verbose


def verbose() -> bool:
  """Whether this command line asked for --verbose (False when unless_verbose never ran)."""
  return _state.get('verbose', False)


class KnownNoise(logging.Filter):
  """Drops the records of _IGNORED_LOG_LINES."""

  _rules = [(name, re.compile(pattern)) for name, pattern in _IGNORED_LOG_LINES]

  def filter(self, record: logging.LogRecord) -> bool:
    for name, pattern in self._rules:
      if ((record.name == name or record.name.startswith(name + '.')) and
          pattern.search(record.getMessage())):
        return False
    return True


def _filter_console() -> None:
  """KnownNoise on the loggers of _IGNORED_LOG_LINES (TensorFlow's may have a handler of its
  own) and on absl's handler, the console of absl programs (app.run installs this same
  object on the root logger), which the records of their child loggers pass through."""
  targets = [logging.getLogger(name) for name, _ in _IGNORED_LOG_LINES]
  try:
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    targets.append(absl_logging.get_absl_handler())
  except ImportError:  # the edge environment: no absl
    pass
  for target in targets:
    if not any(isinstance(f, KnownNoise) for f in target.filters):
      target.addFilter(KnownNoise())


def define_flag(flag_values=None) -> None:
  """Defines the absl flag --verbose in `flag_values` (default: absl's FLAGS) unless there."""
  try:
    from absl import flags  # pylint: disable=import-outside-toplevel
  except ImportError:  # the edge environment: its argparse command line has --verbose
    return
  flag_values = flags.FLAGS if flag_values is None else flag_values
  if FLAG not in flag_values:
    flags.DEFINE_bool(FLAG, False, HELP, flag_values=flag_values)
