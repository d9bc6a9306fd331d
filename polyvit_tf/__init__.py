"""polyvit_tf: PolyViT (Likhosherstov et al.) co-training in TensorFlow / Keras 3."""

__version__ = '0.1.0'
