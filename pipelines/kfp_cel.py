"""Evaluates a task's trigger condition the way the KFP driver does, for the CEL TFX writes.

The open-source driver evaluates `triggerPolicy.condition` with CEL over the task's
ExecutorInput (proto field names: `inputs.artifacts['k'].artifacts[0].metadata['m']`,
`inputs.parameter_values['p']`) and skips the task when it is false; an unknown key or a
result that is not a bool fails the task. TFX's compiler
(tfx/orchestration/kubeflow/v2/compiler_utils.placeholder_to_cel) emits a small part of CEL:
field and index access, number and string literals, `+`, the comparisons, `!`, `&&`, `||` and
parentheses. This module implements exactly that part and raises ConditionError on anything
else, so an expression it cannot evaluate is never silently taken as true or false.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"""\s*(?:
    (?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[<>!+().\[\]])
)""", re.VERBOSE)
_MAX_LENGTH = 10_000


class ConditionError(ValueError):
  """The condition is outside the supported CEL, or fails to evaluate (e.g. a missing key)."""


def _tokens(text: str) -> list[tuple[str, str]]:
  if len(text) > _MAX_LENGTH:
    raise ConditionError(f'condition longer than {_MAX_LENGTH} characters')
  out, pos = [], 0
  while pos < len(text):
    if text[pos:].isspace():
      break
    match = _TOKEN.match(text, pos)
    if not match or match.end() == pos:
      raise ConditionError(f'unsupported CEL at {text[pos:pos + 20]!r}')
    out.append((match.lastgroup, match.group(match.lastgroup)))
    pos = match.end()
  return out


class _Parser:
  """Recursive descent over the tokens; evaluates while parsing (no side effects)."""

  def __init__(self, text: str, context: dict[str, Any]):
    self.tokens, self.i, self.context = _tokens(text), 0, context

  def peek(self) -> str | None:
    return self.tokens[self.i][1] if self.i < len(self.tokens) else None

  def take(self, expected: str | None = None) -> tuple[str, str]:
    if self.i >= len(self.tokens):
      raise ConditionError('unexpected end of condition')
    token = self.tokens[self.i]
    if expected is not None and token[1] != expected:
      raise ConditionError(f'expected {expected!r}, got {token[1]!r}')
    self.i += 1
    return token

  def parse(self) -> Any:
    value = self.or_()
    if self.i != len(self.tokens):
      raise ConditionError(f'unexpected {self.peek()!r}')
    return value

  def or_(self) -> Any:
    return self._logical('||', self.and_, lambda a, b: a or b)

  def and_(self) -> Any:
    return self._logical('&&', self.unary, lambda a, b: a and b)

  def _logical(self, op: str, operand, combine) -> Any:
    value = operand()
    while self.peek() == op:
      self.take()
      rhs = operand()
      value = combine(_bool(value), _bool(rhs))
    return value

  def unary(self) -> Any:
    if self.peek() == '!':
      self.take()
      return not _bool(self.unary())
    return self.comparison()

  def comparison(self) -> Any:
    lhs = self.sum_()
    op = self.peek()
    if op not in ('==', '!=', '<', '>', '<=', '>='):
      return lhs
    self.take()
    rhs = self.sum_()
    if op in ('==', '!='):
      equal = type(lhs) is type(rhs) and lhs == rhs  # CEL: values of different types differ
      return equal if op == '==' else not equal
    if not (isinstance(lhs, float) and isinstance(rhs, float)) and not (
        isinstance(lhs, str) and isinstance(rhs, str)):
      raise ConditionError(f'no overload for {op} on {type(lhs).__name__}, '
                           f'{type(rhs).__name__}')
    return {'<': lhs < rhs, '>': lhs > rhs, '<=': lhs <= rhs, '>=': lhs >= rhs}[op]

  def sum_(self) -> Any:
    value = self.postfix()
    while self.peek() == '+':
      self.take()
      rhs = self.postfix()
      if type(value) is not type(rhs) or isinstance(value, (bool, dict, type(None))):
        raise ConditionError(f'no overload for + on {type(value).__name__}, '
                             f'{type(rhs).__name__}')
      value = value + rhs
    return value

  def postfix(self) -> Any:
    value = self.primary()
    while self.peek() in ('.', '['):
      if self.take()[1] == '.':
        kind, name = self.take()
        if kind != 'name':
          raise ConditionError(f'expected a field name, got {name!r}')
        value = _select(value, name)
      else:
        value = _select(value, self.or_())
        self.take(']')
    return value

  def primary(self) -> Any:
    kind, text = self.take()
    if kind == 'number':
      return float(text)
    if kind == 'string':
      return text[1:-1].encode().decode('unicode_escape')
    if kind == 'name':
      if text in ('true', 'false'):
        return text == 'true'
      if text not in self.context:
        raise ConditionError(f'undeclared reference {text!r}')
      return self.context[text]
    if text == '(':
      value = self.or_()
      self.take(')')
      return value
    raise ConditionError(f'unexpected {text!r}')


def _bool(value: Any) -> bool:
  if not isinstance(value, bool):
    raise ConditionError(f'expected a bool, got {value!r}')
  return value


def _select(value: Any, key: Any) -> Any:
  if isinstance(value, dict) and isinstance(key, str):
    if key not in value:
      raise ConditionError(f'no such key: {key!r}')
    return value[key]
  if isinstance(value, list) and isinstance(key, float) and key.is_integer():
    if not 0 <= int(key) < len(value):
      raise ConditionError(f'index out of range: {int(key)}')
    return value[int(key)]
  raise ConditionError(f'cannot select {key!r} from {type(value).__name__}')


def evaluate(condition: str, executor_input: dict[str, Any]) -> bool:
  """The condition's value for an ExecutorInput given as a dict with proto field names."""
  result = _Parser(condition, {'inputs': executor_input.get('inputs', {})}).parse()
  if not isinstance(result, bool):
    raise ConditionError(f'condition is not a bool: {result!r}')
  return result
