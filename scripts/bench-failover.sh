#!/usr/bin/env bash
# Failover timing and timer stability on fresh local three-node TLS clusters (release
# build, loopback, data in a temporary directory removed afterwards):
#   1. stability: full load without faults for DURATION seconds (default 600): 64 put
#      clients in the standard shape (client i on node i mod 3, new keys) and 16
#      LINEARIZABLE get clients at once. Every node's term and leader are read before
#      and after; any election, even a lost one, raises a term. Prints the leader
#      changes (0 is the target) and the two loads' results.
#   2. failover: `sutra drill --scenario kill-leader` for ROUNDS rounds (default 20, 4
#      writers): kill -9 of the leader under load, RTO and time to a new leader.
# The node's timers come from its flags' defaults, or from SUTRA_HEARTBEAT_MS,
# SUTRA_ELECTION_TIMEOUT_MIN_MS and SUTRA_ELECTION_TIMEOUT_MAX_MS in the environment.
#
#   scripts/bench-failover.sh                 # or: make bench-failover
#   DURATION=60 ROUNDS=5 scripts/bench-failover.sh
#   PARTS=failover scripts/bench-failover.sh  # only the drill (or PARTS=stability)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

duration=${DURATION:-600}
rounds=${ROUNDS:-20}
parts=${PARTS:-"stability failover"}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p sutra-node -p sutra-cli
node="$target/release/sutra-node"
sutra="$target/release/sutra"
export SUTRA_NODE_BIN="$node"

dir=$(mktemp -d "${TMPDIR:-/tmp}/sutra-bench-failover.XXXXXX")
stop() {
  "$sutra" local stop --dir "$dir/cluster" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
export SUTRA_CLUSTER_FILE="$dir/cluster/cluster.json"

echo "timers: heartbeat ${SUTRA_HEARTBEAT_MS:-default} ms, election timeout" \
  "${SUTRA_ELECTION_TIMEOUT_MIN_MS:-default} / ${SUTRA_ELECTION_TIMEOUT_MAX_MS:-default} ms (min / max)"

# Every node's "node_id:term:leader", one line.
terms() {
  "$sutra" --output json health |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(" ".join("%s:%s:%s" % (n.get("node_id", "?"), n.get("term", "?"), n.get("leader_id", "?")) for n in r))'
}

summary() {
  python3 -c 'import json,sys; r=json.load(sys.stdin); print("  %s\n  ops/s %.0f  p50 %.2f ms  p99 %.2f ms  max %.1f ms  errors %d  server cpu %s ms/op" % (r["command"], r["ops_per_sec"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["errors"], "%.3f" % r["server_cpu_ms_per_op"] if r["server_cpu_ms_per_op"] is not None else "-"))'
}

stability() {
  echo "=== stability: ${duration} s of full load without faults"
  "$sutra" local start --dir "$dir/cluster" >/dev/null
  local before after
  before=$(terms)
  # Requests far beyond what the time allows: --duration ends both loads.
  "$sutra" --output json bench put --clients 64 --connections per-node --new-keys \
    --requests 100000000 --duration "$duration" --value-size 256 >"$dir/put.json" &
  local put=$!
  "$sutra" --output json bench get --clients 16 --connections per-node --consistency linearizable \
    --requests 100000000 --duration "$duration" --keys 1000 --value-size 256 >"$dir/get.json" &
  local get=$!
  wait "$put"
  wait "$get"
  after=$(terms)
  summary <"$dir/put.json"
  summary <"$dir/get.json"
  echo "  node:term:leader before: $before"
  echo "  node:term:leader after:  $after"
  python3 - "$before" "$after" <<'EOF'
import sys
before = {n.split(":")[0]: n.split(":")[1:] for n in sys.argv[1].split()}
after = {n.split(":")[0]: n.split(":")[1:] for n in sys.argv[2].split()}
elections = max(int(a[0]) - int(before[k][0]) for k, a in after.items())
leaders = {a[1] for a in after.values()} | {b[1] for b in before.values()}
print("  elections during the load: %d (term raised by up to %d), leaders seen: %s" % (elections, elections, ", ".join(sorted(leaders))))
EOF
  "$sutra" local stop --dir "$dir/cluster" >/dev/null
  rm -rf "$dir/cluster"
}

failover() {
  echo "=== failover: kill -9 of the leader under load, $rounds rounds"
  "$sutra" local start --dir "$dir/cluster" >/dev/null
  "$sutra" drill --scenario kill-leader --rounds "$rounds" --writers 4 --report "$dir/drill.json" |
    tail -n 12
  "$sutra" local stop --dir "$dir/cluster" >/dev/null
  rm -rf "$dir/cluster"
}

for part in $parts; do
  "$part"
done
