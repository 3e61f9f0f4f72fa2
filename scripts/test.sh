#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test of every crate.
# `make test` runs this; so does CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== build sutra-node and sutra (the cluster tests run them as real processes)"
cargo build -p sutra-node -p sutra-cli
echo "== the sutra-node image, when a Docker engine is present (t200 runs the compose cluster on it)"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  make docker
else
  echo "no Docker engine: the image is not built and t200 skips"
fi
echo "== tests"
# --all-features turns on the engine's failpoints, whose tests live in their own binary.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
else
  cargo test --workspace --all-features --no-fail-fast
fi
