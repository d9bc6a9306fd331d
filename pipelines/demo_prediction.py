"""One prediction through the local gRPC server: the last step of the main job.

Writes the first eval example of a task as a media file a user could have (PNG/JPEG image,
WAV audio, a directory of JPEG frames), serves the pushed model with serving.local_server
(a stand-in for TF Serving on loopback) and classifies the file with serving.client.
"""

from __future__ import annotations

import os
import wave

import ml_collections
import numpy as np

from polyvit_tf.data import sources


def write_media_file(config: ml_collections.ConfigDict, task: str, out_dir: str
                     ) -> tuple[str, list[int]]:
  """(path, true labels) of the first eval example of `task`, written under `out_dir`."""
  source = sources.for_task(config, task)
  split = sources.split_name(config, task, 'eval')
  _, raw = next(iter(source.epoch_records(split)))
  ex = source.parse(raw)
  labels = [int(l) for l in ex['labels'].numpy()]
  os.makedirs(out_dir, exist_ok=True)
  stem = os.path.join(out_dir, f'{task}_eval_0')
  if source.modality == 'image':
    data = ex['image'].numpy()
    path = stem + ('.png' if data.startswith(b'\x89PNG') else '.jpg')
    with open(path, 'wb') as f:
      f.write(data)
  elif source.modality == 'audio':
    path = stem + '.wav'
    pcm = np.clip(np.round(ex['waveform'].numpy() * 32768.0), -32768, 32767).astype('<i2')
    with wave.open(path, 'wb') as w:
      w.setnchannels(1)
      w.setsampwidth(2)
      w.setframerate(int(ex['sample_rate'].numpy()))
      w.writeframes(pcm.tobytes())
  else:
    path = stem + '_frames'
    os.makedirs(path, exist_ok=True)
    for i, frame in enumerate(ex['frames'].numpy()):
      with open(os.path.join(path, f'frame_{i:04d}.jpg'), 'wb') as f:
        f.write(frame)
  return path, labels


def predict_one(config: ml_collections.ConfigDict, task: str, serving_dir: str,
                root: str) -> str:
  """Serves `serving_dir` on a free loopback port and classifies one eval file of `task`."""
  from serving import client as client_lib  # pylint: disable=g-import-not-at-top
  from serving import local_server  # pylint: disable=g-import-not-at-top
  path, labels = write_media_file(config, task, os.path.join(root, 'predict_inputs'))
  names = list(config.tasks[task].class_names) or [f'class_{i}' for i in
                                                   range(config.tasks[task].num_classes)]
  with local_server.LocalServer(serving_dir, port=0) as server:
    address = f'127.0.0.1:{server.port}'
    client = client_lib.make_client(address)
    lines = client_lib.classify(client, task, [path])
  truth = ', '.join(names[l] for l in labels)
  return (f'prediction through the local gRPC server at {address} '
          f'(python -m serving.client --server={address} --task={task} {path}):\n  '
          + '\n  '.join(lines) + f'\n  (true label: {truth})')
