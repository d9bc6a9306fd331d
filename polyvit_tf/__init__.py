"""polyvit_tf: PolyViT (Likhosherstov et al.) co-training in TensorFlow / Keras 3."""

from polyvit_tf import quiet as _quiet

__version__ = '0.1.0'

# `python -m polyvit_tf.<command>`: quiet before any subpackage imports TensorFlow.
_quiet.for_command_line(__name__)
