#!/usr/bin/env bash
# Builds the Debian bookworm base image of the Dockerfile locally, without any image registry:
# debootstrap (minbase + Python 3.11 + CA certificates) from Debian's package mirror, then
# `docker import`. Idempotent: an existing image of that name is reused.
#   BASE_IMAGE     image name (default polyvit-tf-base:bookworm)
#   DEBIAN_MIRROR  package mirror (default http://deb.debian.org/debian)
#   DOCKER         docker client (default docker)
set -euo pipefail
BASE_IMAGE="${BASE_IMAGE:-polyvit-tf-base:bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKER="${DOCKER:-docker}"

if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "base image: reusing $BASE_IMAGE"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "debootstrap needs root" >&2; exit 1; }

work=$(mktemp -d /var/tmp/polyvit-base.XXXXXX)
cleanup() {
  # debootstrap mounts proc/sys inside the target while it works: unmount before deleting.
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | xargs -r umount -l || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
start=$(date +%s)
echo "base image: debootstrap bookworm from $DEBIAN_MIRROR into $work/rootfs"
# python3-venv brings ensurepip (the builder stage makes its virtualenv with it); passwd
# brings useradd for the non-root user; ca-certificates is Debian's public CA set.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
  bookworm "$work/rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -40 "$work/debootstrap.log" >&2; exit 1; }
# No package caches or lists in the image (the builder stage runs `apt-get update` itself).
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
  "$work"/rootfs/var/log/* "$work"/rootfs/tmp/*
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
  "$DEBIAN_MIRROR" "$DEBIAN_MIRROR" > "$work/rootfs/etc/apt/sources.list"
tar --numeric-owner --one-file-system -C "$work/rootfs" -c . | "$DOCKER" import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase bookworm ($DEBIAN_MIRROR)" - "$BASE_IMAGE" >/dev/null
echo "base image: built $BASE_IMAGE in $(( $(date +%s) - start )) s ($("$DOCKER" image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes)"
