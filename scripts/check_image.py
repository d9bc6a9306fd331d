r"""Checks a built pipeline image: non-root, imports, no compiler, and no copy of the CA bundle.

  python scripts/check_image.py --image=polyvit-tf:dev [--ca_bundle=/etc/ssl/certs/ca-certificates.crt]
      [--accelerator=cpu|gpu|tpu]

With --accelerator=gpu|tpu, scripts/accelerator_probe.py runs in the image: for gpu every CUDA
library TensorFlow loads must be there and load, and the CUDA runtime's and cuDNN's versions
must be the ones TensorFlow was built against; for tpu TensorFlow must be tensorflow-tpu.

The CA bundle is a build secret: it must appear in no layer of the image. Every layer of
`docker save` is scanned (a file deleted in a later layer still ships in an earlier one) for
a file with the bundle's bytes, and every certificate file for the body of any CA that this
machine adds to Debian's set (/usr/local/share/ca-certificates). Exit status 1 on a failure.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tarfile

_CERT_FILE_HINTS = ('.crt', '.pem', 'cert', 'ca-bundle')
_MAX_SCANNED_BYTES = 8 << 20  # certificate files are far smaller


def _docker(docker: str, *args: str) -> str:
  return subprocess.run([docker, *args], check=True, capture_output=True, text=True).stdout


def _pem_bodies(path: str) -> list[bytes]:
  """The first base64 line of every certificate in a PEM file (enough to recognise it)."""
  lines = open(path, 'rb').read().splitlines()
  return [lines[i + 1].strip() for i, line in enumerate(lines[:-1])
          if line.startswith(b'-----BEGIN CERTIFICATE')]


def scan_layers(image: str, docker: str, bundle: bytes, local_cas: list[bytes]) -> list[str]:
  """Paths (layer:file) in `image` that hold the bundle or one of the machine-only CAs."""
  digest = hashlib.sha256(bundle).hexdigest()
  found = []
  save = subprocess.Popen([docker, 'save', image], stdout=subprocess.PIPE)
  with tarfile.open(fileobj=save.stdout, mode='r|') as outer:
    for member in outer:
      if not (member.isfile() and member.name.endswith('layer.tar')) and not (
          member.isfile() and member.name.startswith('blobs/')):
        continue
      try:
        with tarfile.open(fileobj=outer.extractfile(member), mode='r|*') as layer:
          for entry in layer:
            if not entry.isfile() or entry.size > _MAX_SCANNED_BYTES:
              continue
            name = entry.name.lower()
            if entry.size != len(bundle) and not any(h in name for h in _CERT_FILE_HINTS):
              continue
            data = layer.extractfile(entry).read()
            if entry.size == len(bundle) and hashlib.sha256(data).hexdigest() == digest:
              found.append(f'{member.name}:{entry.name} (the bundle itself)')
            elif any(body in data for body in local_cas):
              found.append(f'{member.name}:{entry.name} (a machine-only CA)')
      except tarfile.ReadError:
        continue  # an OCI blob that is not a layer (config, manifest)
  if save.wait() != 0:
    raise RuntimeError(f'docker save {image} failed')
  return found


def accelerator_failures(accelerator: str, probe: dict) -> list[str]:
  """What is wrong with the accelerator runtime `probe` (accelerator_probe.py's JSON) found."""
  failures = []
  if probe.get('accelerator') != accelerator:
    failures.append(f'the image says accelerator {probe.get("accelerator")!r}, not {accelerator!r}')
  if accelerator == 'gpu':
    cuda = probe.get('cuda')
    if not cuda:
      return failures + ['no CUDA wheels (site-packages/nvidia) in the image']
    if cuda['missing'] or cuda['failed']:
      failures.append(f'CUDA libraries missing {cuda["missing"]}, not loading {cuda["failed"]}')
    built = str(probe['build'].get('cuda_version', ''))
    runtime = cuda.get('cuda_runtime_version', 0)
    if f'{runtime // 1000}.{runtime % 1000 // 10}' != built:
      failures.append(f'CUDA runtime {runtime}, TensorFlow built for CUDA {built}')
    cudnn = str(probe['build'].get('cudnn_version', ''))
    if str(cuda.get('cudnn_version', 0) // 1000) != cudnn.split('.')[0]:
      failures.append(f'cuDNN {cuda.get("cudnn_version")}, TensorFlow built for cuDNN {cudnn}')
  if accelerator == 'tpu' and 'tensorflow_tpu' not in probe.get('distribution', []):
    failures.append(f'TensorFlow is {probe.get("distribution")}, not tensorflow-tpu')
  return failures


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--image', required=True)
  parser.add_argument('--docker', default='docker')
  parser.add_argument('--ca_bundle', default='')
  parser.add_argument('--accelerator', default='cpu', choices=('cpu', 'gpu', 'tpu'))
  args = parser.parse_args()
  failures = []

  uid = _docker(args.docker, 'run', '--rm', args.image, 'id', '-u').strip()
  print(f'check: runs as uid {uid}')
  if uid == '0':
    failures.append('the image runs as root')
  imports = _docker(args.docker, 'run', '--rm', args.image, 'python', '-c',
                    'import polyvit_tf, pipelines, serving, pipelines.kfp_entrypoint, tfx, '
                    'tensorflow as tf; print(tf.__version__)').strip().splitlines()[-1]
  print(f'check: polyvit_tf, pipelines, serving import (TensorFlow {imports})')
  if args.accelerator != 'cpu':
    probe_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'accelerator_probe.py')
    with open(probe_script) as f:
      out = subprocess.run([args.docker, 'run', '--rm', '-i', args.image, 'python', '-'],
                           stdin=f, check=True, capture_output=True, text=True).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    print(f'check: accelerator runtime {json.dumps(probe, sort_keys=True)}')
    failures += accelerator_failures(args.accelerator, probe)
  compilers = _docker(args.docker, 'run', '--rm', args.image, 'sh', '-c',
                      'command -v gcc cc g++ c++ || true').split()
  print(f'check: compilers in the runtime image: {compilers or "none"}')
  if compilers:
    failures.append(f'compilers in the runtime image: {compilers}')
  size = int(_docker(args.docker, 'image', 'inspect', '-f', '{{.Size}}', args.image))
  print(f'check: image size {size / 2**30:.2f} GiB ({size} bytes)')

  if args.ca_bundle:
    bundle = open(args.ca_bundle, 'rb').read()
    local_cas = [b for p in sorted(glob.glob('/usr/local/share/ca-certificates/**/*.crt',
                                             recursive=True)) for b in _pem_bodies(p)]
    found = scan_layers(args.image, args.docker, bundle, local_cas)
    print(f'check: {args.ca_bundle} ({len(bundle)} bytes) and {len(local_cas)} machine-only '
          f'CAs in the image layers: {found or "none"}')
    if found:
      failures.append(f'the CA bundle leaked into the image: {found}')
  history = _docker(args.docker, 'history', '--no-trunc', '--format', '{{json .}}', args.image)
  if 'BEGIN CERTIFICATE' in history:
    failures.append('a certificate appears in the image history')
  print(json.dumps({'image': args.image, 'size_bytes': size, 'uid': uid,
                    'failures': failures}))
  return 1 if failures else 0


if __name__ == '__main__':
  sys.exit(main())
