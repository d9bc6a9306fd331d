"""Built-in demo data sets: generated offline, deterministically, in seconds.

  digits        image, 10 classes: scikit-learn's bundled handwritten digits (real data,
                8x8 scans upsampled to 32x32), 1000 train / 100 validation / 300 test
  digit_groups  image, 3 classes (digit mod 3) on a disjoint pool of the same scans: the
                small task (150 train / 47 validation / 200 test)
  tones         audio, 6 classes of 1.6 s, 16 kHz synthetic sounds that differ only in
                time-frequency structure (rising / falling chirps, slow / fast amplitude
                modulation, two-tone trill, harmonic stack), equal loudness, random pitch,
                noise; 720 / 60 / 240
  motion        video, 4 classes: a blob moving right / left / down / up over 16 frames of
                40x40 (8 fps) with a static distractor and noise; a single frame cannot tell
                the class, temporal order can; 480 / 40 / 160

Build with `python -m polyvit_tf.data.demo --out_dir=DIR` or let a `demo:<name>`
source build it on first use (see builder.py).
"""

from polyvit_tf.data.demo.builder import DATASETS, build, build_all, ensure, fingerprint

__all__ = ['DATASETS', 'build', 'build_all', 'ensure', 'fingerprint']
