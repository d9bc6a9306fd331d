"""The paper's set-ups (Tables 2, 4, 5, 8; task details from Tables 6, 7, 16, 17) and its
linear-probe protocol (Table 9, Appendix D).

Use as `--config=polyvit_tf/configs/paper.py:<setup>` with one of SETUPS (training) or
PROBE_SETUPS (`python -m polyvit_tf.probe`). Train steps are the tables' values; "2.5 epochs"
warm-ups (and Table 9's epochs) are converted to steps with the train size and batch size.
Data sources name TFDS data sets where TFDS has them, otherwise TFRecords made by
`python -m polyvit_tf.data.convert` (see docs/data.md).
"""

from __future__ import annotations

import ml_collections

from polyvit_tf.configs import base

SETUPS = ('table2_b_adapt0', 'table2_b_adapt6', 'table8_l_adapt0', 'table8_l_adapt12',
          'table4_b_audio', 'table5_l_video')
PROBE_SETUPS = ('table9_probes',)

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


# Linear probes (Table 9, Appendix D). Image probes: RESISC45's steps and warm-up (Table 6), a
# learning-rate grid chosen on 2% of the train set, no augmentation, LeCun-normal heads. Video
# and audio probes: the fixed rates and epochs of Table 9 (ViViT's / MBT's hyper-parameters),
# zero heads, multi-crop evaluation, the modality's usual augmentation.
PROBE_GRID = (0.03, 0.1, 0.3)
_PROBE_IMAGE_STEPS, _PROBE_IMAGE_WARMUP = 2_500, 200


def _image_probe(num_classes: int, source: str) -> ml_collections.ConfigDict:
  tfds_name = source.startswith('tfds:')
  task = base.task_config(
      'image', num_classes, train_steps=_PROBE_IMAGE_STEPS,
      learning_rate=PROBE_GRID[0],  # each grid run sets its own
      warmup_steps=_PROBE_IMAGE_WARMUP, batch_size=_IMAGE_BATCH,
      data=base.data_config(source, train_split='train[:98%]' if tfds_name else 'train',
                            eval_split='test',
                            validation_split='train[98%:]' if tfds_name else 'validation',
                            augment=False))
  task.probe_learning_rates = PROBE_GRID
  return task


def _clip_probe(modality: str, num_classes: int, train_size: int, epochs: float,
                learning_rate: float, *, source: str, mixup_alpha: float = 0.0,
                label_smoothing: float = 0.0, **data) -> ml_collections.ConfigDict:
  task = _clip(modality, num_classes, train_size,
               base.epochs_to_steps(epochs, train_size, _CLIP_BATCH), learning_rate,
               source=source, mixup_alpha=mixup_alpha,
               eval_views={'video': _VIDEO_VIEWS, 'audio': _AUDIO_VIEWS}[modality])
  task.label_smoothing = label_smoothing
  task.data.update(data)
  task.probe_learning_rates = (learning_rate,)
  return task


def probe_tasks() -> dict[str, ml_collections.ConfigDict]:
  """Table 9's eleven tasks. Class counts: VTAB's (Caltech101 with its background class,
  KITTI-Distance's 4 distance bins). Epic Kitchens is probed on its 97 verb classes: the
  original ViViT set-up predicts 300 nouns and 97 verbs with two heads, which a one-head task
  cannot express. Epic Kitchens and SSv2 take ViViT's own settings for them (32 frames at
  stride 1, no colour augmentation, label smoothing 0.2 / 0.3, SSv2 without flips: its labels
  name directions); RandAugment, which ViViT also uses there, is not implemented."""
  return {
      'caltech101': _image_probe(102, 'tfds:caltech101'),
      'sun397': _image_probe(397, 'tfds:sun397'),
      'dmlab': _image_probe(6, 'tfds:dmlab'),
      'dtd': _image_probe(47, 'tfds:dtd'),
      # VTAB's KITTI-Distance labels (closest vehicle's distance, 4 bins) are not a TFDS
      # feature: convert them to TFRecords with train / validation (2% of train) / test splits.
      'kitti_distance': _image_probe(4, 'tfrecord:data/kitti_distance'),
      'patch_camelyon': _image_probe(2, 'tfds:patch_camelyon'),
      'epic_kitchens': _clip_probe('video', 97, 67_217, 30, 0.5, label_smoothing=0.2,
                                   source='epic_kitchens', frame_stride=1, color_augment=False),
      # Appendix D: "As in [3], we use Mixup with alpha = 0.3 for the S-S v2 task".
      'something_something_v2': _clip_probe(
          'video', 174, 168_913, 35, 0.4, mixup_alpha=0.3, label_smoothing=0.3,
          source='something_something_v2', frame_stride=1, color_augment=False,
          random_flip=False),
      'kinetics600': _clip_probe('video', 600, 363_000, 30, 0.1, source='kinetics600'),
      # Audio as MBT (and the co-training audio tasks, Appendix A): SpecAugment, mixup 0.3.
      'moments_in_time_audio': _clip_probe('audio', 339, 791_000, 10, 0.5, mixup_alpha=0.3,
                                           source='moments_in_time_audio'),
      'kinetics400_audio': _clip_probe('audio', 400, 215_000, 30, 0.5, mixup_alpha=0.3,
                                       source='kinetics400_audio'),
  }


def table9_probes() -> ml_collections.ConfigDict:
  """The probe config of Table 9 for `python -m polyvit_tf.probe` (the probed encoder, i.e.
  the model section, comes from --source; Table 7's input sizes)."""
  return base.assemble(base.model_config('B', 0), base.paper_modalities(), probe_tasks(),
                       name='table9_probes')


def _nine_tasks(size: str, num_adapt_layers: int, name: str) -> ml_collections.ConfigDict:
  tasks = {**image_tasks(), **video_tasks(), **audio_tasks(large=size == 'L')}
  return base.assemble(base.model_config(size, num_adapt_layers), base.paper_modalities(),
                       tasks, name=name)


def get_config(arg: str = 'table2_b_adapt0') -> ml_collections.ConfigDict:
  """The paper set-up named `arg` (one of SETUPS or PROBE_SETUPS)."""
  if arg == 'table9_probes':
    return table9_probes()
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
  raise ValueError(f'Unknown paper set-up {arg!r}; expected one of '
                   f'{list(SETUPS + PROBE_SETUPS)}.')
