#!/usr/bin/env bash
# The client API benchmarks: `sutra bench` against fresh local three-node TLS clusters
# (release build, loopback, data in a temporary directory removed afterwards), in both
# shapes:
#   - per-node: the field's standard benchmark shape (etcd's `benchmark` tool): client i
#     keeps one connection to node i mod 3, so two thirds of the writes reach a follower
#     and are relayed; new sequential keys;
#   - sdk: each client an SDK `Client` that follows the leader; overwrites of 1,000 keys
#     for puts, reads routed as their consistency allows.
# Cases (256-byte values): put with 1, 16 and 64 clients, LINEARIZABLE and STALE gets
# with 16 clients. Each run starts a fresh cluster and runs every case once; RUNS runs
# (default 3). Every case prints ops/s, latency percentiles and the nodes' CPU per
# operation; the summary gives the median run of each case.
#
#   scripts/bench-cluster.sh            # or: make bench-cluster
#   RUNS=5 scripts/bench-cluster.sh
#   SHAPES=per-node scripts/bench-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
shapes=${SHAPES:-"per-node sdk"}
. scripts/bench-lib.sh sutra-bench

# One case: "shape label" then the bench flags. Appends its JSON report to results.
case_() {
  local shape=$1 label=$2
  shift 2
  local keys=()
  [ "$shape" = per-node ] && [ "$1" = put ] && keys=(--new-keys --prefix "new-$label-$run/")
  echo "--- run $run: $shape, $label"
  "$sutra" --output json bench "$@" --connections "$shape" --value-size 256 "${keys[@]}" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); r["shape"], r["case"] = sys.argv[1], sys.argv[2]; print(json.dumps(r))' "$shape" "$label" |
    tee -a "$dir/results.jsonl" |
    bench_line
}

for run in $(seq 1 "$runs"); do
  SUTRA_NODE_BIN="$node" "$sutra" local start --dir "$dir/cluster" >/dev/null
  for shape in $shapes; do
    case_ "$shape" "put, 1 client" put --clients 1 --requests 3000
    case_ "$shape" "put, 16 clients" put --clients 16 --requests 20000
    case_ "$shape" "put, 64 clients" put --clients 64 --requests 40000
    case_ "$shape" "linearizable get, 16 clients" get --clients 16 --requests 40000 --keys 10000 --consistency linearizable
    case_ "$shape" "stale get, 16 clients" get --clients 16 --requests 100000 --keys 10000 --consistency stale
  done
  "$sutra" local stop --dir "$dir/cluster" >/dev/null
  rm -rf "$dir/cluster"
done

echo "=== median run of each case ($runs runs, a fresh cluster each)"
python3 - "$dir/results.jsonl" <<'EOF'
import json, sys
from collections import defaultdict
cases = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    cases[(r["shape"], r["case"])].append(r)
print(f'{"shape":<9} {"case":<30} {"ops/s":>8} {"p50 ms":>7} {"p99 ms":>7} {"cpu ms/op":>9}  {"ops/s of every run"}')
for (shape, case), rs in cases.items():
    rs.sort(key=lambda r: r["ops_per_sec"])
    m = rs[len(rs) // 2]
    cpu = m["server_cpu_ms_per_op"]
    every = ", ".join(f'{r["ops_per_sec"]:.0f}' for r in rs)
    print(f'{shape:<9} {case:<30} {m["ops_per_sec"]:>8.0f} {m["p50_ms"]:>7.2f} {m["p99_ms"]:>7.2f} {cpu if cpu is None else round(cpu, 3):>9}  {every}')
EOF
