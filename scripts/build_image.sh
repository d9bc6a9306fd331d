#!/usr/bin/env bash
# `make image`: builds the pipeline image from the repository's Dockerfile, with no image
# registry: the Debian base is built locally first (scripts/build_base_image.sh; reused when
# present), pip reaches the package index with the CA bundle `pip config list` shows as
# `cert`, passed as a BuildKit secret (never written into a layer), and the result is checked
# (scripts/check_image.py: non-root user, the three packages import, no copy of the bundle).
#   IMAGE       tag to build (default polyvit-tf:dev)
#   ACCELERATOR cpu (default) | gpu | tpu: the Dockerfile's variant (scripts/install_accelerator.sh)
#   LIBTPU, LIBTPU_FIND_LINKS  tpu only: the libtpu requirement and the index serving it
#   BASE_IMAGE  base image (default polyvit-tf-base:bookworm)
#   PIP_CA      CA bundle for pip (default: pip's `cert` setting; none: pip's own)
#   DOCKER      docker client (default docker)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-polyvit-tf:dev}"
export BASE_IMAGE="${BASE_IMAGE:-polyvit-tf-base:bookworm}"
DOCKER="${DOCKER:-docker}"
PYTHON="${PYTHON:-python3}"

# BuildKit (needed for the build secret): `docker buildx build`, or a docker client older
# than 23 whose `docker build` still speaks BuildKit itself when DOCKER_BUILDKIT=1.
build_cmd=()
if "$DOCKER" buildx version >/dev/null 2>&1; then
  build_cmd=("$DOCKER" buildx build --load)
else
  for client in "$DOCKER" $(type -ap docker); do
    version=$("$client" version --format '{{.Client.Version}}' 2>/dev/null || true)
    if [[ -n "$version" && "${version%%.*}" -lt 23 ]]; then
      build_cmd=(env DOCKER_BUILDKIT=1 "$client" build)
      DOCKER="$client"
      break
    fi
  done
fi
if [[ ${#build_cmd[@]} == 0 ]]; then
  echo "image: no BuildKit-capable docker client (install docker-buildx)" >&2
  exit 1
fi
export DOCKER

bash scripts/build_base_image.sh

if [[ -z "${PIP_CA:-}" ]]; then
  PIP_CA=$("$PYTHON" -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.cert='\(.*\)'$/\1/p" | tail -1)
fi
secret=()
if [[ -n "$PIP_CA" ]]; then
  [[ -s "$PIP_CA" ]] || { echo "image: CA bundle $PIP_CA is missing" >&2; exit 1; }
  secret=(--secret "id=pip_ca,src=$PIP_CA")
  echo "image: pip CA bundle $PIP_CA (build secret)"
fi

ACCELERATOR="${ACCELERATOR:-cpu}"
build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "ACCELERATOR=$ACCELERATOR")
[[ -z "${LIBTPU+set}" ]] || build_args+=(--build-arg "LIBTPU=$LIBTPU")
[[ -z "${LIBTPU_FIND_LINKS:-}" ]] || build_args+=(--build-arg "LIBTPU_FIND_LINKS=$LIBTPU_FIND_LINKS")

start=$(date +%s)
log=/tmp/polyvit-image-build-$ACCELERATOR.log
echo "image: building $IMAGE, accelerator $ACCELERATOR (log: $log)"
set +e
"${build_cmd[@]}" --progress=plain "${secret[@]}" "${build_args[@]}" \
  -t "$IMAGE" . >"$log" 2>&1
status=$?
set -e
grep -E '^#[0-9]+ (\[|CACHED|ERROR)' "$log" | sed 's/^/  /' || true
if [[ $status != 0 ]]; then
  tail -30 "$log" >&2
  echo "image: build failed (full log: $log)" >&2
  exit "$status"
fi
echo "image: built $IMAGE in $(( $(date +%s) - start )) s"
# The checks scan every layer (minutes for ~4 GB): done once per image id.
id=$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE")
stamp="${TMPDIR:-/tmp}/polyvit-image-checks/${id#sha256:}.json"
if [[ -s "$stamp" ]]; then
  echo "image: $IMAGE ($id) was checked before: $(cat "$stamp")"
  exit 0
fi
mkdir -p "$(dirname "$stamp")"
"$PYTHON" scripts/check_image.py --image="$IMAGE" --docker="$DOCKER" --accelerator="$ACCELERATOR" \
  ${PIP_CA:+--ca_bundle="$PIP_CA"} \
  | tee "$stamp.tmp"
tail -1 "$stamp.tmp" > "$stamp" && rm -f "$stamp.tmp"
