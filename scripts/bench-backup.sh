#!/usr/bin/env bash
# The backup benchmarks: a fresh local three-node TLS cluster (release build, loopback,
# data in a temporary directory removed afterwards) loaded with CONCEPTS concepts of
# 768-dimension embeddings through `sutra import` (concepts/s), then:
#   - `sutra backup save` (MB/s, from a follower),
#   - `sutra backup verify` (MB/s: every checksum and the scratch store that
#     recomputes the content hash),
#   - `sutra-node restore` of one member (MB/s),
#   - put throughput (`sutra bench put`, 16 clients) alone and while backups run back
#     to back, in turns A B A B, and the ratio of each pair,
#   - the disk's sequential write rate (dd with fdatasync) for comparison.
# The machine swings from hour to hour: compare within one run, as ratios.
#
#   scripts/bench-backup.sh                      # 200000 concepts, 768 dimensions
#   CONCEPTS=20000 PAIRS=2 RATE=50000000 scripts/bench-backup.sh   # backups at 50 MB/s
set -euo pipefail
cd "$(dirname "$0")/.."
concepts=${CONCEPTS:-200000}
dim=768
pairs=${PAIRS:-3}
# --rate-limit of the backups that run during the put benchmark (bytes/s; 0: none).
rate_limit=${RATE:-0}
. scripts/bench-lib.sh sutra-bench-backup /var/tmp
# The local cluster's vector dimension is the default, 768.
SUTRA_NODE_BIN="$node" "$sutra" local start --dir "$dir/cluster" >/dev/null

now() { date +%s.%N; }
rate() { awk -v b="$1" -v a="$2" -v z="$3" 'BEGIN { printf "%.1f", b / 1e6 / (z - a) }'; }

echo "=== disk: 1 GiB sequential write with fdatasync"
dd if=/dev/zero of="$dir/dd" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1
rm -f "$dir/dd"

echo "=== import: $concepts concepts with $dim-dimension embeddings"
python3 - "$concepts" "$dim" >"$dir/data.jsonl" <<'EOF'
import json, random, sys
n, dim = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(7)
out = sys.stdout
for i in range(n):
    emb = [round(rnd.uniform(-1, 1), 3) for _ in range(dim)]
    out.write(json.dumps({"type": "concept", "id": f"bench/{i:07d}",
                          "content": f"concept {i}", "embedding": emb}) + "\n")
EOF
echo "command: sutra import $dir/data.jsonl --parallel 4"
"$sutra" --timeout 60 --output json import "$dir/data.jsonl" --parallel 4

echo "=== backup save"
echo "command: sutra backup save FILE"
"$sutra" --output json backup save "$dir/b.sutra-backup"

echo "=== backup verify"
bytes=$(stat -c %s "$dir/b.sutra-backup")
a=$(now)
"$sutra" backup verify "$dir/b.sutra-backup"
z=$(now)
echo "verify: $bytes bytes, $(rate "$bytes" "$a" "$z") MB/s"

echo "=== restore (one member)"
a=$(now)
"$node" restore --backup "$dir/b.sutra-backup" --data-dir "$dir/restored" --node-id 1 \
  --initial-members 1=127.0.0.1:1/127.0.0.1:2 >/dev/null
z=$(now)
echo "restore: $bytes bytes, $(rate "$bytes" "$a" "$z") MB/s"
rm -rf "$dir/restored"

echo "=== put, 16 clients, alone (A) and during back-to-back backups (B, --rate-limit $rate_limit)"
put() {
  "$sutra" --output json bench put --clients 16 --requests 20000 --value-size 256 --prefix "bench-put-$1/" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["ops_per_sec"]))'
}
for p in $(seq 1 "$pairs"); do
  alone=$(put "a$p")
  (
    for _ in $(seq 1 50); do
      "$sutra" backup save --rate-limit "$rate_limit" "$dir/during.sutra-backup" >/dev/null 2>&1 || break
      [ -e "$dir/stop-backups" ] && break
    done
  ) &
  loop=$!
  during=$(put "b$p")
  touch "$dir/stop-backups"
  wait "$loop" || true
  rm -f "$dir/stop-backups" "$dir/during.sutra-backup"
  echo "pair $p: alone $alone ops/s, during backups $during ops/s, ratio $(awk -v a="$alone" -v b="$during" 'BEGIN { printf "%.2f", b / a }')"
done
