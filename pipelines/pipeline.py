"""The polyvit_tf TFX pipeline, parameterised by a PolyViT config.

  PolyViTExampleGen          every task's train/eval(/validation) split in one Examples artifact
  StatisticsGen              statistics per split
  schema_<task>              the task's curated schema (label domain, required features)
  validator_<task>           ExampleValidator on the task's splits only
  gate_<task>                fails the run (before training) when the task has anomalies
  Trainer                    GenericExecutor run_fn: co-training + SavedModel export
  latest_blessed_model_resolver  the last blessed model (none on the first run)
  PolyViTEvaluator           per-task metrics (multi-crop), thresholds and no-regression check
  Pusher                     pushes a blessed, new model to <serving dir>/<version>/
  TFLiteExport               (same condition) the model as one multi-signature .tflite

No `union()` channels, so it compiles for Kubeflow Pipelines v2 as well as running locally.
"""

from __future__ import annotations

import json

import ml_collections
from tfx import v1 as tfx

from pipelines import examples as examples_lib
from pipelines.components import evaluator as evaluator_lib
from pipelines.components import example_gen as example_gen_lib
from pipelines.components import gate as gate_lib
from pipelines.components import schema as schema_lib
from pipelines.components import tflite as tflite_lib
from pipelines.trainer_module import CONFIG_KEY
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.train import loop as train_loop


def create_pipeline(config: ml_collections.ConfigDict, *, pipeline_name: str,
                    pipeline_root: str, serving_dir: str,
                    metadata_connection_config=None, enable_cache: bool = True,
                    beam_pipeline_args: list[str] | None = None,
                    tflite_quantization: str = 'float32') -> tfx.dsl.Pipeline:
  """The pipeline of `config` (validated first: a bad config fails before anything runs)."""
  train_loop.validate_config(config)
  config_json = config.to_json()
  # The Trainer sees the config without the `pipeline` section, so changing a blessing
  # threshold re-runs the Evaluator only (the trained model comes from the cache).
  trainer_config_json = ml_collections.ConfigDict(
      {k: v for k, v in config.items() if k != 'pipeline'}).to_json()
  spec = specs_lib.resolve(config)
  tasks = list(spec.task_names)
  all_splits = examples_lib.all_splits(config)

  example_gen = example_gen_lib.PolyViTExampleGen(
      config_json=examples_lib.data_only(config).to_json())
  examples = example_gen.outputs['examples']
  statistics = tfx.components.StatisticsGen(examples=examples)
  components = [example_gen, statistics]

  gates = []
  for task in tasks:
    t = spec.task(task)
    schema = schema_lib.TaskSchemaGen(task_json=json.dumps(
        {'modality': t.modality, 'num_classes': t.num_classes,
         'multilabel': t.multilabel})).with_id(f'schema_{task}')
    own = {examples_lib.artifact_split(task, p) for p in examples_lib.task_purposes(config, task)}
    validator = tfx.components.ExampleValidator(
        statistics=statistics.outputs['statistics'], schema=schema.outputs['schema'],
        exclude_splits=[s for s in all_splits if s not in own]).with_id(f'validator_{task}')
    gate = gate_lib.DataValidationGate(
        anomalies=validator.outputs['anomalies'], task=task).with_id(f'gate_{task}')
    gates.append(gate)
    components += [schema, validator, gate]

  trainer = tfx.components.Trainer(
      examples=examples, run_fn='pipelines.trainer_module.run_fn',
      train_args=tfx.proto.TrainArgs(
          splits=[examples_lib.artifact_split(t, 'train') for t in tasks]),
      eval_args=tfx.proto.EvalArgs(splits=[examples_lib.artifact_split(t, 'eval') for t in tasks]),
      custom_config={CONFIG_KEY: trainer_config_json})
  for gate in gates:
    trainer.add_upstream_node(gate)

  resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
  ).with_id('latest_blessed_model_resolver')

  evaluator = evaluator_lib.PolyViTEvaluator(
      examples=examples, model=trainer.outputs['model'],
      baseline_model=resolver.outputs['model'], config_json=config_json)
  blessing = evaluator.outputs['blessing'].future()[0]
  # Push and convert only a blessed model that is not already the last blessed one: a re-run
  # whose Trainer came from the cache re-evaluates it, but does not push it again.
  with tfx.dsl.Cond(blessing.custom_property('blessed') == 1):
    with tfx.dsl.Cond(blessing.custom_property('new_model') == 1):
      pusher = tfx.components.Pusher(
          model=trainer.outputs['model'], model_blessing=evaluator.outputs['blessing'],
          push_destination=tfx.proto.PushDestination(
              filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)))
      tflite = tflite_lib.TFLiteExport(model=trainer.outputs['model'],
                                       blessing=evaluator.outputs['blessing'],
                                       quantization=tflite_quantization)
  components += [trainer, resolver, evaluator, pusher, tflite]

  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name, pipeline_root=pipeline_root, components=components,
      enable_cache=enable_cache, metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [])
