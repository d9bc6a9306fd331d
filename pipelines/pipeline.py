"""The polyvit_tf TFX pipeline, parameterised by a PolyViT config.

  PolyViTExampleGen          every task's train/eval(/validation) split in one Examples artifact
  StatisticsGen              statistics per split
  schema_<task>              the task's curated schema (label domain, required features)
  validator_<task>           ExampleValidator on the task's splits only
  gate_<task>                fails the run (before training) when the task has anomalies
  Trainer                    GenericExecutor run_fn: co-training + SavedModel export, in its
                             pod or as a Vertex AI CustomJob (pipelines/training_modes.py)
  PolyViTEvaluator           per-task metrics (multi-crop); bounds (threshold or trivial
                             baseline) and no regression against the model served from the
                             serving dir, which it finds itself (pipelines/served_model.py)
  InfraValidator             target kfp only (same condition as Pusher): TF Serving on the
                             cluster loads the model (pipelines/components/infra_validator.py)
  Pusher                     pushes a blessed, new (and infra-blessed) model to
                             <serving dir>/<version>/, the version the evaluator picked
                             (pipelines/versioning.py)
  TFLiteExport               (same condition) the model as one multi-signature .tflite,
                             its manifest naming that version

With a Kubeflow `target`, each node's pod requests `pipeline.resources.<node id>`
(pipelines/resources.py).

No `union()` channels and no resolver node, so it compiles for open-source Kubeflow Pipelines
v2 (which has no resolver executor) and Vertex AI as well as running locally. The evaluator
reads state outside its inputs (what is served), so it is never taken from the cache:
`never_cached` marks it in LocalDagRunner's IR, pipelines.compile_kubeflow in the KFP spec.
"""

from __future__ import annotations

import json

import ml_collections
from tfx import v1 as tfx
from tfx.dsl.compiler import compiler
from tfx.proto.orchestration import pipeline_pb2

from pipelines import examples as examples_lib
from pipelines import layout
from pipelines import resources as resources_lib
from pipelines import training_modes
from pipelines import versioning
from pipelines.components import evaluator as evaluator_lib
from pipelines.components import example_gen as example_gen_lib
from pipelines.components import gate as gate_lib
from pipelines.components import infra_validator as infra_validator_lib
from pipelines.components import schema as schema_lib
from pipelines.components import tflite as tflite_lib
from pipelines.trainer_module import CONFIG_KEY
from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.train import loop as train_loop


def create_pipeline(config: ml_collections.ConfigDict, *, pipeline_name: str,
                    pipeline_root: str, serving_dir: str,
                    metadata_connection_config=None, enable_cache: bool = True,
                    beam_pipeline_args: list[str] | None = None,
                    tflite_quantization: str = 'float32', target: str | None = None,
                    image: str = '') -> tfx.dsl.Pipeline:
  """The pipeline of `config` (validated first: a bad config fails before anything runs).

  `target` is the Kubeflow target ('kfp', 'vertex') being compiled for, None for a local
  run: only then do nodes request resources; InfraValidator is part of the 'kfp' pipeline.
  `image` is the pipeline image (the default of a Vertex AI training job's replicas).
  """
  train_loop.validate_config(config)
  training_modes.mode(config)
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

  trainer = training_modes.trainer(
      config, image=image, target=target,
      examples=examples, run_fn='pipelines.trainer_module.run_fn',
      train_args=tfx.proto.TrainArgs(
          splits=[examples_lib.artifact_split(t, 'train') for t in tasks]),
      eval_args=tfx.proto.EvalArgs(splits=[examples_lib.artifact_split(t, 'eval') for t in tasks]),
      custom_config={CONFIG_KEY: trainer_config_json})
  for gate in gates:
    trainer.add_upstream_node(gate)

  evaluator = evaluator_lib.PolyViTEvaluator(
      examples=examples, model=trainer.outputs['model'], config_json=config_json,
      serving_dir=serving_dir)
  # Push and convert only a blessed model that is not the served model itself: a re-run whose
  # Trainer came from the cache re-evaluates it, but does not push it again.
  # On open-source Kubeflow, TF Serving must also load it first (InfraValidator on the
  # cluster's Kubernetes; Pusher's executor pushes only an infra-blessed model). A local run
  # has no TF Serving binary nor Kubernetes, and Vertex AI Pipelines no Kubernetes API.
  infra = None
  with tfx.dsl.Cond(_blessing_property(evaluator, 'blessed') == 1):
    with tfx.dsl.Cond(_blessing_property(evaluator, 'new_model') == 1):
      if target == 'kfp' and config.pipeline.infra_validator.enabled:
        infra = infra_validator_lib.create(trainer.outputs['model'],
                                           config.pipeline.infra_validator,
                                           model_name=layout.PIPELINE_NAME)
      pusher = versioning.Pusher(
          model=trainer.outputs['model'], model_blessing=evaluator.outputs['blessing'],
          infra_blessing=infra.outputs['blessing'] if infra else None,
          push_destination=tfx.proto.PushDestination(
              filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)))
      tflite = tflite_lib.TFLiteExport(model=trainer.outputs['model'],
                                       blessing=evaluator.outputs['blessing'],
                                       quantization=tflite_quantization)
  components += [trainer, evaluator] + ([infra] if infra else []) + [pusher, tflite]

  if target is not None:
    requests = resources_lib.requests(config, [c.id for c in components], target)
    training_modes.check_trainer_request(config, requests.get('Trainer'))
    resources_lib.apply(components, requests, target)

  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name, pipeline_root=pipeline_root, components=components,
      enable_cache=enable_cache, metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [])


def _blessing_property(evaluator, name: str):
  """`evaluator.outputs['blessing'].future()[0].custom_property(name)`, with the placeholder's
  key left for each consumer to fill. OutputChannel.future() presets the key to
  `_<producer>.<output>`; TFX 1.16's KFP v2 compiler keeps a preset key and adds no input of
  that name when the consumer has the channel under its own key (Pusher: `model_blessing`),
  so the condition would read an artifact the task does not have. Both compilers fill an
  empty key with the consumer's input key (pipelines/kfp_spec.py checks the result)."""
  future = evaluator.outputs['blessing'].future()
  future.set_key(None)
  return future[0].custom_property(name)


# Nodes whose outputs depend on more than their inputs (the evaluator reads what is served).
NEVER_CACHED = ('PolyViTEvaluator',)


def never_cached(ir: pipeline_pb2.Pipeline) -> pipeline_pb2.Pipeline:
  """Turns caching off for NEVER_CACHED nodes of a compiled TFX IR (TFX has no per-node flag)."""
  for node in ir.nodes:
    if node.pipeline_node.node_info.id in NEVER_CACHED:
      node.pipeline_node.execution_options.caching_options.enable_cache = False
  return ir


def local_ir(pipeline: tfx.dsl.Pipeline) -> pipeline_pb2.Pipeline:
  """The IR LocalDagRunner runs: the compiled pipeline with NEVER_CACHED applied."""
  return never_cached(compiler.Compiler().compile(pipeline))
