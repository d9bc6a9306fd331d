"""The PolyViT Keras model: tokenizers, encoder blocks, heads and the per-task models."""

from polyvit_tf.model.polyvit import InputMismatchError, PolyViT
from polyvit_tf.configs.errors import ConfigError

__all__ = ['PolyViT', 'ConfigError', 'InputMismatchError']
