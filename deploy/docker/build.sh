#!/usr/bin/env bash
# `make docker`: the registry-free base (cached), the release binaries built on the host,
# then `docker build` with only those binaries and the Dockerfile as context.
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

cargo build --release -p sutra-node -p sutra-client --bins

context="$target/docker-context"
rm -rf "$context"
mkdir -p "$context"
cp deploy/docker/Dockerfile "$context/"
cp "$target/release/sutra-node" "$target/release/sutra" "$context/"
strip "$context/sutra-node" "$context/sutra" 2>/dev/null || true

docker build -q --build-arg "BASE=$BASE" -t "$image" "$context" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image")
echo "$image built on $BASE: $((size / 1000000)) MB ($size bytes)"
