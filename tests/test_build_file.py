"""BUILD is generated from the tree (scripts/gen_build.py) and is complete and acyclic.

Bazel does not run on our machines, so this test keeps the Bazel targets honest: one
`py_library` per Python package (packages in an import cycle share one), one `py_test` per
test file, every listed file present, no dependency cycle, and BUILD as the generator writes it.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_DIRS = ('polyvit_tf', 'pipelines', 'serving', 'benchmarks')

_spec = importlib.util.spec_from_file_location('gen_build', ROOT / 'scripts' / 'gen_build.py')
gen_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_build)


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


def test_every_package_is_in_one_library():
  packages = {str(p.parent.relative_to(ROOT)) for p in ROOT.glob('**/__init__.py')
              if p.parts[len(ROOT.parts)] in SOURCE_DIRS}
  for package in packages:
    owners = {name for rule, kwargs in _targets() if rule == 'py_library'
              for name in [kwargs['name']]
              for s in kwargs.get('srcs') or [] if str(pathlib.Path(s).parent) == package}
    assert len(owners) == 1, f'package {package} is in libraries {sorted(owners)}'


def test_build_is_generated_from_the_tree():
  assert (ROOT / 'BUILD').read_text() == gen_build.render(), (
      'BUILD is stale: run `python scripts/gen_build.py`')


def test_deps_are_acyclic():
  graph = {}
  tree = ast.parse((ROOT / 'BUILD').read_text())
  for node in tree.body:
    if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        and node.value.func.id.startswith('py_')):
      kw = {k.arg: k.value for k in node.value.keywords}
      name = ast.literal_eval(kw['name'])
      deps = kw.get('deps')
      graph[name] = {ast.literal_eval(e)[1:] for e in getattr(deps, 'elts', [])
                     if isinstance(e, ast.Constant)}
  state = {}

  def visit(node, path):
    if state.get(node) == 'done':
      return
    assert state.get(node) != 'active', f'dependency cycle: {path + [node]}'
    state[node] = 'active'
    for dep in sorted(graph.get(node, ())):
      visit(dep, path + [node])
    state[node] = 'done'

  for name in sorted(graph):
    visit(name, [])


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
