"""One prediction through the local gRPC server: the last step of the main job.

Writes the first eval example of a task as a media file a user could have (PNG/JPEG image,
WAV audio, a directory of JPEG frames), serves the pushed model with serving.local_server
(a stand-in for TF Serving on loopback) and classifies the file with serving.client.
"""

from __future__ import annotations

import os

import ml_collections

from polyvit_tf.configs import specs as specs_lib
from polyvit_tf.data import sources


def write_media_file(config: ml_collections.ConfigDict, task: str, out_dir: str
                     ) -> tuple[str, list[int]]:
  """(path, true labels) of the first eval example of `task`, written under `out_dir` as
  its modality writes media files (`write_media_file`)."""
  spec = specs_lib.resolve(config)
  data, modality = spec.data[task], spec.modality_of(task).impl
  source = sources.open_source(data, modality.name)
  _, raw = next(iter(source.epoch_records(data.split('eval'))))
  ex = source.parse(raw)
  labels = [int(l) for l in ex['labels'].numpy()]
  os.makedirs(out_dir, exist_ok=True)
  payload = {k: v.numpy() for k, v in ex.items() if k not in ('id', 'labels')}
  path = modality.write_media_file(payload, os.path.join(out_dir, f'{task}_eval_0'))
  return path, labels


def predict_one(config: ml_collections.ConfigDict, task: str, serving_dir: str,
                root: str) -> str:
  """Serves `serving_dir` on a free loopback port and classifies one eval file of `task`."""
  from serving import client as client_lib  # pylint: disable=g-import-not-at-top
  from serving import local_server  # pylint: disable=g-import-not-at-top
  path, labels = write_media_file(config, task, os.path.join(root, 'predict_inputs'))
  names = specs_lib.resolve(config).task(task).class_names
  with local_server.LocalServer(serving_dir, port=0) as server:
    address = f'127.0.0.1:{server.port}'
    client = client_lib.make_client(address)
    lines = client_lib.classify(client, task, [path])
  truth = ', '.join(names[l] for l in labels)
  return (f'prediction through the local gRPC server at {address} '
          f'(python -m serving.client --server={address} --task={task} {path}):\n  '
          + '\n  '.join(lines) + f'\n  (true label: {truth})')
