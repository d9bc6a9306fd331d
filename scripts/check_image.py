r"""Checks a built pipeline image: non-root, imports, no compiler, and no copy of the CA bundle.

  python scripts/check_image.py --image=polyvit-tf:dev [--ca_bundle=/etc/ssl/certs/ca-certificates.crt]

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


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--image', required=True)
  parser.add_argument('--docker', default='docker')
  parser.add_argument('--ca_bundle', default='')
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
