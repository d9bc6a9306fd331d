# polyvit_tf: the two commands of a fresh machine are `make demo` and `make test`.
# Every target installs what it needs first (idempotent: a second run with nothing
# to do takes seconds) into .venv/ at the repository root.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-fast bench build-file clean-venv

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

# Every benchmark of docs/performance.md (about 1.5 h on 2 cores; run it on an idle machine).
bench:
	@PYTHON=$(PYTHON) EXTRAS=test,bench bash scripts/install.sh
	bash benchmarks/run_all.sh

# BUILD is generated from the tree (tests/test_build_file.py checks it is fresh).
build-file:
	$(PYTHON) scripts/gen_build.py

clean-venv:
	rm -rf $(VENV)
