"""Initialising PolyViT from pretrained checkpoints, and converting weights across formats and
modalities (docs/checkpoints.md).

Readers (vit_npz, big_vision_npz, hf) return a `PretrainedViT` (a 2D ViT in canonical form);
`initialise` maps it into any PolyViT config as the paper does; `polyvit:` sources (this
project's work directories) are copied by name and adapted (polyvit_ckpt). The trainer calls
`initialise_from_config(model, config)` when `config.init.source` is set.
"""

from polyvit_tf.checkpoints.canonical import CheckpointError
from polyvit_tf.checkpoints.canonical import PretrainedViT
from polyvit_tf.checkpoints.canonical import TokenizerWeights
from polyvit_tf.checkpoints.crossmodal import adapt_tokenizer
from polyvit_tf.checkpoints.crossmodal import convert_tokenizer
from polyvit_tf.checkpoints.init import initialise
from polyvit_tf.checkpoints.init import initialise_from_config
from polyvit_tf.checkpoints.init import read_pretrained
from polyvit_tf.checkpoints.options import FORMATS
from polyvit_tf.checkpoints.options import InitOptions
from polyvit_tf.checkpoints.options import init_options
from polyvit_tf.checkpoints.polyvit_ckpt import initialise_from_polyvit
from polyvit_tf.checkpoints.polyvit_ckpt import initialise_from_workdir
from polyvit_tf.checkpoints.report import InitReport

__all__ = [
    'CheckpointError', 'FORMATS', 'InitOptions', 'InitReport', 'PretrainedViT',
    'TokenizerWeights', 'adapt_tokenizer', 'convert_tokenizer', 'init_options', 'initialise',
    'initialise_from_config', 'initialise_from_polyvit', 'initialise_from_workdir',
    'read_pretrained',
]
