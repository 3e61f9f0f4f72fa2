#!/usr/bin/env bash
# The cost of the monitoring listener: put and get benchmarks on fresh local three-node
# TLS clusters without a monitoring listener (A) and with one on every node, scraped
# once a second (B), in turns A B B A A B … Each pair prints the ratios B / A of ops/s
# and of the nodes' CPU per operation.
# The machine swings from hour to hour: compare within one run, as ratios.
#
#   scripts/bench-metrics.sh            # 3 pairs
#   PAIRS=5 scripts/bench-metrics.sh
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${PAIRS:-3}
. scripts/bench-lib.sh sutra-bench-metrics

# One bench; prints "ops/s p99_ms server_cpu_ms_per_op".
bench() {
  "$sutra" --output json bench "$@" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["errors"] == 0, r; print(round(r["ops_per_sec"]), round(r["p99_ms"], 2), round(r["server_cpu_ms_per_op"], 4))'
}

# Runs the cases on a fresh cluster; with "on", every node has a monitoring listener
# that a loop scrapes once a second (bounded to 10 minutes).
cases() {
  local flags=() loop=
  [ "$1" = on ] && flags=(--metrics)
  SUTRA_NODE_BIN="$node" "$sutra" local start --dir "$dir/cluster" "${flags[@]}" >/dev/null
  if [ "$1" = on ]; then
    mapfile -t urls < <(python3 -c 'import json,sys; [print("http://" + n["metrics"] + "/metrics") for n in json.load(open(sys.argv[1]))["nodes"]]' "$SUTRA_CLUSTER_FILE")
    (
      for _ in $(seq 1 600); do
        [ -e "$dir/stop-scrapes" ] && break
        for u in "${urls[@]}"; do curl -sf -o /dev/null "$u"; done
        sleep 1
      done
    ) &
    loop=$!
  fi
  if ! put=$(bench put --clients 16 --requests 20000 --value-size 256) ||
    ! get=$(bench get --clients 16 --requests 50000 --keys 10000 --value-size 256 --consistency stale); then
    tail -n 20 "$dir"/cluster/*.log >&2
    exit 1
  fi
  if [ -n "$loop" ]; then
    touch "$dir/stop-scrapes"
    wait "$loop"
    rm -f "$dir/stop-scrapes"
  fi
  "$sutra" local stop --dir "$dir/cluster" >/dev/null
  rm -rf "$dir/cluster"
  echo "$put $get"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }

echo "commands: sutra bench put --clients 16 --requests 20000 --value-size 256"
echo "          sutra bench get --clients 16 --requests 50000 --keys 10000 --value-size 256 --consistency stale"
echo "A: no monitoring listener; B: sutra local start --metrics, each node scraped once a second"
for p in $(seq 1 "$pairs"); do
  # Odd pairs run A first, even pairs B first, so that what comes second (a disk still
  # busy with the previous cluster's files) weighs on both alike.
  if [ $((p % 2)) -eq 1 ]; then
    a=$(cases off)
    b=$(cases on)
  else
    b=$(cases on)
    a=$(cases off)
  fi
  read -r put_a p99_put_a cpu_put_a get_a p99_get_a cpu_get_a <<<"$a"
  read -r put_b p99_put_b cpu_put_b get_b p99_get_b cpu_get_b <<<"$b"
  echo "pair $p: put $put_a / $put_b ops/s (ratio $(ratio "$put_a" "$put_b"), p99 $p99_put_a / $p99_put_b ms," \
    "server CPU $cpu_put_a / $cpu_put_b ms/op, ratio $(ratio "$cpu_put_a" "$cpu_put_b"));" \
    "stale get $get_a / $get_b ops/s (ratio $(ratio "$get_a" "$get_b"), p99 $p99_get_a / $p99_get_b ms," \
    "server CPU $cpu_get_a / $cpu_get_b ms/op, ratio $(ratio "$cpu_get_a" "$cpu_get_b"))"
done
