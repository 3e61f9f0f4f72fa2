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

duration=${DURATION:-600}
rounds=${ROUNDS:-20}
parts=${PARTS:-"stability failover"}
. scripts/bench-lib.sh sutra-bench-failover
export SUTRA_NODE_BIN="$node"

echo "timers: heartbeat ${SUTRA_HEARTBEAT_MS:-default} ms, election timeout" \
  "${SUTRA_ELECTION_TIMEOUT_MIN_MS:-default} / ${SUTRA_ELECTION_TIMEOUT_MAX_MS:-default} ms (min / max)"

stability() {
  echo "=== stability: ${duration} s of full load without faults"
  "$sutra" local start --dir "$dir/cluster" >/dev/null
  "$sutra" --output json health >"$dir/before.json"
  # Requests far beyond what the time allows: --duration ends both loads.
  "$sutra" --output json bench put --clients 64 --connections per-node --new-keys \
    --requests 100000000 --duration "$duration" --value-size 256 >"$dir/put.json" &
  local put=$!
  "$sutra" --output json bench get --clients 16 --connections per-node --consistency linearizable \
    --requests 100000000 --duration "$duration" --keys 1000 --value-size 256 >"$dir/get.json" &
  local get=$!
  wait "$put"
  wait "$get"
  "$sutra" --output json health >"$dir/after.json"
  bench_line <"$dir/put.json"
  bench_line <"$dir/get.json"
  # A node's term rises with every election it takes part in, won or lost.
  python3 - "$dir/before.json" "$dir/after.json" <<'EOF'
import json, sys
before, after = ({n["node_id"]: n for n in json.load(open(f))} for f in sys.argv[1:])
for id, n in sorted(after.items()):
    b = before[id]
    print("  node %d: term %d -> %d, leader %d -> %d" % (id, b["term"], n["term"], b["leader_id"], n["leader_id"]))
print("  elections during the load: %d" % max(n["term"] - before[id]["term"] for id, n in after.items()))
EOF
  "$sutra" local stop --dir "$dir/cluster" >/dev/null
  rm -rf "$dir/cluster"
}

failover() {
  echo "=== failover: kill -9 of the leader under load, $rounds rounds"
  "$sutra" local start --dir "$dir/cluster" >/dev/null
  "$sutra" drill --scenario kill-leader --rounds "$rounds" --writers 4
  "$sutra" local stop --dir "$dir/cluster" >/dev/null
  rm -rf "$dir/cluster"
}

for part in $parts; do
  "$part"
done
