# The image every Kubeflow pipeline component runs in: the pinned stack plus polyvit_tf.
#   docker build -t <registry>/polyvit-tf:<tag> .
#   python -m pipelines.compile_kubeflow --config=... --image=<registry>/polyvit-tf:<tag> --out=...
# (Docker has no engine on our development machines; this file is built by CI/CD elsewhere.)
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /opt/polyvit_tf

# Dependencies first (cached while only the code changes). torch/transformers are test
# extras and stay out of the image.
COPY constraints.txt setup.cfg pyproject.toml README.md ./
RUN grep -v -E '^(torch|transformers|tokenizers|safetensors|huggingface_hub|hf-xet|sympy|mpmath|networkx|pytest|pluggy|iniconfig)==' \
      constraints.txt > /tmp/constraints-runtime.txt \
 && mkdir -p polyvit_tf pipelines serving \
 && touch polyvit_tf/__init__.py pipelines/__init__.py serving/__init__.py \
 && pip install --ignore-requires-python -c /tmp/constraints-runtime.txt . \
 && pip uninstall -y polyvit_tf

COPY polyvit_tf ./polyvit_tf
COPY pipelines ./pipelines
COPY serving ./serving
RUN pip install --ignore-requires-python --no-deps -c /tmp/constraints-runtime.txt . \
 && python -c "import polyvit_tf.train, pipelines.pipeline, serving.client"

# TFX's Kubeflow V2 launcher sets the command of each component
# (python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor ...).
