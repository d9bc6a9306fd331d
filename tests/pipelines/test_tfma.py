"""TFX's standard Evaluator (TFMA 0.47) on the exported SavedModel, through `<task>_examples`.

As TFX's Evaluator would run it: an EvalConfig whose model spec names the tf.Example signature
and the label key, SparseCategoricalAccuracy, `run_model_analysis` over TFRecords written by
the project's writers. Its accuracy must be PolyViTEvaluator's (pipelines/evaluation.py) on
the same examples and model, and both the accuracy the labels were made to give.
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from pipelines import evaluation
from polyvit_tf.configs import specs
from polyvit_tf.data import features
from polyvit_tf.data import records
from polyvit_tf.export import savedmodel
from polyvit_tf.modalities import image as image_modality
from tests.export import fixtures

pytestmark = pytest.mark.slow

TASK = 'image_a'
NUM_EXAMPLES = 60


def _one_task_config(source: str):
  config = fixtures.tiny_config()
  config.tasks = {TASK: config.tasks[TASK]}
  config.modalities = {'image': config.modalities.image}
  config.tasks[TASK].data.source = source
  return config


def test_tfma_accuracy_through_the_examples_signature_is_polyvit_evaluators(tmp_path):
  import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel

  data_dir = str(tmp_path / 'data')
  config = _one_task_config(f'tfrecord:{data_dir}')
  fixtures.make_workdir(str(tmp_path / 'run'), config)
  version_dir = savedmodel.export_saved_model(str(tmp_path / 'run'), str(tmp_path / 'models'))
  loaded = tf.saved_model.load(version_dir)

  # Labels: the model's own top-1 for two examples in three, another class for the third,
  # so the right accuracy is known (40 / 60) and not a class frequency.
  media = [fixtures.image_bytes(i, size=(24 + i % 17, 30 + i % 13),
                                fmt='png' if i % 2 else 'jpeg') for i in range(NUM_EXAMPLES)]
  predicted = loaded.signatures[f'{TASK}_raw'](
      encoded=tf.constant(media))['top_k_ids'].numpy()[:, 0]
  num_classes = specs.resolve(config).task(TASK).num_classes
  labels = [int(p) if i % 3 else int(p + 1) % num_classes for i, p in enumerate(predicted)]
  split = specs.resolve(config).data[TASK].split('eval')
  paths = records.write_split(data_dir, split, [
      image_modality.example(f'ex{i}', label, m) for i, (label, m) in
      enumerate(zip(labels, media))])

  ours = evaluation.evaluate_saved_model(version_dir, config)[TASK]

  eval_config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name=f'{TASK}_examples', label_key=features.LABELS,
                                  prediction_key='probabilities')],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='SparseCategoricalAccuracy'),
          tfma.MetricConfig(class_name='ExampleCount')])])
  shared = tfma.default_eval_shared_model(eval_saved_model_path=version_dir,
                                          eval_config=eval_config)
  result = tfma.run_model_analysis(eval_shared_model=shared, eval_config=eval_config,
                                   data_location=paths[0], file_format='tfrecords',
                                   output_path=str(tmp_path / 'tfma'))
  (slice_key, metrics), = result.slicing_metrics
  assert slice_key == ()
  metrics = metrics['']['']
  tfma_accuracy = metrics['sparse_categorical_accuracy']['doubleValue']
  print(f'{TASK}: {NUM_EXAMPLES} examples; TFMA accuracy {tfma_accuracy!r}, '
        f'PolyViTEvaluator top1 {ours["top1"]!r}')
  assert metrics['example_count']['doubleValue'] == ours['num_examples'] == NUM_EXAMPLES
  assert len(set(predicted)) > 1  # the model tells the images apart
  assert ours['top1'] == pytest.approx(40 / NUM_EXAMPLES, abs=1e-6)
  assert tfma_accuracy == pytest.approx(ours['top1'], abs=1e-6)
