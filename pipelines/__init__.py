"""The TFX pipeline of polyvit_tf: components, the pipeline definition and its runners."""

from polyvit_tf import quiet as _quiet

_quiet.for_command_line(__name__)  # `python -m pipelines.<command>`: before TensorFlow loads
