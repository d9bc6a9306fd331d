"""The profile benchmark's trace reader: op events summed by type, containers left out."""

from tensorflow.tsl.profiler.protobuf import xplane_pb2

from benchmarks import profile_step


def _write_space(path, events):
  space = xplane_pb2.XSpace()
  plane = space.planes.add(name='/host:CPU')
  other = space.planes.add(name='/device:CUSTOM:0')  # not the host: ignored
  for metadata_id, (name, _) in enumerate(events, start=1):
    plane.event_metadata[metadata_id].name = name
    other.event_metadata[metadata_id].name = name
  for thread in range(2):
    line = plane.lines.add(id=thread)
    for metadata_id, (_, picoseconds) in enumerate(events, start=1):
      line.events.add(metadata_id=metadata_id, duration_ps=picoseconds)
    other.lines.add(id=thread).events.add(metadata_id=1, duration_ps=10 ** 15)
  with open(path, 'wb') as f:
    f.write(space.SerializeToString())


def test_op_times_sum_host_events_by_type(tmp_path):
  path = str(tmp_path / 'host.xplane.pb')
  _write_space(path, [
      ('model/block_0/mlp_in/MatMul:MatMul', 3 * 10 ** 12),
      ('model/block_0/attention/MatMul_1:BatchMatMulV2', 10 ** 12),
      ('model/block_0/attention/Softmax:Softmax', 5 * 10 ** 11),
      ('gelu/mul_2:Mul', 2 * 10 ** 11),
      ('ExecutorState::Process:Process', 9 * 10 ** 12),
      ('$TraceMe internal', 10 ** 12),
      ('no type here', 10 ** 12),
  ])
  times = profile_step.op_times(path)
  # Two threads: every event counted twice; the non-host plane and untyped events ignored.
  assert times['MatMul'] == 6.0
  assert times['BatchMatMulV2'] == 2.0
  assert times['Softmax'] == 1.0
  assert abs(times['Mul'] - 0.4) < 1e-12
  kinds = profile_step.by_kind(times)
  assert 'other' not in kinds  # 'Process' is a container, not an op
  assert kinds == {'dense matmul': 6.0, 'attention matmul': 2.0, 'softmax': 1.0,
                   'element-wise': times['Mul']}


def test_unknown_op_types_are_other():
  assert profile_step.by_kind({'FancyNewOp': 1.5, 'Run': 4.0}) == {'other': 1.5}
