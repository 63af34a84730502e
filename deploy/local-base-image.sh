#!/usr/bin/env bash
# Build the Dockerfile's base image from Debian's packages, for machines that reach Debian's
# package archive but no container registry (CI here). A real user never needs this:
# `docker compose up --build` pulls the Dockerfile's default base (debian:bookworm-slim).
#
# The image made here is the same distribution as that default: Debian bookworm (minbase) with
# Debian's python3 3.11 and python3-venv (the packages the Dockerfile installs on debian:bookworm-slim,
# installed here already, so its apt step has nothing left to do), and ca-certificates.
#
#   deploy/local-base-image.sh [NAME]      # default NAME: dnsctl-base:bookworm
#   docker build --network host --build-arg BASE_IMAGE=NAME -t dnsctl:local .
#
# Needs root (debootstrap), debootstrap, and a reachable Docker daemon (DOCKER_HOST as usual).
# An image of that name already present in the daemon is kept (nothing is rebuilt).
set -euo pipefail

NAME="${1:-dnsctl-base:bookworm}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# What the Dockerfile installs on debian:bookworm-slim; pip comes with the venv (python3-venv).
PACKAGES=python3,python3-venv,ca-certificates

if docker image inspect "$NAME" >/dev/null 2>&1; then
  echo "local-base-image: $NAME already present in the daemon"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "local-base-image: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "local-base-image: debootstrap needs root" >&2; exit 1; }

ROOTFS="$(mktemp -d /tmp/dnsctl-base-rootfs.XXXXXX)"
# mktemp makes the folder 0700, and the tar below records it as the image's "/": the image's
# unprivileged user could then reach nothing ("dnsctl: executable file not found in $PATH").
chmod 755 "$ROOTFS"
cleanup() {
  # debootstrap mounts proc (and may bind /dev) inside the tree while it runs; a failed run can
  # leave them mounted: unmount them, then delete without ever crossing into another file system.
  for m in $(awk -v r="$ROOTFS" '$2 ~ "^"r"/" {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
  rm -rf --one-file-system "$ROOTFS" "$ROOTFS.log"
}
trap cleanup EXIT

start=$(date +%s)
echo "local-base-image: debootstrap --variant=minbase $SUITE from $MIRROR (+ $PACKAGES) ..."
# No cache outside this run: the .debs are downloaded into the tree and deleted with it, so a
# clean machine and this one take the same time.
debootstrap --variant=minbase --include="$PACKAGES" \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || { tail -n 30 "$ROOTFS.log" >&2; exit 1; }

# The base trusts what this machine trusts: certificate authorities added locally (a company
# proxy's, say) go into the image's store as they are in the host's, so pip inside a build
# reaches PyPI the way the host does. A registry's base image has Debian's store alone.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
  chroot "$ROOTFS" update-ca-certificates >/dev/null
fi

# Slim as debian:bookworm-slim is (debuerreotype's --slimify): no documentation but the copyright
# files, no manual pages, info pages or translations, now or from packages installed later.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/man/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
SLIM
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/* \
  "$ROOTFS"/usr/share/groff/* "$ROOTFS"/usr/share/linda/* "$ROOTFS"/usr/share/lintian/*

# The archive's package lists, caches and .debs are not part of an image (debian:*-slim ships
# none); the apt sources stay, so the Dockerfile's apt-get update works as on the registry's image.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/tmp/*

PYTHON_VERSION="$(chroot "$ROOTFS" python3 --version)"
tar --numeric-owner --one-file-system -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  --message "dnsctl local base: debootstrap --variant=minbase $SUITE + python3" \
  - "$NAME" >/dev/null
echo "local-base-image: $NAME built in $(( $(date +%s) - start ))s ($PYTHON_VERSION, $(( $(docker image inspect -f '{{.Size}}' "$NAME") / 1000000 )) MB)"
