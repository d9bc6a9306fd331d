"""Builds the demo data sets.

    python -m polyvit_tf.data.demo [--out_dir=DIR] [--datasets=a,b] [--force]
"""

from __future__ import annotations

from typing import Sequence

from absl import app
from absl import flags

from polyvit_tf.data import records
from polyvit_tf.data import sources
from polyvit_tf.data.demo import builder as build

_OUT_DIR = flags.DEFINE_string('out_dir', None, 'Root directory of the demo data sets '
                               '(default: $POLYVIT_DEMO_DIR or ~/.cache/polyvit_tf/demo).')
_DATASETS = flags.DEFINE_list('datasets', [], f'Subset of {sorted(build.DATASETS)}; '
                              'empty = all.')
_FORCE = flags.DEFINE_bool('force', False, 'Rebuild even when a current copy exists.')


def main(argv: Sequence[str]) -> None:
  del argv
  root = sources.demo_root(_OUT_DIR.value or '')
  for name, directory in build.build_all(root, _DATASETS.value, force=_FORCE.value).items():
    info = records.read_info(directory)
    counts = {s: v['num_examples'] for s, v in sorted(info['splits'].items())}
    print(f'{name}: {info["modality"]}, {len(info["class_names"])} classes, {counts}, '
          f'{directory}, sha256 {build.fingerprint(directory)[:16]}')


if __name__ == '__main__':
  app.run(main)
