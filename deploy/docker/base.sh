#!/usr/bin/env bash
# Builds the `sutra-base:<release>` image without any container registry: a minimal
# Debian root file system made with debootstrap (the host's Debian release), with the
# runtime libraries the release binaries link (RocksDB and its compression libraries),
# stripped of docs, man pages and package caches, then `docker import`ed.
# Does nothing when the image exists already (`--force` rebuilds it).
#
#   deploy/docker/base.sh            # prints the image name it made or found
#   SUTRA_DEBIAN_MIRROR=URL ...      # mirror for debootstrap; default: the host's apt source
set -euo pipefail

release=${SUTRA_DEBIAN_RELEASE:-$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")}
image="sutra-base:$release"
# Runtime libraries only (no -dev packages, no compilers): librocksdb and what it pulls.
include=${SUTRA_BASE_PACKAGES:-librocksdb7.8,ca-certificates}

if [ "${1:-}" != "--force" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  else
    echo "debootstrap is missing: sudo apt-get install -y debootstrap" >&2
    exit 1
  fi
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "debootstrap needs root: run as root (or with sudo)" >&2
  exit 1
fi

# The host's own Debian mirror unless one is given (debootstrap's default otherwise).
mirror=${SUTRA_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '!/security/ {print $2; exit}')
fi
if [ -z "$mirror" ]; then
  mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '!/security/ {print $2; exit}')
fi

rootfs=$(mktemp -d /tmp/sutra-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap $release (minbase + $include) into $rootfs" >&2
debootstrap --variant=minbase --include="$include" "$release" "$rootfs" ${mirror:+"$mirror"} >&2

# Strip what a container never needs: docs, man pages, locales, apt lists and caches.
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian "$rootfs"/var/cache/apt/* \
  "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/* \
  "$rootfs"/tmp/*
# Keep them out of later apt-get installs in images built on this base too.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-sutra-nodoc" <<'CFG'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
CFG

tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  - "$image" >&2
echo "$image"
