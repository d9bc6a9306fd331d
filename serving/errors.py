"""Errors of the local server: gRPC status codes, TF Serving's HTTP mapping, TF messages.

`ServiceError(code, message)` is what the service raises for a request it rejects; `code`
is a grpc.StatusCode name. `HTTP_STATUS` maps those names to HTTP statuses as TF Serving's
REST server does (tensorflow_serving/model_servers/http_server.cc, ToHTTPStatusCode).
`op_error_message` recovers the reason of a TF op error raised inside a SavedModel
signature, which TF wraps as "Graph execution error: Detected at node ... [[{{node}}]]".
"""

from __future__ import annotations

import re


class ServiceError(Exception):
  """A request the server rejects; `code` is a grpc.StatusCode name."""

  def __init__(self, code: str, message: str):
    super().__init__(message)
    self.code = code
    self.message = message


HTTP_STATUS = {
    'OK': 200, 'CANCELLED': 499, 'UNKNOWN': 500, 'INVALID_ARGUMENT': 400,
    'DEADLINE_EXCEEDED': 504, 'NOT_FOUND': 404, 'ALREADY_EXISTS': 409,
    'PERMISSION_DENIED': 403, 'RESOURCE_EXHAUSTED': 429, 'FAILED_PRECONDITION': 400,
    'ABORTED': 409, 'OUT_OF_RANGE': 400, 'UNIMPLEMENTED': 501, 'INTERNAL': 500,
    'UNAVAILABLE': 503, 'DATA_LOSS': 500, 'UNAUTHENTICATED': 401,
}

_NOISE = (
    re.compile(r'^Graph execution error:\s*$'),
    re.compile(r'^Detected at node .* defined at \(most recent call last\):\s*$'),
    re.compile(r'^\s+File "'),
    re.compile(r'^\s*\[\[\{\{node .*$'),
    re.compile(r'^\s*$'),
)
_ASSERTION = re.compile(r"(?:assertion failed: \[|Summarized data: b?['\"])(?P<message>.*?)"
                        r"(?:\]|['\"])?\s*$", re.S)


def op_error_message(error: Exception) -> str:
  """The reason of a TF op error, whole: without TF's traceback, node and op decorations;
  an assertion's own message (the decode budgets' checks) rather than its wrapper."""
  text = getattr(error, 'message', None) or str(error)
  text = re.sub(r'\s*\[Op:[^\]]*\]', '', text)
  text = re.sub(r'\{\{function_node [^}]*\}\}\s*', '', text)
  lines = [l for l in text.splitlines() if not any(p.match(l) for p in _NOISE)]
  reason = '\n'.join(l.strip() for l in lines).strip() or text.strip()
  match = _ASSERTION.search(reason)
  if match:
    reason = match['message'].strip()
  return reason
