"""Performance scripts (docs/performance.md): `python -m benchmarks.<name>`, never timed tests."""

from polyvit_tf import quiet as _quiet

_quiet.for_command_line(__name__)  # `python -m benchmarks.<name>`: before TensorFlow loads
