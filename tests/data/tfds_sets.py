"""Small real TFDS data sets, prepared with TFDS's own writer, shaped like catalog data sets.

`write(data_dir)` prepares, in `data_dir`, what `tfds build` would leave there (versioned
directories, dataset_info.json, features.json, TFRecord shards), with
tfds.dataset_builders.store_as_tfds_dataset and nothing downloaded:

  cifar10          the catalog builder's own features (id Text, Image 32x32x3 PNG,
                   ClassLabel 10) and version; train 50 / test 10
  speech_commands  the catalog's (Audio int16 at 16 kHz, ClassLabel 12); train 6 /
                   validation 2 / test 4 one-second tones
  ucf101           the catalog's default config ucf101_1_256 (Video of 256x256 JPEG frames,
                   ClassLabel 101); train 4 / test 3 clips of 8 frames
  oxford_iiit_pet  the catalog's (JPEG Image, ClassLabel 37 `label` and 2 `species`,
                   `file_name`, a segmentation-mask Image, a head BBox); train 10 / test 3
  audioset         AudioSet's layout (no TFDS catalog entry): id Text, Audio int16 at
                   44.1 kHz, labels Sequence(ClassLabel 527); train 6 / test 4 clips

The catalog sets are then read by the catalog's registered builders (tfds.builder finds the
prepared version in data_dir), the AudioSet-like one by TFDS's read-only builder from its
files: the path a user's prepared data set takes.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from polyvit_tf.configs import tiny

AUDIOSET_CLASSES = 527
AUDIOSET_RATE = 44_100
SPEECH_RATE = 16_000

# name -> {split: examples}
COUNTS = {
    'cifar10': {'train': 50, 'test': 10},
    'speech_commands': {'train': 6, 'validation': 2, 'test': 4},
    'ucf101': {'train': 4, 'test': 3},
    'audioset': {'train': 6, 'test': 4},
    'oxford_iiit_pet': {'train': 10, 'test': 3},
}


def _tone(frequency: float, rate: int, seconds: float = 1.0) -> np.ndarray:
  t = np.arange(int(rate * seconds)) / rate
  return (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def _cifar10(split: str, i: int) -> dict:
  label = i % 10
  image = np.full((32, 32, 3), 40, np.uint8)
  image[(label // 5) * 16:(label // 5) * 16 + 16, (label % 5) * 6:(label % 5) * 6 + 6] = 220
  image[..., i % 3] += np.uint8(i)  # every image differs
  return {'id': f'{split}_{i:05d}', 'image': image, 'label': label}


def _speech_commands(split: str, i: int) -> dict:
  del split
  return {'audio': _tone(300 + 150 * (i % 12), SPEECH_RATE), 'label': i % 12}


def _ucf101(split: str, i: int) -> dict:
  del split
  frames = np.zeros((8, 256, 256, 3), np.uint8)
  for f in range(8):  # a bright bar moving right, one label per clip
    frames[f, 96:160, 20 * f + 8 * i:20 * f + 8 * i + 40] = 200
  return {'video': frames, 'label': (7 * i) % 101}


def _oxford_iiit_pet(split: str, i: int) -> dict:
  del split
  image = np.full((30 + i, 40, 3), 10 * i, np.uint8)  # JPEGs of any size, as the photos
  return {'image': image, 'label': i % 37, 'species': i % 2,
          'file_name': f'Pet_{i}.jpg', 'segmentation_mask': np.ones((30 + i, 40, 1), np.uint8),
          'head_bbox': tfds.features.BBox(0.1, 0.2, 0.6, 0.7)}


def _audioset(split: str, i: int) -> dict:
  labels = sorted({(37 * i) % AUDIOSET_CLASSES, AUDIOSET_CLASSES - 1 - i}) if i % 2 else [
      (37 * i) % AUDIOSET_CLASSES]
  return {'id': f'{split}_yt{i:04d}', 'audio': _tone(250 + 120 * i, AUDIOSET_RATE),
          'labels': labels}


def audioset_features() -> tfds.features.FeaturesDict:
  """AudioSet's layout: the clip, its YouTube id, any number of its 527 classes."""
  return tfds.features.FeaturesDict({
      'id': tfds.features.Text(),
      'audio': tfds.features.Audio(shape=(None,), dtype=np.int16, sample_rate=AUDIOSET_RATE),
      'labels': tfds.features.Sequence(tfds.features.ClassLabel(num_classes=AUDIOSET_CLASSES)),
  })


_MAKERS = {'cifar10': _cifar10, 'speech_commands': _speech_commands, 'ucf101': _ucf101,
           'audioset': _audioset, 'oxford_iiit_pet': _oxford_iiit_pet}


def write(data_dir: str, names=tuple(COUNTS)) -> str:
  """Prepares the data sets `names` in `data_dir`; returns `data_dir`."""
  for name in names:
    if name == 'audioset':
      features, version, config = audioset_features(), '1.0.0', None
    else:
      catalog = tfds.builder(name, data_dir=data_dir)  # the catalog's code; nothing read
      features, version = catalog.info.features, catalog.version
      config = catalog.builder_config.name if catalog.builder_config else None
    splits = {split: [(f'{split}{i}', _MAKERS[name](split, i)) for i in range(n)]
              for split, n in COUNTS[name].items()}
    tfds.dataset_builders.store_as_tfds_dataset(
        name, version, features, splits, config=config, data_dir=data_dir)
  return data_dir


def config(data_dir: str):
  """configs/tiny.py with one task per data set, read through `tfds:<name>` sources."""
  cfg = tiny.get_config()
  tasks = cfg.tasks
  tasks.audio_b = tasks.audio_a.copy_and_resolve_references()
  for task, (name, classes, multilabel) in {
      'image_a': ('cifar10', 10, False), 'audio_a': ('audioset', AUDIOSET_CLASSES, True),
      'audio_b': ('speech_commands', 12, False), 'video_a': ('ucf101', 101, False)}.items():
    t = tasks[task]
    t.num_classes, t.multilabel = classes, multilabel
    t.loss = 'sigmoid_xent' if multilabel or task == 'image_a' else 'softmax_xent'
    t.train_steps, t.warmup_steps, t.batch_size = 1, 1, 2
    t.data.source = f'tfds:{name}'
    t.data.data_dir = data_dir
    t.data.shuffle_buffer = 4
    t.data.eval_split = 'test'
  tasks.image_a.data.train_split = 'train[:98%]'  # the paper's CIFAR split (Appendix A)
  tasks.image_a.data.validation_split = 'train[98%:]'
  tasks.audio_b.data.validation_split = 'validation'
  tasks.audio_b.mixup_alpha = 0.0
  del tasks['image_b']
  tasks.video_a.eval_views = 2
  return cfg
