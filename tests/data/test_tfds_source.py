"""`tfds:` sources on real prepared TFDS data sets (tests/data/tfds_sets.py, written by TFDS's
own writer with the catalog's feature specs; nothing mocked, nothing downloaded): features
found as a user's set has them, sliced split counts, payloads, and the errors of a data set
that is missing or not prepared."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from polyvit_tf import modalities
from polyvit_tf.configs import paper
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.configs.errors import ConfigError
from polyvit_tf.data import errors
from polyvit_tf.data import pipeline
from polyvit_tf.data import sources
from polyvit_tf.data import tfds_source
from tests.data import tfds_sets

TASK_SET = {'image_a': 'cifar10', 'audio_a': 'audioset', 'audio_b': 'speech_commands',
            'video_a': 'ucf101'}


def _source(config, task) -> sources.Source:
  return sources.for_task(config, task)


def _ids(source, split) -> list[str]:
  return [source.example_id(raw).numpy().decode() for _, raw in source.epoch_records(split)]


def test_sources_read_the_prepared_files_with_the_catalog_builders(tfds_data_dir):
  config = tfds_sets.config(tfds_data_dir)
  got = {}
  for task, name in TASK_SET.items():
    source = _source(config, task)
    assert isinstance(source, tfds_source.TFDSSource)
    assert source.builder.is_prepared()
    assert source.builder.data_dir.startswith(tfds_data_dir)
    got[task] = (type(source.builder).__name__, source.input_key, source.label_key,
                 source.id_key)
  assert got == {
      'image_a': ('Cifar10', 'image', 'label', 'id'),
      'audio_a': ('ReadOnlyBuilder', 'audio', 'labels', 'id'),  # not in the catalog
      'audio_b': ('Builder', 'audio', 'label', ''),  # speech_commands' builder class
      'video_a': ('Ucf101', 'video', 'label', ''),
  }
  assert _source(config, 'video_a').builder.builder_config.name == 'ucf101_1_256'
  # Pets has two Image and two ClassLabel features: the modality's and `label` win.
  pets = tfds_source.TFDSSource('oxford_iiit_pet', 'image', 'tfds:oxford_iiit_pet', 'pets',
                                data_dir=tfds_data_dir)
  assert (pets.input_key, pets.label_key, pets.id_key) == ('image', 'label', 'file_name')
  assert [pets.num_records(s) for s in ('train[:90%]', 'train[90%:]', 'test')] == [9, 1, 3]
  _, raw = next(iter(pets.epoch_records('test')))
  ex = pets.parse(raw)
  assert ex['image'].numpy()[:2] == b'\xff\xd8' and ex['id'].numpy().startswith(b'Pet_')


def _tfds_sources(config) -> dict[str, tuple[str, str]]:
  """{TFDS name: modality} of every `tfds:` task of a config."""
  spec = specs_lib.resolve(config)
  return {spec.data[t].source.partition(':')[2]: spec.task(t).modality
          for t in spec.task_names if spec.data[t].source.startswith('tfds:')}


def test_every_catalog_set_of_the_paper_configs_has_the_features_read():
  """The feature layout of each TFDS catalog builder the paper configs name (its own
  FeaturesDict, read from the catalog's code: nothing prepared): which features are read."""
  names = {**_tfds_sources(paper.get_config('table2_b_adapt0')),
           **_tfds_sources(paper.get_config('table9_probes'))}
  got = {}
  for name, modality in sorted(names.items()):
    feats = tfds.builder(name, data_dir='/nonexistent').info.features  # nothing read
    got[name] = tfds_source.feature_keys(feats, modalities.get(modality), where=name)
  assert got == {
      'caltech101': ('image', 'label', ''),
      'cifar10': ('image', 'label', 'id'),
      'cifar100': ('image', 'label', 'id'),  # not coarse_label
      'dmlab': ('image', 'label', 'filename'),
      'dtd': ('image', 'label', 'file_name'),
      'imagenet2012': ('image', 'label', 'file_name'),
      'oxford_iiit_pet': ('image', 'label', 'file_name'),  # not segmentation_mask / species
      'patch_camelyon': ('image', 'label', 'id'),
      'resisc45': ('image', 'label', 'filename'),
      'sun397': ('image', 'label', 'file_name'),
  }


def test_feature_keys_errors_name_the_set_and_its_features():
  feats = tfds.builder('speech_commands', data_dir='/nonexistent').info.features
  with pytest.raises(ConfigError, match=r"t: sc has no Image feature .*data.input_key.*"
                     r"\['audio', 'label'\]"):
    tfds_source.feature_keys(feats, modalities.get('image'), where='t: sc')
  with pytest.raises(ConfigError, match=r"data.label_key 'labels' is not one of"):
    tfds_source.feature_keys(feats, modalities.get('audio'), label_key='labels', where='t')


def test_sliced_splits_count_exactly(tfds_data_dir):
  """The paper's CIFAR split (train[:98%] / train[98%:]) and others: dataset_info.json's
  counts, the records read and the ids all agree, and the slices partition the split."""
  config = tfds_sets.config(tfds_data_dir)
  cifar = _source(config, 'image_a')
  expected = {'train': 50, 'train[:98%]': 49, 'train[98%:]': 1, 'test': 10,
              'train[:20%]+test': 20, 'train[10:15]': 5}
  for split, n in expected.items():
    assert cifar.num_records(split) == n, split
    assert len(_ids(cifar, split)) == n, split
  train, head, tail = (set(_ids(cifar, s)) for s in ('train', 'train[:98%]', 'train[98%:]'))
  assert len(train) == 50 and head | tail == train and not head & tail
  assert train == {f'train_{i:05d}' for i in range(50)}
  speech = _source(config, 'audio_b')
  assert [speech.num_records(s) for s in ('train[:50%]', 'train[50%:]', 'validation')] == [
      3, 3, 2]
  # The split a task's purpose names (specs): eval 'test', validation the 2% slice.
  data = specs_lib.resolve(config).data['image_a']
  assert cifar.num_records(data.split('train')) == 49
  assert cifar.num_records(data.split('validation')) == 1


def test_payloads_are_the_stored_media(tfds_data_dir):
  """Each modality's payload of a TFDS example: the PNG TFDS stored (images), the int16
  samples as floats with the feature's sample rate (audio), the encoded JPEG frames
  (video); labels of the multi-label set as stored."""
  config = tfds_sets.config(tfds_data_dir)

  def first(task, split='test'):
    source = _source(config, task)
    _, raw = next(iter(source.epoch_records(split)))
    return source, raw, {k: v.numpy() for k, v in source.parse(raw).items()}

  _, raw, ex = first('image_a')
  i = int(ex['id'].decode().split('_')[1])
  want = tfds_sets._cifar10('test', i)  # pylint: disable=protected-access
  assert ex['image'][:8] == b'\x89PNG\r\n\x1a\n'
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(ex['image']))),
                                want['image'])
  assert ex['labels'].tolist() == [want['label']]

  _, _, ex = first('audio_a')
  i = int(ex['id'].decode().split('_yt')[1])
  want = tfds_sets._audioset('test', i)  # pylint: disable=protected-access
  assert ex['sample_rate'] == tfds_sets.AUDIOSET_RATE
  np.testing.assert_allclose(ex['waveform'], want['audio'] / 32768.0, atol=1e-7)
  assert ex['labels'].tolist() == want['labels']

  _, _, ex = first('audio_b')
  assert ex['sample_rate'] == tfds_sets.SPEECH_RATE and ex['waveform'].shape == (16_000,)
  assert ex['id'] == b''  # speech_commands has no id feature: errors name name/split#i

  _, _, ex = first('video_a')
  assert ex['frames'].shape == (8,)
  assert all(f[:2] == b'\xff\xd8' for f in ex['frames'])  # ucf101 stores JPEG frames
  assert tf.io.decode_jpeg(ex['frames'][0]).shape == (256, 256, 3)


def test_eval_pipeline_reads_the_validation_slice(tfds_data_dir):
  config = tfds_sets.config(tfds_data_dir)
  errors.BAD_EXAMPLES.reset()  # other tests' image_a tasks count bad examples too
  batches = list(pipeline.eval_dataset(config, 'image_a', split='validation', batch_size=4))
  assert sum(float(b['mask'].numpy().sum()) for b in batches) == 1  # train[98%:]
  assert batches[0]['inputs'].shape == (4, 1, 32, 32, 3)
  assert np.isfinite(batches[0]['inputs']).all()
  assert errors.BAD_EXAMPLES.summary() == {}


# ------------------------------------------------------------------------------ errors
def _open(tmp_path, name: str, task: str = 'image_a', modality: str = 'image'):
  return tfds_source.TFDSSource(name, modality, f'tfds:{name}', task,
                                data_dir=str(tmp_path))


@pytest.mark.parametrize('name,command', [
    ('cifar100', 'tfds build cifar100 --data_dir={d}'),
    ('oxford_iiit_pet:4.0.0', 'tfds build oxford_iiit_pet:4.0.0 --data_dir={d}'),
    ('sun397', 'tfds build sun397/tfds --data_dir={d}'),  # a bare name builds every config
    ('ucf101/ucf101_1', 'tfds build ucf101/ucf101_1 --data_dir={d}'),
    ('imagenet2012', 'tfds build imagenet2012 --data_dir={d} --manual_dir='),
])
def test_unprepared_catalog_set_says_how_to_prepare_it(tmp_path, name, command):
  with pytest.raises(errors.DataSourceError) as e:
    _open(tmp_path, name, task='pets')
  message = str(e.value)
  assert message.startswith(f"task pets: data.source 'tfds:{name}': the TFDS data set "
                            f"'{name}' is not prepared in {tmp_path} (searched {tmp_path}/")
  assert command.format(d=tmp_path) in message
  if name == 'imagenet2012':
    assert 'ILSVRC2012_img_train.tar' in message  # TFDS's manual-download instructions
  assert len(message) < 1000


def test_unknown_set_and_wrong_version(tfds_data_dir, tmp_path):
  with pytest.raises(errors.DataSourceError) as e:
    _open(tmp_path, 'my_audioset', task='audio_a', modality='audio')
  message = str(e.value)
  assert re.search(r"task audio_a: data.source 'tfds:my_audioset': .* not prepared in "
                   + re.escape(f'{tmp_path} (searched {tmp_path}/my_audioset)'), message)
  assert 'not in the TFDS catalog' in message and f'--data_dir={tmp_path}' in message
  assert len(message) < 1000  # not TFDS's list of every data set it knows
  with pytest.raises(errors.DataSourceError,
                     match=r'cifar10:3\.0\.1.*not prepared.*versions there: 3\.0\.2\)\. '
                     r'TFDS: .*only: 3\.0\.2.*tfds build cifar10:3\.0\.1'):
    tfds_source.TFDSSource('cifar10:3.0.1', 'image', 'tfds:cifar10:3.0.1', 'image_a',
                           data_dir=tfds_data_dir)


def test_missing_set_fails_when_the_source_is_opened(tmp_path, tfds_data_dir):
  """Before any data is read: open_source (pipelines, ExampleGen, stats all open it first),
  and an unknown split lists the splits there are."""
  config = tfds_sets.config(tfds_data_dir)
  config.tasks.image_a.data.source = 'tfds:cifar100'
  config.tasks.image_a.data.data_dir = str(tmp_path)
  with pytest.raises(errors.DataSourceError, match=r'task image_a: .*tfds:cifar100.*'
                     r'tfds build cifar100'):
    _source(config, 'image_a')
  with pytest.raises(errors.DataSourceError, match='tfds build cifar100'):
    pipeline.train_dataset(config, 'image_a', seed=0)
  config = tfds_sets.config(tfds_data_dir)
  config.tasks.image_a.data.eval_split = 'validation'
  with pytest.raises(errors.DataSourceError,
                     match=r"task image_a: .*split 'validation'.*its splits: test, train"):
    pipeline.eval_dataset(config, 'image_a')

