# What the cluster bench scripts share; each sources it after `cd` to the checkout:
#   . scripts/bench-lib.sh NAME [TMPBASE]
# Installs the system packages, builds the release binaries ($node, $sutra), makes a
# temporary directory $dir (NAME.XXXXXX under TMPDIR, else TMPBASE, else /tmp) whose
# cluster, $dir/cluster, is stopped and removed on exit, and points SUTRA_CLUSTER_FILE
# at it.
scripts/deps.sh
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p sutra-node -p sutra-cli
node="$target/release/sutra-node"
sutra="$target/release/sutra"

dir=$(mktemp -d "${TMPDIR:-${2:-/tmp}}/$1.XXXXXX")
stop() {
  "$sutra" local stop --dir "$dir/cluster" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
export SUTRA_CLUSTER_FILE="$dir/cluster/cluster.json"

# Reads one `sutra --output json bench` report on stdin and prints its command, then
# ops/s, latency percentiles, errors and the nodes' CPU per operation.
bench_line() {
  python3 -c 'import json,sys; r=json.load(sys.stdin); cpu=r["server_cpu_ms_per_op"]; print(r["command"]); print("  ops/s %.0f  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.1f ms  errors %d  server cpu %s ms/op" % (r["ops_per_sec"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r["max_ms"], r["errors"], "-" if cpu is None else "%.3f" % cpu))'
}
