"""Initialising a PolyViT from another PolyViT: this project's work directories.

`polyvit:<dir>` is a training work directory or a `convert --out` directory (config.json +
checkpoints/). Its PolyViT is rebuilt from its config.json and its latest checkpoint's `model`
node restored (polyvit_tf.workdir.load_model); weights then move by name. Where the target
config differs:
- a modality with another grid (input size) gets its position embeddings resized; another
  channel count gets its kernel converted (3 -> 1 sums RGB);
- a modality the source lacks is converted from one it has (`init.crossmodal_source`, default
  the first the source has in crossmodal_order(): image, then video, then audio, then any other
  registered modality) as Appendix D does for probes (`init.crossmodal_video_kernel`),
  and its adaptor layers copied from that modality's;
- L_adapt may differ: target layer l comes from the source's layer l of the same modality
  (an adaptor or a shared block); a shared target layer can come from a source adaptor layer
  only if the source has one modality;
- a task whose head exists with the same shape keeps it; new tasks (or a changed class count)
  get fresh heads; source tasks and modalities the target lacks are reported as skipped.
"""

from __future__ import annotations

import numpy as np

from polyvit_tf import modalities
from polyvit_tf import workdir as workdir_lib
from polyvit_tf.checkpoints.canonical import CheckpointError
from polyvit_tf.checkpoints.canonical import TokenizerWeights
from polyvit_tf.checkpoints.options import InitOptions
from polyvit_tf.checkpoints.report import InitReport
from polyvit_tf.model import weights
from polyvit_tf.model.polyvit import PolyViT

def crossmodal_order() -> tuple[str, ...]:
  """The modalities a missing one is converted from when init.crossmodal_source is '', in
  order of preference (each modality's `crossmodal_rank`: the original prefers 2D image
  patches, then video, then audio), registry order among equals."""
  names = modalities.names()
  return tuple(sorted(names, key=lambda m: (modalities.get(m).crossmodal_rank,
                                            names.index(m))))


def initialise_from_workdir(model: PolyViT, path: str,
                            options: InitOptions = InitOptions()) -> InitReport:
  """Initialises `model` from the latest checkpoint of the work directory `path`."""
  try:
    source_config, source = workdir_lib.load_model(path)
  except FileNotFoundError as e:
    raise CheckpointError(f'polyvit:{path}: {e}') from e
  del source_config
  return initialise_from_polyvit(model, source, options,
                                 f'polyvit:{workdir_lib.latest_checkpoint(path)}')


def _source_modality(mod: str, source: PolyViT, options: InitOptions) -> str:
  if mod in source.modalities:
    return mod
  if options.crossmodal_source:
    if options.crossmodal_source not in source.modalities:
      raise CheckpointError(f'init.crossmodal_source: the source has no '
                            f'{options.crossmodal_source!r} tokenizer '
                            f'(it has {list(source.modalities)}).')
    return options.crossmodal_source
  return next(m for m in crossmodal_order() if m in source.modalities)


def _source_layer(l: int, mod: str, target_adaptor: bool, source: PolyViT) -> str:
  """The source layer that target layer `l` of modality `mod` (an adaptor or not) copies."""
  if l >= source.num_adapt_layers:
    return f'shared_block_{l}'
  if target_adaptor:
    return f'adaptor_{mod}_block_{l}'
  if len(source.modalities) == 1:
    return f'adaptor_{next(iter(source.modalities))}_block_{l}'
  raise CheckpointError(
      f'shared_block_{l}: the source\'s layer {l} is a per-modality adaptor '
      f'({", ".join(source.modalities)}), the target\'s a shared layer; which modality to '
      'keep is not defined (use a source with the same or a larger model.num_adapt_layers).')


def initialise_from_polyvit(model: PolyViT, source: PolyViT,
                            options: InitOptions = InitOptions(),
                            source_name: str = 'polyvit') -> InitReport:
  """Copies `source`'s weights into `model` by name, adapting what the configs change."""
  pairs = [('hidden_size', source.hidden_size, model.hidden_size),
           ('num_layers', source.num_layers, model.num_layers),
           ('mlp_dim', source.config.model.mlp_dim, model.config.model.mlp_dim),
           ('num_heads', source.config.model.num_heads, model.config.model.num_heads)]
  bad = [f'model.{f}: the source has {a}, the config {b}' for f, a, b in pairs if a != b]
  if bad:
    raise CheckpointError(f'{source_name} does not fit the config: ' + '; '.join(bad) + '.')
  src = weights.get(source)
  report = InitReport(source=source_name)
  values: dict[str, np.ndarray] = {}
  used: set[str] = set()
  errors: list[str] = []

  def copy_layer(src_layer: str, dst_layer: str, detail: str = '') -> None:
    names = [n for n in src if n.startswith(src_layer + '/')]
    values.update({dst_layer + n[len(src_layer):]: src[n] for n in names})
    used.add(src_layer)
    report.add(dst_layer, 'loaded', src_layer, detail, count=len(names))

  for mod, spec in model.modalities.items():
    try:
      src_mod = _source_modality(mod, source, options)
      video_kernel = (options.video_kernel if src_mod == mod
                      else options.crossmodal_video_kernel)
      tok, actions = spec.impl.init_tokenizer(
          TokenizerWeights.from_layer(source.tokenizers[src_mod]), spec,
          video_kernel=video_kernel, posemb_resize=options.posemb_resize,
          where=f'tokenizer_{mod}')
    except CheckpointError as e:
      errors.append(str(e))
      continue
    used.add(f'tokenizer_{src_mod}')
    values.update(tok.as_variables(f'tokenizer_{mod}'))
    for item, var in (('kernel', 'kernel'), ('bias', 'bias'), ('cls', 'cls'),
                      ('posemb', 'pos_embedding')):
      action, detail = actions[item]
      if src_mod != mod:
        action = 'converted' if action == 'loaded' else action
        detail = '; '.join(d for d in (f'from {src_mod} (Appendix D)', detail) if d)
      report.add(f'tokenizer_{mod}/{var}', action, f'tokenizer_{src_mod}/{var}', detail)
    for l in range(model.num_adapt_layers):
      try:
        copy_layer(_source_layer(l, src_mod, True, source), f'adaptor_{mod}_block_{l}',
                   f'from {src_mod}' if src_mod != mod else '')
      except CheckpointError as e:
        errors.append(str(e))
  for l in range(model.num_adapt_layers, model.num_layers):
    try:
      copy_layer(_source_layer(l, '', False, source), f'shared_block_{l}')
    except CheckpointError as e:
      errors.append(str(e))
  copy_layer('encoder_norm', 'encoder_norm')

  fresh = []
  for task in model.task_names:
    spec, head = model.task(task), f'head_{task}'
    if task in source.tasks and source.tasks[task].num_classes == spec.num_classes:
      copy_layer(head, head)
      continue
    if task in source.tasks:
      used.add(head)
      detail = (f'class count changed {source.tasks[task].num_classes} -> '
                f'{spec.num_classes}: new head')
    else:
      detail = 'new task: new head'
    fresh += [f'{head}/kernel', f'{head}/bias']
    report.add(head, 'fresh', '', f'{detail}, kernel {spec.head_init}', count=2)
  if errors:
    raise CheckpointError(f'cannot initialise from {source_name}:\n  - ' + '\n  - '.join(errors))

  for layer, obj in source.layers().items():
    if layer not in used:
      report.add('-', 'skipped', layer, 'not in the target config', count=len(obj.weights))
      report.unexpected.append(layer)
  return report.assign(model, values, fresh)
