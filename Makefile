# polyvit_tf: the two commands of a fresh machine are `make demo` and `make test`.
# Every target installs what it needs first (idempotent: a second run with nothing
# to do takes seconds) into .venv/ at the repository root.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-fast clean-venv

install:
	@PYTHON=$(PYTHON) bash scripts/install.sh

# The main job: the quickest real end-to-end run on built-in demo data.
demo: install
	@bash scripts/demo.sh

# The whole suite (CI runs exactly this, via .ci/run).
test: install
	$(PY) -m pytest -q tests

# Fast subset: skips the integration tests marked `slow`.
test-fast: install
	$(PY) -m pytest -q -m "not slow" tests

clean-venv:
	rm -rf $(VENV)
