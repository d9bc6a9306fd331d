"""Request limits checked from the TensorProto before allocation, REST JSON forms as TF
Serving writes them, and TF op errors recovered whole (no model needed)."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from serving import errors
from serving import limits as limits_lib
from serving import rest
from tests.serving import hostile

LIMITS = limits_lib.Limits(max_request_bytes=1 << 20, max_batch_rows=8,
                           max_tensor_elements=1000)


def _refusal(proto, want=tf.float32) -> str:
  with pytest.raises(errors.ServiceError) as e:
    limits_lib.array_from_proto('x', proto, want, LIMITS)
  assert e.value.code == 'INVALID_ARGUMENT'
  return e.value.message


def test_declared_shapes_are_refused_before_allocation():
  S, F, U8 = types_pb2.DT_STRING, types_pb2.DT_FLOAT, types_pb2.DT_UINT8
  assert '1000000000 rows exceed the limit of 8 rows' in _refusal(
      hostile.proto(S, [10**9], string_val=[b'x']), tf.string)
  assert 'is 201326592 elements, over the limit of 1000 elements per tensor ' \
         '(max_tensor_elements)' in _refusal(
             hostile.proto(U8, [1, 8, 8192, 1024, 3], int_val=[1]), tf.uint8)
  assert 'dim 1 of size -1' in _refusal(hostile.proto(F, [1, -1]))
  assert 'unknown rank' in _refusal(hostile.proto(F, None))
  assert 'a scalar' in _refusal(hostile.proto(F, [], float_val=[1.0]))
  assert 'DT_INVALID' in _refusal(hostile.proto(0, [1]))
  assert 'unknown dtype 1234' in _refusal(hostile.proto(1234, [1]))
  assert 'expects float32, got float64' in _refusal(hostile.proto(types_pb2.DT_DOUBLE, [1]))
  assert '1 float_val values for shape [4] (4 expected' in _refusal(
      hostile.proto(F, [4], float_val=[1.0]))
  assert 'tensor_content of 12 bytes' in _refusal(
      hostile.proto(F, [4], tensor_content=b'\0' * 12))
  assert 'value 300 is outside the range [0, 255] of uint8' in _refusal(
      hostile.proto(U8, [2], int_val=[1, 300]), tf.uint8)
  assert 'value -129 is outside the range [-128, 127]' in _refusal(
      hostile.proto(types_pb2.DT_INT8, [1], int_val=[-129]), tf.int8)


def test_proto_content_round_trips_when_within_limits():
  x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
  for proto in (tf.make_tensor_proto(x), hostile.proto(
      types_pb2.DT_FLOAT, [2, 3, 4], float_val=x.reshape(-1).tolist())):
    np.testing.assert_array_equal(limits_lib.array_from_proto('x', proto, tf.float32,
                                                              LIMITS), x)
  s = limits_lib.array_from_proto('s', tf.make_tensor_proto(np.array([b'a', b'bc'],
                                                                     dtype=object)),
                                  tf.string, LIMITS)
  assert s.tolist() == [b'a', b'bc']
  u = limits_lib.array_from_proto('u', hostile.proto(types_pb2.DT_UINT8, [3],
                                                     int_val=[0, 7, 255]), tf.uint8, LIMITS)
  assert u.dtype == np.uint8 and u.tolist() == [0, 7, 255]


def test_rest_json_inputs_checked_like_protos():
  with pytest.raises(errors.ServiceError, match='9 rows exceed the limit of 8'):
    rest.array_from_json('x', [[0.0]] * 9, tf.float32, LIMITS)
  with pytest.raises(errors.ServiceError, match='outside the range \\[0, 255\\] of uint8'):
    rest.array_from_json('x', [[300]], tf.uint8, LIMITS)
  with pytest.raises(errors.ServiceError, match='not of expected type: uint8'):
    rest.array_from_json('x', [[1.5]], tf.uint8, LIMITS)
  with pytest.raises(errors.ServiceError, match='unexpected size'):
    rest.array_from_json('x', [[1.0, 2.0], [3.0]], tf.float32, LIMITS)
  with pytest.raises(errors.ServiceError, match='without loss of precision'):
    rest.array_from_json('x', [[1e39]], tf.float32, LIMITS)
  with pytest.raises(errors.ServiceError, match='nested deeper than 32'):
    rest.array_from_json('x', json.loads('[' * 40 + ']' * 40), tf.float32, LIMITS)
  got = rest.array_from_json('x', [{'b64': 'eA=='}, 'y'], tf.string, LIMITS)
  assert got.tolist() == [b'x', b'y']
  nan = rest.array_from_json('x', [[math.nan, math.inf]], tf.float32, LIMITS)
  assert np.isnan(nan[0, 0]) and np.isinf(nan[0, 1])


def test_floats_written_as_tf_serving_writes_them():
  assert [rest.float_text(v) for v in (0.2, 3.0, 1e6, 1e-5, math.nan, math.inf, -math.inf)] \
      == ['0.2', '3.0', '1e+06', '1e-05', 'NaN', 'Infinity', '-Infinity']
  # %g's 6 digits when they round-trip in float32, 9 otherwise.
  assert rest.float_text(float(np.float32(0.123456789))) == '0.123456791'
  text = rest.response_json({'logits': np.array([[np.nan, 1.5]], np.float32),
                             'top_k_names': np.array([[b'digit 1']], dtype=object),
                             'raw_bytes': np.array([[b'\xff']], dtype=object)}, False)
  assert text == ('{"outputs":{"logits":[[NaN,1.5]],"raw_bytes":[[{"b64": "/w=="}]],'
                  '"top_k_names":[["digit 1"]]}}')
  assert np.isnan(json.loads(text)['outputs']['logits'][0][0])
  rows = rest.response_json({'a': np.array([1, 2], np.int32), 'b': np.array([[0.5], [2.0]],
                                                                            np.float32)}, True)
  assert json.loads(rows) == {'predictions': [{'a': 1, 'b': [0.5]}, {'a': 2, 'b': [2.0]}]}


def test_op_errors_reach_the_caller_whole():
  @tf.function
  def f(x):
    check = tf.debugging.Assert(tf.strings.length(x) < 3, [tf.strings.join(
        ['image: 20000 x 20000 pixels exceed the decode budget of 16777216 pixels'])])
    with tf.control_dependencies([check]):
      return tf.identity(x)

  with pytest.raises(tf.errors.InvalidArgumentError) as e:
    f(tf.constant('long'))
  assert 'Graph execution error' in e.value.message
  assert errors.op_error_message(e.value) == (
      'image: 20000 x 20000 pixels exceed the decode budget of 16777216 pixels')
  with pytest.raises(tf.errors.InvalidArgumentError) as e:
    tf.io.decode_png(tf.constant(b'\x89PNG\r\n\x1a\nnot really'))
  message = errors.op_error_message(e.value)
  assert message and 'Graph execution error' not in message and '{{' not in message
