# polyvit_tf: the two commands of a fresh machine are `make demo` and `make test`.
# Every target installs what it needs first (idempotent: a second run with nothing
# to do takes seconds) into .venv/ at the repository root.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-fast bench build-file clean-venv image image-gpu image-tpu rehearse-kubeflow

install:
	@PYTHON=$(PYTHON) bash scripts/install.sh

# The main job: the quickest real end-to-end run on built-in demo data.
demo: install
	@bash scripts/demo.sh

# The whole suite (CI runs exactly this, via .ci/run), on TEST_WORKERS processes (pytest-xdist;
# --dist loadfile keeps each file's module fixtures, e.g. one pipeline run, in one worker).
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# Fast subset: skips the integration tests marked `slow`.
test-fast: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow" tests

# Every benchmark of docs/performance.md (about 1.5 h on 2 cores; run it on an idle machine).
bench:
	@PYTHON=$(PYTHON) EXTRAS=test,bench bash scripts/install.sh
	bash benchmarks/run_all.sh

# The image every Kubeflow component runs in, from the Dockerfile, with no image registry:
# a Debian bookworm base by debootstrap (reused when present), pip's CA bundle as a build
# secret, then checks (non-root, imports, no compiler, no copy of the bundle). Idempotent.
IMAGE ?= polyvit-tf:dev
image:
	@IMAGE=$(IMAGE) PYTHON=$(PYTHON) bash scripts/build_image.sh

# The same Dockerfile for accelerators (build argument ACCELERATOR; docs/training.md "Images"):
# GPU = TensorFlow's own CUDA wheels (tensorflow[and-cuda]); TPU VM = tensorflow-tpu plus the
# libtpu it pins, which PyPI does not serve: give LIBTPU_FIND_LINKS=<an index that has it>, or
# LIBTPU= (empty) for an image that takes the TPU VM's libtpu.so at run time (TPU_LIBRARY_PATH).
IMAGE_GPU ?= polyvit-tf:dev-gpu
IMAGE_TPU ?= polyvit-tf:dev-tpu
image-gpu:
	@IMAGE=$(IMAGE_GPU) ACCELERATOR=gpu PYTHON=$(PYTHON) bash scripts/build_image.sh
image-tpu:
	@IMAGE=$(IMAGE_TPU) ACCELERATOR=tpu PYTHON=$(PYTHON) bash scripts/build_image.sh

# Compiles the demo's `small` pipeline for open-source KFP and executes that spec in the
# image with Docker as Kubeflow would (pipelines.rehearse_kubeflow). A second run reuses the
# cache and pushes nothing new. Needs the venv (`make install`); not part of `make test`.
# `small` trains a few steps, at chance: the default blessing refuses it, so the rehearsal
# configures a threshold of 0.01 per task to follow the model into Pusher and TFLiteExport.
REHEARSAL_ROOT ?= runs/rehearsal
REHEARSAL_CONFIG ?= polyvit_tf/configs/demo.py:small
# InfraValidator needs Kubernetes and the TF Serving image, which the rehearsal has not.
REHEARSAL_FLAGS ?= $(foreach t,digits digit_groups tones motion,--config.pipeline.thresholds.$(t)=0.01) \
  --config.pipeline.infra_validator.enabled=false
rehearse-kubeflow: image
	@mkdir -p $(REHEARSAL_ROOT)
	$(PY) -m pipelines.compile_kubeflow --config=$(REHEARSAL_CONFIG) $(REHEARSAL_FLAGS) --image=$(IMAGE) \
	  --pipeline_root=$(abspath $(REHEARSAL_ROOT))/pipeline_root \
	  --serving_dir=$(abspath $(REHEARSAL_ROOT))/serving --out=$(REHEARSAL_ROOT)/polyvit_kfp.yaml
	$(PY) -m pipelines.rehearse_kubeflow --spec=$(REHEARSAL_ROOT)/polyvit_kfp.yaml \
	  --root=$(REHEARSAL_ROOT) --docker

# BUILD is generated from the tree (tests/test_build_file.py checks it is fresh).
build-file:
	$(PYTHON) scripts/gen_build.py

clean-venv:
	rm -rf $(VENV)
