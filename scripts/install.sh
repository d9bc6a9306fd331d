#!/usr/bin/env bash
# Idempotent install: creates or reuses .venv/ at the repository root and installs this
# package (editable) with the test extras, pinned by constraints.txt so pip never
# backtracks. A stamp records the hash of the files that decide what is installed; when it
# matches, the script exits at once. EXTRAS (default `test`) picks the extras; `make bench`
# installs `test,bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv
EXTRAS="${EXTRAS:-test}"
STAMP="$VENV/.polyvit-install-stamp-${EXTRAS//,/-}"

want=$(cat setup.cfg pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/python" ]]; then
  echo "install: .venv is up to date"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "install: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

echo "install: installing polyvit_tf and its pinned stack into $VENV (first run: several minutes)"
# --ignore-requires-python: tfx / ml-pipelines-sdk 1.16 declare python<3.11, yet every
# compiled piece they need ships cp311 wheels (see docs/stack.md).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --ignore-requires-python -c constraints.txt -e ".[$EXTRAS]"
"$VENV/bin/python" -m pip check
echo "$want" > "$STAMP"
echo "install: done"
