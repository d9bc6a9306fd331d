r"""Compiles the pipeline for Kubeflow Pipelines v2: open-source KFP (default) or Vertex AI.

  python -m pipelines.compile_kubeflow --config=polyvit_tf/configs/demo.py \
      --image=<registry>/polyvit-tf:<tag> \
      --pipeline_root=gs://<bucket>/polyvit/root --serving_dir=gs://<bucket>/polyvit/serving \
      --out=polyvit_kfp.yaml [--target=kfp|vertex]

--target=kfp writes the PipelineSpec as YAML, the file `kfp.Client().upload_pipeline(...)` and
`create_run_from_pipeline_package(...)` take, with `defaultPipelineRoot` = --pipeline_root.
--target=vertex writes the Vertex AI PipelineJob JSON (`runtimeConfig.gcsOutputDirectory` =
--pipeline_root) for `google.cloud.aiplatform.PipelineJob(template_path=...)`. Both use
schema 2.1.0 (parameters in `parameterValues`, which the open-source driver fills), hold no
resolver executor, run every component as `python -m pipelines.kfp_entrypoint` in --image
(built from the repository's Dockerfile) and never take PolyViTEvaluator from the cache. The
written spec is checked against the open-source backend's rules (pipelines/kfp_spec.py).

Per-node resources come from the config (`--config.pipeline.resources.Trainer.cpu=8
--config.pipeline.resources.Trainer.memory=32G
--config.pipeline.resources.Trainer.accelerator_type=NVIDIA_TESLA_T4
--config.pipeline.resources.Trainer.accelerator_count=1`; pipelines/resources.py), the
Trainer's place from `--config.pipeline.training=in_pod|vertex` (pipelines/training_modes.py),
and the kfp target includes InfraValidator before Pusher (pipelines/components/infra_validator.py;
`--config.pipeline.infra_validator.enabled=false` leaves it out).
"""

from __future__ import annotations

import json
import os

import yaml
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
from tfx import v1 as tfx

from pipelines import kfp_entrypoint
from pipelines import kfp_spec
from pipelines import layout
from pipelines import pipeline as pipeline_lib
from pipelines import resources as resources_lib
from pipelines import training_modes
from pipelines.components import infra_validator

TARGETS = ('kfp', 'vertex')
ENTRYPOINT = ('python', '-m', 'pipelines.kfp_entrypoint')
# Schemes TensorFlow (tf.io.gfile: TFX's file I/O) writes to and the KFP launcher accepts as
# a pipeline root; minio:// (open-source KFP's default) is not one TensorFlow knows.
_CLUSTER_SCHEMES = {'kfp': ('gs://', 's3://'), 'vertex': ('gs://',)}
_SUFFIXES = {'kfp': ('.yaml', '.yml'), 'vertex': ('.json',)}


class SpecError(ValueError):
  """The arguments or the compiled spec would not run on the target."""


def check_locations(target: str, pipeline_root: str, serving_dir: str) -> list[str]:
  """Raises SpecError for locations that cannot work on `target`; returns warnings."""
  if target not in TARGETS:
    raise SpecError(f'--target must be one of {TARGETS}, got {target!r}')
  warnings = []
  for flag, uri in (('--pipeline_root', pipeline_root), ('--serving_dir', serving_dir)):
    if not uri:
      raise SpecError(f'{flag} is required for target {target} (there is no default)')
    if uri.startswith(_CLUSTER_SCHEMES[target]):
      continue
    if uri.startswith('minio://'):
      raise SpecError(f'{flag}={uri}: TensorFlow cannot write minio:// URIs; give MinIO as '
                      's3://<bucket>/... (S3 API) instead')
    if target == 'kfp' and os.path.isabs(uri) and '://' not in uri:
      warnings.append(f'{flag}={uri} is a local path: only for the rehearsal '
                      '(pipelines.rehearse_kubeflow) or a volume mounted at that path in every '
                      'component')
      continue
    raise SpecError(f'{flag}={uri}: target {target} needs one of '
                    f'{_CLUSTER_SCHEMES[target]}' + (' or an absolute path' if target == 'kfp'
                                                     else ''))
  return warnings


def compile_documents(config, image: str, pipeline_root: str, serving_dir: str,
                      target: str = 'kfp') -> tuple[dict, dict | None]:
  """The PipelineSpec (kfp) or PipelineJob (vertex) of `config`'s pipeline, and for kfp the
  Kubernetes PlatformSpec of its node selectors (None when no node has one)."""
  for warning in check_locations(target, pipeline_root, serving_dir):
    logging.warning('compile_kubeflow: %s', warning)
  if not image:
    raise SpecError('--image is required')
  try:
    if training_modes.mode(config) == 'vertex' and not pipeline_root.startswith('gs://'):
      raise SpecError(f"--pipeline_root={pipeline_root}: training='vertex' needs a gs:// "
                      'root (the CustomJob reads the examples and writes the model there)')
    pipeline = pipeline_lib.create_pipeline(
        config, pipeline_name=layout.PIPELINE_NAME, pipeline_root=pipeline_root,
        serving_dir=serving_dir, target=target, image=image)
    requests = resources_lib.requests(config, [c.id for c in pipeline.components], target)
  except (resources_lib.ResourceError, training_modes.TrainingModeError,
          infra_validator.InfraValidatorError) as e:
    raise SpecError(str(e)) from e
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=image, default_commands=list(ENTRYPOINT),
          use_pipeline_spec_2_1=True))
  job = runner.run(pipeline, write_out=False)
  spec = job['pipelineSpec']
  for name in pipeline_lib.NEVER_CACHED:
    spec['root']['dag']['tasks'][name].pop('cachingOptions', None)
  problems = kfp_spec.backend_problems(spec)
  if problems:
    raise SpecError('the compiled spec would not run on Kubeflow Pipelines:\n  '
                    + '\n  '.join(problems))
  if target == 'kfp':
    spec['defaultPipelineRoot'] = pipeline_root
    return spec, resources_lib.platform_spec(spec, requests, target)
  return job, None


def compile_spec(config, image: str, pipeline_root: str, serving_dir: str,
                 target: str = 'kfp') -> dict:
  """The PipelineSpec (kfp) or PipelineJob (vertex) of `config`'s pipeline, as a dict."""
  return compile_documents(config, image, pipeline_root, serving_dir, target)[0]


def compile_pipeline(config, image: str, out: str, pipeline_root: str, serving_dir: str,
                     target: str = 'kfp') -> str:
  """Writes the spec of `config`'s pipeline for `target` to `out`; returns `out`. For kfp a
  second YAML document holds the Kubernetes platform spec when a node has a node selector
  (kfp.Client reads both)."""
  if target in _SUFFIXES and not out.endswith(_SUFFIXES[target]):
    raise SpecError(f'--out={out}: target {target} writes a {" / ".join(_SUFFIXES[target])} '
                    'file' + (' (kfp.Client reads YAML only)' if target == 'kfp' else ''))
  spec, platform = compile_documents(config, image, pipeline_root, serving_dir, target)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, 'w') as f:
    if target == 'kfp':
      f.write(f'# PIPELINE DEFINITION\n# Name: {layout.PIPELINE_NAME}\n'
              f'# polyvit_tf, compiled by pipelines.compile_kubeflow (target kfp)\n')
      yaml.safe_dump(spec, f, sort_keys=True)
      if platform is not None:
        f.write('---\n')
        yaml.safe_dump(platform, f, sort_keys=True)
    else:
      json.dump(spec, f, sort_keys=True, indent=1)
  return out


def _define_flags() -> None:
  """Flags are defined only when run as a program, so importing this module (tests, other
  tools) defines none."""
  config_flags.DEFINE_config_file('config', None, 'PolyViT config file[:arg].',
                                  lock_config=False)
  flags.DEFINE_string('image', None, 'Container image every component runs in.')
  flags.DEFINE_enum('target', 'kfp', list(TARGETS),
                    'kfp: open-source Kubeflow Pipelines (YAML PipelineSpec); vertex: Vertex '
                    'AI Pipelines (PipelineJob JSON).')
  flags.DEFINE_string('out', None, 'Where to write the spec (default polyvit_kfp.yaml / '
                      'polyvit_vertex.json).')
  flags.DEFINE_string('pipeline_root', None, 'Artifact root on the cluster (required).')
  flags.DEFINE_string('serving_dir', None,
                      'Where Pusher pushes blessed models (TF Serving base path; required).')


def main(argv):
  del argv
  f = flags.FLAGS
  if f.config is None or not f.image:
    raise app.UsageError('--config and --image are required.')
  out = f.out or ('polyvit_kfp.yaml' if f.target == 'kfp' else 'polyvit_vertex.json')
  try:
    path = compile_pipeline(f.config, f.image, out, f.pipeline_root or '',
                            f.serving_dir or '', f.target)
  except SpecError as e:
    raise app.UsageError(str(e)) from e
  print(f'wrote {path} (target {f.target}, schema {kfp_spec.SCHEMA_VERSION}, '
        f'entrypoint {kfp_entrypoint.__name__})')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
