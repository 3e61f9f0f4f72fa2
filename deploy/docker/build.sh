#!/usr/bin/env bash
# `make docker`: the registry-free base (cached), the release binaries built on the host,
# then `docker build` with only those binaries, deploy/health-check, deploy/backup and the Dockerfile as
# context; then the Prometheus image of the compose file's `monitoring` profile
# (Dockerfile.prometheus: Debian's prometheus package on the same base, its own file as
# the whole context, so docker's layer cache makes a repeat build instant).
#
#   SUTRA_IMAGE=sutra-node:dev                   the node image's tag (default)
#   SUTRA_PROMETHEUS_IMAGE=sutra-prometheus:dev  the Prometheus image's tag (default)
#   BASE=debian:bookworm-slim    build on a pulled base instead of sutra-base:<release>
set -euo pipefail
cd "$(dirname "$0")/../.."

image=${SUTRA_IMAGE:-sutra-node:dev}
prometheus_image=${SUTRA_PROMETHEUS_IMAGE:-sutra-prometheus:dev}
target=${CARGO_TARGET_DIR:-target}

if [ -z "${BASE:-}" ]; then
  BASE=$(deploy/docker/base.sh)
fi

cargo build --release -p sutra-node -p sutra-cli

context="$target/docker-context"
rm -rf "$context"
mkdir -p "$context"
cp deploy/docker/Dockerfile "$context/"
cp "$target/release/sutra-node" "$target/release/sutra" deploy/health-check deploy/backup "$context/"
strip "$context/sutra-node" "$context/sutra" 2>/dev/null || true

# Builds tag $1 from context $2; the image this tag named before is then untagged:
# remove it unless a container or another tag still uses it (docker then refuses,
# which is fine). Prints the size line.
build() {
  local tag=$1 dir=$2 previous current size
  previous=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  docker build -q --force-rm --build-arg "BASE=$BASE" -t "$tag" "$dir" >/dev/null
  current=$(docker image inspect -f '{{.Id}}' "$tag")
  if [ -n "$previous" ] && [ "$previous" != "$current" ] &&
    [ -z "$(docker image inspect -f '{{join .RepoTags ","}}' "$previous" 2>/dev/null)" ]; then
    docker rmi "$previous" >/dev/null 2>&1 || true
  fi
  size=$(docker image inspect -f '{{.Size}}' "$tag")
  echo "$tag built on $BASE: $((size / 1000000)) MB ($size bytes)"
}

build "$image" "$context"

prometheus_context="$target/docker-context-prometheus"
rm -rf "$prometheus_context"
mkdir -p "$prometheus_context"
cp deploy/docker/Dockerfile.prometheus "$prometheus_context/Dockerfile"
build "$prometheus_image" "$prometheus_context"
