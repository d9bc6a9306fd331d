r"""Compiles the pipeline to a Kubeflow Pipelines v2 spec (JSON).

  python -m pipelines.compile_kubeflow --config=polyvit_tf/configs/demo.py \
      --image=gcr.io/<project>/polyvit-tf:<tag> --out=polyvit_kubeflow.json \
      [--pipeline_root=gs://<bucket>/polyvit/root --serving_dir=gs://<bucket>/polyvit/serving]

Every component runs in --image (built from the repository's Dockerfile: the pinned stack and
this package). Submit the JSON with the KFP SDK or UI; ML Metadata is the cluster's.
"""

from __future__ import annotations

from absl import app
from absl import flags
from ml_collections import config_flags
from tfx import v1 as tfx

from pipelines import layout
from pipelines import pipeline as pipeline_lib


def compile_pipeline(config, image: str, out: str, pipeline_root: str,
                     serving_dir: str) -> str:
  """Writes the Kubeflow V2 spec of `config`'s pipeline to `out`; returns `out`."""
  pipeline = pipeline_lib.create_pipeline(
      config, pipeline_name=layout.PIPELINE_NAME, pipeline_root=pipeline_root,
      serving_dir=serving_dir)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
      output_filename=out)
  runner.run(pipeline, write_out=True)
  return out


def _define_flags() -> None:
  """Flags are defined only when run as a program, so importing this module (tests, other
  tools) defines none."""
  config_flags.DEFINE_config_file('config', None, 'PolyViT config file[:arg].',
                                  lock_config=False)
  flags.DEFINE_string('image', None, 'Container image every component runs in.')
  flags.DEFINE_string('out', 'polyvit_kubeflow.json', 'Where to write the spec.')
  flags.DEFINE_string('pipeline_root', 'gs://polyvit-tf/pipeline_root',
                      'Artifact root on the cluster (set yours).')
  flags.DEFINE_string('serving_dir', 'gs://polyvit-tf/serving',
                      'Where Pusher pushes blessed models (TF Serving base path).')


def main(argv):
  del argv
  if flags.FLAGS.config is None or not flags.FLAGS.image:
    raise app.UsageError('--config and --image are required.')
  path = compile_pipeline(flags.FLAGS.config, flags.FLAGS.image, flags.FLAGS.out, flags.FLAGS.pipeline_root,
                          flags.FLAGS.serving_dir)
  print(f'wrote {path}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
