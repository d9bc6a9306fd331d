# The image every Kubeflow pipeline component runs in: the pinned stack plus polyvit_tf.
#   make image        # the base image, this file, the checks (scripts/build_image.sh)
#   python -m pipelines.compile_kubeflow --config=... --image=<registry>/polyvit-tf:<tag> ...
#
# Build arguments (defaults build the CPU image on the locally built Debian base):
#   BASE_IMAGE   Debian bookworm with python3 + python3-venv (scripts/build_base_image.sh
#                builds polyvit-tf-base:bookworm with debootstrap; no registry needed)
#   EXTRAS       optional extras of setup.cfg to install besides the runtime ("" = none)
#   PIP_EXCLUDE  regex of constraints.txt pins that stay out (test-only packages)
#   ACCELERATOR  cpu (default) | gpu | tpu: what scripts/install_accelerator.sh adds to the
#                stack (docs/training.md "Images"): gpu = TensorFlow's own CUDA wheels
#                (tensorflow[and-cuda]); tpu = tensorflow-tpu in place of tensorflow, plus
#   LIBTPU       the libtpu requirement TF's TPU wheel pins (default libtpu==2.16.0rc0;
#                "" = none: the TPU VM's libtpu.so is given at run time, TPU_LIBRARY_PATH)
#   LIBTPU_FIND_LINKS  a pip --find-links index that serves LIBTPU (PyPI does not)
# Build secret `pip_ca` (optional): a CA bundle for pip to reach the package index
# (`--secret id=pip_ca,src=<bundle>`); it is mounted for the pip steps only and never
# written into a layer.
ARG BASE_IMAGE=polyvit-tf-base:bookworm

# ---- builder: compilers and headers, for the source-only packages (pyfarmhash) ----------
FROM ${BASE_IMAGE} AS builder
ARG EXTRAS=""
ARG PIP_EXCLUDE="torch|transformers|tokenizers|safetensors|huggingface_hub|hf-xet|sympy|mpmath|networkx|pytest|pluggy|iniconfig"
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential python3-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
WORKDIR /src

# Dependencies first, from the files that decide them only (cached while code and docs change;
# setup.cfg's long description, README.md, is a placeholder here).
COPY constraints.txt setup.cfg pyproject.toml ./
RUN grep -v -E "^(${PIP_EXCLUDE})==" constraints.txt > /tmp/constraints-runtime.txt \
 && mkdir -p polyvit_tf pipelines serving \
 && touch README.md polyvit_tf/__init__.py pipelines/__init__.py serving/__init__.py
# --ignore-requires-python: tfx / ml-pipelines-sdk 1.16 declare python<3.11 (docs/stack.md).
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && /opt/venv/bin/pip install --ignore-requires-python -c /tmp/constraints-runtime.txt \
      ".${EXTRAS:+[$EXTRAS]}" \
 && /opt/venv/bin/pip uninstall -y polyvit_tf \
 && /opt/venv/bin/pip check

# The accelerator's runtime, after the stack: every variant shares the layer above (the ARGs
# are declared here, so changing them misses the cache from here on only).
ARG ACCELERATOR=cpu
ARG LIBTPU="libtpu==2.16.0rc0"
ARG LIBTPU_FIND_LINKS=""
COPY scripts/install_accelerator.sh /tmp/
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && ACCELERATOR="$ACCELERATOR" LIBTPU="$LIBTPU" LIBTPU_FIND_LINKS="$LIBTPU_FIND_LINKS" \
    bash /tmp/install_accelerator.sh /opt/venv /tmp/constraints-runtime.txt

# ---- package: this repository as a wheel (a code change rebuilds only this and below) -----
FROM builder AS package
COPY README.md ./
COPY polyvit_tf ./polyvit_tf
COPY pipelines ./pipelines
COPY serving ./serving
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime: the base, the virtualenv, the wheel, a non-root user; no compiler ----------
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOME=/home/polyvit
RUN useradd --create-home --uid 1000 --user-group --shell /bin/bash polyvit
COPY --from=builder /opt/venv /opt/venv
RUN --mount=type=bind,from=package,source=/wheels,target=/wheels \
    --mount=type=bind,from=builder,source=/tmp/install_accelerator.sh,target=/tmp/install_accelerator.sh \
    /opt/venv/bin/pip install --no-deps --no-index --no-cache-dir /wheels/*.whl \
 && bash /tmp/install_accelerator.sh --check /opt/venv
USER 1000:1000
WORKDIR /home/polyvit
RUN python -c "import polyvit_tf.train, pipelines.pipeline, pipelines.kfp_entrypoint, serving.client"
ARG ACCELERATOR=cpu
LABEL org.polyvit.accelerator=${ACCELERATOR}
# Each component's command comes from the compiled spec
# (python -m pipelines.kfp_entrypoint --executor_class_path ... ; see docs/pipeline.md).
CMD ["python"]
