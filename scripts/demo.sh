#!/usr/bin/env bash
# The README's main job: the local TFX pipeline on the built-in demo data, end to end
# (demo data -> statistics and validation -> co-training -> evaluation and blessing -> push ->
# TFLite), then a prediction for one demo file through the local gRPC server.
# Extra arguments go to pipelines.run_local (e.g. --root=/tmp/demo, --verbose). The command
# line silences TensorFlow's start-up logging itself (polyvit_tf/quiet.py); setting
# TF_CPP_MIN_LOG_LEVEL here would override it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pipelines.run_local --config=polyvit_tf/configs/demo.py --root=runs/demo "$@"
