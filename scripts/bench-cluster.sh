#!/usr/bin/env bash
# The client API benchmarks: `sutra bench` against a fresh local three-node TLS cluster
# (release build, loopback, data in a temporary directory removed afterwards).
#
# Each case runs RUNS times (default 3); quote the median run. Cases follow the client
# API targets (256-byte concepts): put with 64 clients and with 1 client, LINEARIZABLE
# and STALE gets with 16 clients.
#
#   scripts/bench-cluster.sh            # or: make bench-cluster
#   RUNS=5 scripts/bench-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

runs=${RUNS:-3}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p sutra-node -p sutra-cli
node="$target/release/sutra-node"
sutra="$target/release/sutra"

dir=$(mktemp -d "${TMPDIR:-/tmp}/sutra-bench.XXXXXX")
stop() {
  "$sutra" local stop --dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
SUTRA_NODE_BIN="$node" "$sutra" local start --dir "$dir" >/dev/null 2>&1
export SUTRA_CLUSTER_FILE="$dir/cluster.json"

bench() {
  for i in $(seq 1 "$runs"); do
    echo "--- run $i/$runs"
    "$sutra" bench "$@"
  done
}

echo "=== put, 64 clients"
bench put --clients 64 --requests 40000 --value-size 256
echo "=== put, 1 client"
bench put --clients 1 --requests 3000 --value-size 256
echo "=== get LINEARIZABLE, 16 clients"
bench get --clients 16 --requests 60000 --keys 10000 --value-size 256 --consistency linearizable
echo "=== get STALE, 16 clients"
bench get --clients 16 --requests 100000 --keys 10000 --value-size 256 --consistency stale
