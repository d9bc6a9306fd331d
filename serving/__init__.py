"""TF Serving side of polyvit_tf: client, local PredictionService stand-in, configs."""

from polyvit_tf import quiet as _quiet

_quiet.for_command_line(__name__)  # `python -m serving.<command>`: before TensorFlow loads
