#!/usr/bin/env bash
# Adds an accelerator's runtime to the image's virtualenv (the Dockerfile's builder stage runs
# it after the pinned stack is installed):
#   install_accelerator.sh <venv> <constraints>      with ACCELERATOR=cpu|gpu|tpu
#   install_accelerator.sh --check <venv>            pip check, knowing the variant
#   cpu  nothing: TensorFlow's Linux wheel runs on the CPU as it is.
#   gpu  TensorFlow's own CUDA wheels, `tensorflow[and-cuda]==<the pinned TF>` (CUDA 12.3,
#        cuDNN 8.9, NCCL 2.19 as nvidia-* wheels; TF's RUNPATH finds them). The host brings
#        the NVIDIA driver (libcuda), as the Kubernetes device plugin / Vertex AI do.
#   tpu  `tensorflow-tpu==<the pinned TF>` in place of `tensorflow` (the same `tensorflow`
#        module, built for TPU), plus LIBTPU (default libtpu==2.16.0rc0, the version that
#        wheel requires) from LIBTPU_FIND_LINKS: PyPI has tensorflow-tpu 2.16.2 but not that
#        libtpu (Google serves it at https://storage.googleapis.com/libtpu-releases/index.html).
#        LIBTPU="" installs none: the TPU VM's libtpu.so is then named at run time by
#        TPU_LIBRARY_PATH.
set -euo pipefail

# pip check, allowing only what the variant implies: tensorflow-tpu provides the module
# `tensorflow` under another distribution name, so the stack's packages that require the
# distribution `tensorflow` are reported (and libtpu's absence when LIBTPU="").
check() {
  local venv="$1" accelerator report allowed unexpected
  accelerator=$(cat "$venv/ACCELERATOR" 2>/dev/null || echo cpu)
  if [[ "$accelerator" != tpu ]]; then
    "$venv/bin/pip" check
    return
  fi
  allowed='requires tensorflow, which is not installed\.$'
  grep -q . "$venv/LIBTPU" 2>/dev/null || allowed="$allowed|^tensorflow-tpu [^ ]+ requires libtpu, which is not installed\.$"
  report=$("$venv/bin/pip" --no-cache-dir check 2>&1 || true)
  unexpected=$(grep -v -E "$allowed|^No broken requirements|^WARNING: " <<<"$report" || true)
  if [[ -n "$unexpected" ]]; then
    echo "install_accelerator: pip check: $unexpected" >&2
    return 1
  fi
  echo "pip check: only the distribution name tensorflow-tpu stands in for is reported"
}

if [[ "${1:-}" == --check ]]; then
  check "$2"
  exit
fi
venv="$1"
constraints="$2"
pip=("$venv/bin/pip")
tf=$(sed -n 's/^tensorflow==//p' "$constraints")
[[ -n "$tf" ]] || { echo "install_accelerator: no tensorflow pin in $constraints" >&2; exit 1; }
echo "${ACCELERATOR:-cpu}" > "$venv/ACCELERATOR"

case "${ACCELERATOR:-cpu}" in
  cpu)
    ;;
  gpu)
    "${pip[@]}" install --ignore-requires-python -c "$constraints" "tensorflow[and-cuda]==$tf"
    check "$venv"
    ;;
  tpu)
    if [[ -n "${LIBTPU:-}" && -z "${LIBTPU_FIND_LINKS:-}" ]]; then
      echo "install_accelerator: ACCELERATOR=tpu needs LIBTPU_FIND_LINKS, an index serving" \
           "$LIBTPU (tensorflow-tpu==$tf requires it; PyPI does not have it; Google serves it" \
           "at https://storage.googleapis.com/libtpu-releases/index.html), or LIBTPU=\"\" to" \
           "give the TPU VM's libtpu.so at run time (TPU_LIBRARY_PATH)" >&2
      exit 2
    fi
    echo "${LIBTPU:-}" > "$venv/LIBTPU"
    "${pip[@]}" uninstall -y tensorflow
    "${pip[@]}" install --no-deps ${LIBTPU_FIND_LINKS:+--find-links "$LIBTPU_FIND_LINKS"} \
      "tensorflow-tpu==$tf" ${LIBTPU:+"$LIBTPU"}
    check "$venv"
    "$venv/bin/python" -c "import tensorflow as tf; assert tf.__version__ == '$tf', tf.__version__"
    ;;
  *)
    echo "install_accelerator: ACCELERATOR=${ACCELERATOR} is not one of cpu, gpu, tpu" >&2
    exit 2
    ;;
esac
