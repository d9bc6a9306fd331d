"""The paper's set-ups (Tables 2, 4, 5, 8; task details from Tables 6, 7, 16, 17).

Use as `--config=polyvit_tf/configs/paper.py:<setup>` with one of SETUPS. Train steps are the
tables' values; "2.5 epochs" warm-ups are converted to steps with the table's train size and
batch size. Data sources name TFDS data sets where TFDS has them, otherwise TFRecords made by
`python -m polyvit_tf.data.convert` (see docs/data.md).
"""

from __future__ import annotations

import ml_collections

from polyvit_tf.configs import base

SETUPS = ('table2_b_adapt0', 'table2_b_adapt6', 'table8_l_adapt0', 'table8_l_adapt12',
          'table4_b_audio', 'table5_l_video')

_IMAGE_BATCH = 512
_CLIP_BATCH = 64


def _image(num_classes, train_steps, learning_rate, warmup_steps, tfds_name, train_split,
           eval_split, validation_split):
  return base.task_config(
      'image', num_classes, train_steps=train_steps, learning_rate=learning_rate,
      warmup_steps=warmup_steps, batch_size=_IMAGE_BATCH,
      data=base.data_config(f'tfds:{tfds_name}', train_split=train_split,
                            eval_split=eval_split, validation_split=validation_split))


def _clip(modality, num_classes, train_size, train_steps, learning_rate, *, source,
          multilabel=False, mixup_alpha=0.0, stochastic_depth=0.0, eval_views=1):
  """A video or audio task: zero-initialised head, 2.5 warm-up epochs, batch 64."""
  return base.task_config(
      modality, num_classes, train_steps=train_steps, learning_rate=learning_rate,
      warmup_steps=base.epochs_to_steps(2.5, train_size, _CLIP_BATCH),
      batch_size=_CLIP_BATCH, multilabel=multilabel, mixup_alpha=mixup_alpha,
      stochastic_depth=stochastic_depth, eval_views=eval_views,
      data=base.data_config(f'tfrecord:data/{source}', train_split='train',
                            eval_split='test', validation_split='validation'))


# Multi-crop evaluation (Appendix C): video 4 temporal x 3 spatial views (ViViT); audio
# several temporal clips (MBT).
_VIDEO_VIEWS = 12
_AUDIO_VIEWS = 4


def image_tasks() -> dict[str, ml_collections.ConfigDict]:
  """Table 6 image rows; validation splits of Appendix A (2% CIFAR, 10% Pets, 1% Im1K)."""
  return {
      'cifar100': _image(100, 10_000, 0.03, 500, 'cifar100', 'train[:98%]', 'test',
                         'train[98%:]'),
      'cifar10': _image(10, 10_000, 0.03, 500, 'cifar10', 'train[:98%]', 'test',
                        'train[98%:]'),
      'pets': _image(37, 500, 0.03, 100, 'oxford_iiit_pet', 'train[:90%]', 'test',
                     'train[90%:]'),
      # RESISC45 has one split: 60% train, 20% validation, 20% test (Appendix A).
      'resisc45': _image(45, 2_500, 0.1, 200, 'resisc45', 'train[:60%]', 'train[80%:]',
                         'train[60%:80%]'),
      'imagenet': _image(1000, 20_000, 0.03, 500, 'imagenet2012', 'train[:99%]',
                         'validation', 'train[99%:]'),
  }


def video_tasks(*, k600: bool = False, k400_steps: int = 100_700) -> dict:
  """Table 6 video rows (Table 16 adds Kinetics 600)."""
  tasks = {
      'kinetics400': _clip('video', 400, 215_000, k400_steps, 0.1, source='kinetics400',
                           eval_views=_VIDEO_VIEWS),
      'moments_in_time': _clip('video', 339, 791_000, 123_600, 0.25,
                               source='moments_in_time', eval_views=_VIDEO_VIEWS),
  }
  if k600:
    tasks['kinetics600'] = _clip('video', 600, 363_000, 170_000, 0.1, source='kinetics600',
                                 eval_views=_VIDEO_VIEWS)
  return tasks


def audio_tasks(*, large: bool = False) -> dict:
  """Table 6 audio rows; Appendix C changes for Large (mixup 0.5 / 0.7, 30 MiniAS epochs)."""
  mini_as_epochs = 30 if large else 50
  return {
      'mini_audioset': _clip(
          'audio', 527, 20_400, base.epochs_to_steps(mini_as_epochs, 20_400, _CLIP_BATCH), 0.5,
          source='mini_audioset', multilabel=True, mixup_alpha=0.5 if large else 0.3,
          stochastic_depth=0.3, eval_views=_AUDIO_VIEWS),
      'vggsound': _clip('audio', 309, 172_000, 135_000, 0.5, source='vggsound',
                        mixup_alpha=0.7 if large else 0.3, stochastic_depth=0.3,
                        eval_views=_AUDIO_VIEWS),
  }


def _nine_tasks(size: str, num_adapt_layers: int, name: str) -> ml_collections.ConfigDict:
  tasks = {**image_tasks(), **video_tasks(), **audio_tasks(large=size == 'L')}
  return base.assemble(base.model_config(size, num_adapt_layers), base.paper_modalities(),
                       tasks, name=name)


def get_config(arg: str = 'table2_b_adapt0') -> ml_collections.ConfigDict:
  """The paper set-up named `arg` (one of SETUPS)."""
  if arg == 'table2_b_adapt0':
    return _nine_tasks('B', 0, arg)
  if arg == 'table2_b_adapt6':
    return _nine_tasks('B', 6, arg)
  if arg == 'table8_l_adapt0':
    return _nine_tasks('L', 0, arg)
  if arg == 'table8_l_adapt12':
    return _nine_tasks('L', 12, arg)
  if arg == 'table4_b_audio':
    # Table 17: AS-500k (30 epochs, mixup 0.5) and VGGSound (50 epochs, mixup 0.3).
    tasks = {
        'audioset_500k': _clip('audio', 527, 509_000, 239_000, 0.5, source='audioset_500k',
                               multilabel=True, mixup_alpha=0.5, stochastic_depth=0.3,
                               eval_views=_AUDIO_VIEWS),
        'vggsound': _clip('audio', 309, 172_000, 135_000, 0.5, source='vggsound',
                          mixup_alpha=0.3, stochastic_depth=0.3, eval_views=_AUDIO_VIEWS),
    }
    return base.assemble(base.model_config('B', 0), base.paper_modalities(), tasks, name=arg)
  if arg == 'table5_l_video':
    # Table 16: K400 (101K steps), K600, MiT; Large with 2x16x16 tubelets.
    tasks = video_tasks(k600=True, k400_steps=101_000)
    return base.assemble(base.model_config('L', 0),
                         base.paper_modalities(video_tubelet=(2, 16, 16)), tasks, name=arg)
  raise ValueError(f'Unknown paper set-up {arg!r}; expected one of {list(SETUPS)}.')
