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

# The edge app's environment (tests/export/test_litert_env.py): only ai-edge-litert and NumPy,
# no TensorFlow, in .venv-litert/ (installed here so that the tests never reach the index).
litert_env() {
  local env=.venv-litert req=polyvit_tf/edge/requirements.txt want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  local stamp="$env/.polyvit-requirements-sha256"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "install: creating $env (ai-edge-litert + numpy only) from $req"
  rm -rf "$env"
  "$PYTHON" -m venv "$env"
  "$env/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
}

RUNNER_REQ=tests/requirements.txt  # the test runner's plug-ins (pytest-xdist), with `test`
want=$(cat setup.cfg pyproject.toml constraints.txt "$RUNNER_REQ" | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/python" ]]; then
  echo "install: .venv is up to date"
  [[ ",$EXTRAS," == *",test,"* ]] && litert_env
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "install: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

echo "install: installing polyvit_tf and its pinned stack into $VENV (first run: several minutes)"
# --ignore-requires-python: tfx / ml-pipelines-sdk 1.16 declare python<3.11, yet every
# compiled piece they need ships cp311 wheels (see docs/stack.md).
runner=()
[[ ",$EXTRAS," == *",test,"* ]] && runner=(-r "$RUNNER_REQ")
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --ignore-requires-python -c constraints.txt -e ".[$EXTRAS]" "${runner[@]}"
"$VENV/bin/python" -m pip check
echo "$want" > "$STAMP"
[[ ",$EXTRAS," == *",test,"* ]] && litert_env
echo "install: done"
