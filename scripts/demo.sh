#!/usr/bin/env bash
# The README's main job. Until the TFX pipeline lands, the quickest real thing the package
# does: build the paper's 9-task PolyViT-B from its config and print its parameters by part.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/python -m polyvit_tf.tools.params --config=polyvit_tf/configs/paper.py:table2_b_adapt0
