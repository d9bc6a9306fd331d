"""Request limits of the local server, checked before a request's tensors are allocated.

A TensorProto declares its dtype and shape; `array_from_proto` checks those (a known dtype,
the signature's dtype, no negative or unknown dims, at most `max_batch_rows` rows and
`max_tensor_elements` elements) and that the content matches the declared shape exactly
(as many string_val / float_val / ... values as elements, or a tensor_content of
elements x itemsize bytes; TF itself would repeat the last value to fill any shape, which
turns 52 bytes into a 1e9-element tensor), and that integer values fit their dtype (uint8
300 is rejected, not wrapped). Only then is the array built. `check_dims` is the same shape
check for REST inputs (their shape is read from the JSON before any array is built).

Every breach is a ServiceError(INVALID_ARGUMENT) whose message names the input, the limit
and the value.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2

from serving import errors

DEFAULT_MAX_REQUEST_BYTES = 64 << 20
DEFAULT_MAX_BATCH_ROWS = 256
DEFAULT_MAX_TENSOR_ELEMENTS = 1 << 24


@dataclasses.dataclass(frozen=True)
class Limits:
  """What one request may declare (flags of `python -m serving.local_server`)."""
  max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES      # gRPC message / REST body
  max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS            # dim 0 of every input
  max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS  # elements of one input tensor

  def __post_init__(self):
    bad = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
           if getattr(self, f.name) < 1}
    if bad:
      raise ValueError(f'request limits must be >= 1, got {bad}.')


def _invalid(message: str) -> errors.ServiceError:
  return errors.ServiceError('INVALID_ARGUMENT', message)


# dtype -> (the TensorProto field holding its values, the integer range when checked)
_FIELDS = {
    types_pb2.DT_FLOAT: ('float_val', None),
    types_pb2.DT_DOUBLE: ('double_val', None),
    types_pb2.DT_HALF: ('half_val', None),
    types_pb2.DT_BFLOAT16: ('half_val', None),
    types_pb2.DT_INT8: ('int_val', (-128, 127)),
    types_pb2.DT_UINT8: ('int_val', (0, 255)),
    types_pb2.DT_INT16: ('int_val', (-32768, 32767)),
    types_pb2.DT_UINT16: ('int_val', (0, 65535)),
    types_pb2.DT_INT32: ('int_val', None),
    types_pb2.DT_INT64: ('int64_val', None),
    types_pb2.DT_UINT32: ('uint32_val', None),
    types_pb2.DT_UINT64: ('uint64_val', None),
    types_pb2.DT_BOOL: ('bool_val', None),
    types_pb2.DT_STRING: ('string_val', None),
    types_pb2.DT_COMPLEX64: ('scomplex_val', None),
    types_pb2.DT_COMPLEX128: ('dcomplex_val', None),
}
_VALUES_PER_ELEMENT = {types_pb2.DT_COMPLEX64: 2, types_pb2.DT_COMPLEX128: 2}


def dtype_name(dtype: int) -> str:
  try:
    return types_pb2.DataType.Name(dtype)
  except ValueError:
    return f'unknown dtype {dtype}'


def check_dims(name: str, dims: Sequence[int], limits: Limits) -> int:
  """The number of elements of `dims` after checking them against `limits`."""
  shape = '[' + ', '.join(str(d) for d in dims) + ']'
  if not dims:
    raise _invalid(f'input {name!r}: a scalar; send a batch (shape [rows, ...]).')
  negative = [i for i, d in enumerate(dims) if d < 0]
  if negative:
    raise _invalid(f'input {name!r}: shape {shape} has dim {negative[0]} of size '
                   f'{dims[negative[0]]}; every dim must be >= 0.')
  if dims[0] > limits.max_batch_rows:
    raise _invalid(f'input {name!r}: {dims[0]} rows exceed the limit of '
                   f'{limits.max_batch_rows} rows per request (max_batch_rows).')
  elements = math.prod(dims)
  if elements > limits.max_tensor_elements:
    raise _invalid(f'input {name!r}: shape {shape} is {elements} elements, over the limit '
                   f'of {limits.max_tensor_elements} elements per tensor '
                   '(max_tensor_elements).')
  return elements


def array_from_proto(name: str, proto: tensor_pb2.TensorProto, want: tf.dtypes.DType | None,
                     limits: Limits) -> np.ndarray:
  """The numpy value of `proto` (input `name`), checked before anything is allocated."""
  if proto.dtype not in _FIELDS:
    raise _invalid(f'input {name!r}: dtype {dtype_name(proto.dtype)} is not a tensor dtype '
                   'this server accepts.')
  if want is not None and proto.dtype != want.as_datatype_enum:
    raise _invalid(f'input {name!r}: expects {want.name}, got '
                   f'{tf.dtypes.as_dtype(proto.dtype).name}.')
  if proto.tensor_shape.unknown_rank:
    raise _invalid(f'input {name!r}: the shape has an unknown rank.')
  dims = [d.size for d in proto.tensor_shape.dim]
  elements = check_dims(name, dims, limits)
  dtype = tf.dtypes.as_dtype(proto.dtype)
  field, bounds = _FIELDS[proto.dtype]
  values = getattr(proto, field)
  if proto.tensor_content:
    if proto.dtype == types_pb2.DT_STRING:
      raise _invalid(f'input {name!r}: a string tensor cannot use tensor_content.')
    want_bytes = elements * dtype.size
    if len(proto.tensor_content) != want_bytes or len(values):
      raise _invalid(f'input {name!r}: tensor_content of {len(proto.tensor_content)} bytes '
                     f'(and {len(values)} {field}) does not match shape {dims} of '
                     f'{dtype.name}, which is {want_bytes} bytes.')
    return np.frombuffer(proto.tensor_content, dtype.as_numpy_dtype).reshape(dims).copy()
  count = elements * _VALUES_PER_ELEMENT.get(proto.dtype, 1)
  if len(values) != count:
    raise _invalid(f'input {name!r}: {len(values)} {field} values for shape {dims} '
                   f'({count} expected; values are not repeated to fill a shape).')
  if proto.dtype == types_pb2.DT_STRING:
    return np.array(list(values), dtype=object).reshape(dims)
  if bounds is not None and len(values):
    low, high = min(values), max(values)
    if low < bounds[0] or high > bounds[1]:
      bad = low if low < bounds[0] else high
      raise _invalid(f'input {name!r}: value {bad} is outside the range [{bounds[0]}, '
                     f'{bounds[1]}] of {dtype.name}.')
  return tf.make_ndarray(proto)  # now safe: exactly `elements` values of a checked dtype
