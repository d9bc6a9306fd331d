"""The paper's initialisation of a PolyViT from a pretrained 2D ViT (Sec. 3.1, 4.3).

- Every modality's tokenizer: the patch kernel copied (image; audio with 3 channels), summed
  over RGB (1-channel spectrograms), or inflated to tubelets (video, `init.video_kernel`);
  the bias and the CLS token copied; position embeddings resized to the modality's grid
  (`init.posemb_resize`) and, for video, tiled over time; the CLS position embedding kept.
- Block l < L_adapt copied into every modality's adaptor stack (they start identical and
  drift apart in training); block l >= L_adapt into the shared encoder; the final LayerNorm
  copied.
- Heads are new (zeros or LeCun normal, per task); the checkpoint's head and pre-logits are
  reported and skipped, unless `init.head_task` names a task to take the head.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from polyvit_tf.checkpoints import big_vision_npz
from polyvit_tf.checkpoints import hf
from polyvit_tf.checkpoints import polyvit_ckpt
from polyvit_tf.checkpoints import vit_npz
from polyvit_tf.checkpoints.canonical import CheckpointError
from polyvit_tf.checkpoints.canonical import PretrainedViT
from polyvit_tf.checkpoints.options import InitOptions
from polyvit_tf.checkpoints.options import init_options
from polyvit_tf.checkpoints.options import parse_source
from polyvit_tf.checkpoints.report import InitReport
from polyvit_tf.model.polyvit import PolyViT
from polyvit_tf.configs.errors import ConfigError

READERS = {'vit_npz': vit_npz.read, 'big_vision_npz': big_vision_npz.read, 'hf': hf.read}
_TOKENIZER_ITEMS = (('kernel', 'kernel'), ('bias', 'bias'), ('cls', 'cls'),
                    ('posemb', 'pos_embedding'))


def read_pretrained(source: str) -> PretrainedViT:
  """The 2D ViT at `source` ('vit_npz:...', 'big_vision_npz:...' or 'hf:...')."""
  fmt, path = parse_source(source)
  if fmt not in READERS:
    raise ConfigError(f'init.source: {fmt!r} is not a 2D ViT format ({list(READERS)}).')
  return READERS[fmt](path)


def _check_sizes(model: PolyViT, vit: PretrainedViT) -> None:
  m = model.config.model
  pairs = [('hidden_size', vit.hidden_size, m.hidden_size),
           ('num_layers', vit.num_layers, m.num_layers), ('mlp_dim', vit.mlp_dim, m.mlp_dim)]
  if vit.num_heads is not None:
    pairs.append(('num_heads', vit.num_heads, m.num_heads))
  bad = [f'model.{f}: the checkpoint has {have}, the config {want}'
         for f, have, want in pairs if int(have) != int(want)]
  if bad:
    raise CheckpointError(f'{vit.source} does not fit the config ({vit.summary()}): '
                          + '; '.join(bad) + '.')


def _head(model: PolyViT, vit: PretrainedViT, task: str) -> dict[str, np.ndarray]:
  spec = model.task(task)
  where = f'init.head_task={task!r}'
  if vit.head is None:
    raise CheckpointError(f'{where}: {vit.source} has no head.')
  if vit.pre_logits is not None:
    raise CheckpointError(f'{where}: the checkpoint\'s head follows a pre-logits layer '
                          '(tanh Dense), which PolyViT does not have; its head cannot be used.')
  if vit.num_classes != spec.num_classes:
    raise CheckpointError(f'{where}: the checkpoint\'s head has {vit.num_classes} classes, '
                          f'task {task!r} {spec.num_classes}.')
  if spec.pooling != 'cls':
    raise CheckpointError(f'{where}: task {task!r} pools with {spec.pooling!r}; the '
                          'checkpoint\'s head reads the class token.')
  return {f'head_{task}/kernel': vit.head['kernel'], f'head_{task}/bias': vit.head['bias']}


def initialise(model: PolyViT, vit: PretrainedViT,
               options: InitOptions = InitOptions()) -> InitReport:
  """Loads `vit` into every part of `model` as the paper does; returns what was done.

  Raises CheckpointError listing every problem (sizes, patch shapes, head) before anything
  is assigned."""
  _check_sizes(model, vit)
  report = InitReport(source=vit.source, notes=list(vit.notes))
  values: dict[str, np.ndarray] = {}
  errors: list[str] = []
  for mod, spec in model.modalities.items():
    layer = f'tokenizer_{mod}'
    try:
      tok, actions = spec.impl.init_tokenizer(
          vit.tokenizer, spec, video_kernel=options.video_kernel,
          posemb_resize=options.posemb_resize, where=layer)
    except CheckpointError as e:
      errors.append(str(e))
      continue
    values.update(tok.as_variables(layer))
    for item, var in _TOKENIZER_ITEMS:
      action, detail = actions[item]
      report.add(f'{layer}/{var}', action, vit.origin.get(item, item), detail)

  num_adapt = model.num_adapt_layers
  for l, block in enumerate(vit.blocks):
    origin = vit.origin.get(f'block_{l}', f'block {l}')
    if l < num_adapt:
      targets = [f'adaptor_{mod}_block_{l}' for mod in model.modalities]
      row = f'adaptor_{{{",".join(model.modalities)}}}_block_{l}'
      detail = 'the same pretrained block in every modality\'s adaptor'
    else:
      targets, row, detail = [f'shared_block_{l}'], f'shared_block_{l}', ''
    for target in targets:
      values.update({f'{target}/{k}': v for k, v in block.items()})
    report.add(row, 'loaded', origin, detail, count=len(block) * len(targets))
  values['encoder_norm/gamma'] = vit.encoder_norm['gamma']
  values['encoder_norm/beta'] = vit.encoder_norm['beta']
  report.add('encoder_norm', 'loaded', vit.origin.get('encoder_norm', ''), count=2)

  fresh = []
  for task in model.task_names:
    if task == options.head_task:
      try:
        values.update(_head(model, vit, task))
        report.add(f'head_{task}', 'loaded', vit.origin.get('head', 'head'),
                   f'init.head_task ({vit.num_classes} classes)', count=2)
        continue
      except CheckpointError as e:
        errors.append(str(e))
    spec = model.task(task)
    fresh += [f'head_{task}/kernel', f'head_{task}/bias']
    report.add(f'head_{task}', 'fresh', '', f'new {spec.num_classes}-class head, kernel '
               f'{spec.head_init}, bias zeros', count=2)
  if errors:
    raise CheckpointError(f'cannot initialise {model.config.get("name", "PolyViT")} from '
                          f'{vit.source}:\n  - ' + '\n  - '.join(errors))

  if vit.head is not None and not options.head_task:
    report.add('-', 'skipped', vit.origin.get('head', 'head'),
               f'{vit.num_classes}-class head of the checkpoint (heads start new)', count=2)
    report.unexpected.append(vit.origin.get('head', 'head'))
  if vit.pre_logits is not None:
    report.add('-', 'skipped', vit.origin.get('pre_logits', 'pre_logits'),
               'pre-logits layer (PolyViT heads read the CLS token directly)', count=2)
    report.unexpected.append(vit.origin.get('pre_logits', 'pre_logits'))
  report.skip_source_keys(vit.skipped)

  return report.assign(model, values, fresh)


def initialise_from_config(model: PolyViT, config: ml_collections.ConfigDict) -> InitReport:
  """Initialises `model` from `config.init.source` with the options of `config.init`.

  `init.source` is '<format>:<path>': vit_npz, big_vision_npz, hf (a 2D ViT, mapped as the
  paper does) or polyvit (a work directory of this project, e.g. `convert --out`; weights
  taken by name, adapted where the configs differ)."""
  options = init_options(config)
  if not options.source:
    raise ConfigError('init.source: empty; set it to <format>:<path> to initialise from a '
                      'checkpoint.')
  fmt, path = parse_source(options.source)
  if fmt == 'polyvit':
    return polyvit_ckpt.initialise_from_workdir(model, path, options)
  return initialise(model, read_pretrained(options.source), options)
