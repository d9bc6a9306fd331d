"""BUILD lists every source and test file, and every file it lists exists.

Bazel does not run on our machines, so this test keeps the Bazel targets honest: one
`py_library` per Python package, one `py_test` per test file.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_DIRS = ('polyvit_tf', 'pipelines', 'serving', 'benchmarks')


def _targets() -> list[tuple[str, dict]]:
  """(rule, keyword arguments) of each top-level rule call in BUILD (Starlark is Python)."""
  tree = ast.parse((ROOT / 'BUILD').read_text(), filename='BUILD')
  targets = []
  for node in tree.body:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
      call = node.value
      if isinstance(call.func, ast.Name) and call.func.id.startswith('py_'):
        kwargs = {}
        for kw in call.keywords:
          try:
            kwargs[kw.arg] = ast.literal_eval(kw.value)
          except ValueError:
            kwargs[kw.arg] = None  # e.g. deps built with requirement(...)
        targets.append((call.func.id, kwargs))
  return targets


def _listed(rules: tuple[str, ...]) -> dict[str, str]:
  files = {}
  for rule, kwargs in _targets():
    if rule in rules:
      for src in kwargs.get('srcs') or []:
        assert src not in files, f'{src} is listed by two targets in BUILD'
        files[src] = kwargs['name']
  return files


def _python_files(*dirs: str) -> set[str]:
  return {str(p.relative_to(ROOT)) for d in dirs if (ROOT / d).exists()
          for p in (ROOT / d).rglob('*.py') if '__pycache__' not in p.parts}


def test_every_listed_file_exists():
  for rule, kwargs in _targets():
    for src in kwargs.get('srcs') or []:
      assert (ROOT / src).is_file(), f'BUILD target {kwargs["name"]} ({rule}) lists missing {src}'


def test_every_source_file_is_in_a_library_or_binary():
  listed = _listed(('py_library', 'py_binary'))
  missing = sorted(_python_files(*SOURCE_DIRS) - set(listed))
  assert not missing, f'not in any py_library/py_binary of BUILD: {missing}'


def test_one_library_per_package():
  packages = {str(p.parent.relative_to(ROOT)) for p in ROOT.glob('**/__init__.py')
              if p.parts[len(ROOT.parts)] in SOURCE_DIRS}
  libs = {kwargs['name']: {str(pathlib.Path(s).parent) for s in kwargs.get('srcs') or []}
          for rule, kwargs in _targets() if rule == 'py_library'}
  for package in packages:
    owners = [name for name, dirs in libs.items() if dirs == {package}]
    assert owners, f'package {package} has no py_library of its own in BUILD'


def test_every_test_file_is_a_py_test():
  tests = {f for f in _python_files('tests') if pathlib.Path(f).name.startswith('test_')}
  listed = _listed(('py_test',))
  assert not sorted(tests - set(listed)), f'no py_test for {sorted(tests - set(listed))}'
  for rule, kwargs in _targets():
    if rule == 'py_test':
      assert len(kwargs['srcs']) == 1 and kwargs['srcs'][0] in tests


def test_test_helpers_are_in_a_testonly_library():
  helpers = {f for f in _python_files('tests') if not pathlib.Path(f).name.startswith('test_')}
  listed = _listed(('py_library',))
  assert not sorted(helpers - set(listed)), f'test helpers missing: {sorted(helpers - set(listed))}'
