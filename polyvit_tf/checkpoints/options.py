"""The `init` section of a config, validated, and `<format>:<path>` sources."""

from __future__ import annotations

import dataclasses

import ml_collections

from polyvit_tf import modalities
from polyvit_tf.checkpoints import inflate
from polyvit_tf.checkpoints import resize
from polyvit_tf.configs.errors import ConfigError

# vit_npz: the original Google ViT / AugReg .npz; big_vision_npz: big_vision .npz;
# hf: Hugging Face ViT (safetensors or .bin); polyvit: this project's work directory.
FORMATS = ('vit_npz', 'big_vision_npz', 'hf', 'polyvit')


@dataclasses.dataclass(frozen=True)
class InitOptions:
  """config.init; the defaults are the paper's / the original code's choices."""
  source: str = ''
  video_kernel: str = 'central_frame'
  posemb_resize: str = 'bilinear'
  crossmodal_video_kernel: str = 'repeat'
  crossmodal_source: str = ''
  head_task: str = ''


def init_options(config: ml_collections.ConfigDict) -> InitOptions:
  """The config's `init` section (defaults where absent, e.g. in older work directories),
  raising ConfigError naming the bad `init.<field>`."""
  section = config.get('init') or {}
  fields = {f.name for f in dataclasses.fields(InitOptions)}
  unknown = sorted(set(section.keys()) - fields)
  if unknown:
    raise ConfigError(f'init: unknown field(s) {unknown}; expected {sorted(fields)}.')
  options = InitOptions(**{k: section[k] for k in section.keys()})
  allowed = {'video_kernel': ('central_frame', 'average'),
             'posemb_resize': resize.METHODS,
             'crossmodal_video_kernel': inflate.VIDEO_KERNELS,
             'crossmodal_source': ('',) + modalities.names()}
  for field, values in allowed.items():
    if getattr(options, field) not in values:
      raise ConfigError(f'init.{field}: {getattr(options, field)!r} is not one of '
                        f'{list(values)}.')
  if options.head_task and options.head_task not in config.tasks:
    raise ConfigError(f'init.head_task: {options.head_task!r} is not a task of this config '
                      f'({list(config.tasks.keys())}).')
  if options.source:
    parse_source(options.source)
  return options


def parse_source(source: str) -> tuple[str, str]:
  """'<format>:<path>' -> (format, path); ConfigError naming init.source otherwise."""
  fmt, sep, path = source.partition(':')
  if not sep or fmt not in FORMATS or not path:
    raise ConfigError(f'init.source: {source!r} is not <format>:<path> with format one of '
                      f'{list(FORMATS)} (e.g. vit_npz:/ckpts/ViT-B_16.npz).')
  return fmt, path
