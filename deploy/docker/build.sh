#!/usr/bin/env bash
# `make docker`: the registry-free base (cached), the release binaries built on the host,
# then `docker build` with only those binaries, deploy/health-check and the Dockerfile as
# context.
#
#   SUTRA_IMAGE=sutra-node:dev   the tag to build (default)
#   BASE=debian:bookworm-slim    build on a pulled base instead of sutra-base:<release>
set -euo pipefail
cd "$(dirname "$0")/../.."

image=${SUTRA_IMAGE:-sutra-node:dev}
target=${CARGO_TARGET_DIR:-target}

if [ -z "${BASE:-}" ]; then
  BASE=$(deploy/docker/base.sh)
fi

cargo build --release -p sutra-node -p sutra-cli

context="$target/docker-context"
rm -rf "$context"
mkdir -p "$context"
cp deploy/docker/Dockerfile "$context/"
cp "$target/release/sutra-node" "$target/release/sutra" deploy/health-check "$context/"
strip "$context/sutra-node" "$context/sutra" 2>/dev/null || true

previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
docker build -q --build-arg "BASE=$BASE" -t "$image" "$context" >/dev/null
# The image this tag named before is now untagged: remove it unless a container or
# another tag still uses it (docker then refuses, which is fine).
current=$(docker image inspect -f '{{.Id}}' "$image")
if [ -n "$previous" ] && [ "$previous" != "$current" ] &&
  [ -z "$(docker image inspect -f '{{join .RepoTags ","}}' "$previous" 2>/dev/null)" ]; then
  docker rmi "$previous" >/dev/null 2>&1 || true
fi
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "$image built on $BASE: $((size / 1000000)) MB ($size bytes)"
