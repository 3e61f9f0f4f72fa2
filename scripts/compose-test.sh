#!/usr/bin/env bash
# The compose cluster end to end, against a real Docker engine: builds the image
# (`make docker`, cached), brings deploy/docker-compose.yml up under a project name and
# host ports of its own, waits for three healthy members, checks that each node container
# holds only the CA certificate and its own pair, brings up the `monitoring` profile's
# Prometheus (deploy/monitoring) and checks through its HTTP API that it scrapes all
# three nodes (targets up), has evaluated every rule of the `sutra` group without error
# and sees sutra_raft_has_leader = 1 on each node, writes and reads through the
# `sutra` CLI from the host, kills the leader's container, checks that a new leader takes
# writes and that the killed node rejoins, runs one round of every fault scenario of
# `sutra drill --docker` (kill, pause and partition of the leader and of a follower,
# restart-all, rolling-restart), checks the cluster
# with deploy/health-check, takes a backup through the `backup` profile (a second run
# skips; the health check reads its latest.json), upgrades it node by node with
# deploy/rolling-upgrade under a
# drill's write load (`--scenario procedure`), then removes everything it created
# (containers, network, volumes, certificates; Prometheus's too), on failure too. The
# images are kept.
# Without a Docker engine it says so and exits 0. Used by cluster-tests t200.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "skipped: no Docker engine (no docker binary, or docker info failed)"
  exit 0
fi
if ! deploy/compose version >/dev/null 2>&1; then
  echo "skipped: no Docker engine with compose (neither docker compose nor docker-compose)"
  exit 0
fi

start=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }
elapsed() { since "$start"; }
log() { echo "[$(elapsed)] $*"; }

# Run from `cargo test`, the environment carries the test's CARGO_PKG_* and friends; the
# nested release build would see them as changed and rebuild (ring, ...) every time.
for v in $(compgen -e); do
  case $v in
  CARGO | CARGO_MANIFEST_* | CARGO_PKG_* | CARGO_CRATE_NAME | CARGO_BIN_* | \
    CARGO_PRIMARY_PACKAGE | CARGO_TARGET_TMPDIR | CARGO_RUSTC_CURRENT_DIR) unset "$v" ;;
  esac
done
target=${CARGO_TARGET_DIR:-target}
sutra_bin="$target/release/sutra"
project="sutra-t200-$$-$RANDOM"
# Free host ports picked now and fixed (read back with `compose port`): with 0 Docker
# would publish another port each time a container starts, and the drill's clients keep
# the ports they started with.
read -r SUTRA_PORT_1 SUTRA_PORT_2 SUTRA_PORT_3 SUTRA_PROMETHEUS_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
export SUTRA_PORT_1 SUTRA_PORT_2 SUTRA_PORT_3 SUTRA_PROMETHEUS_PORT SUTRA_BIND=127.0.0.1
certs=$(mktemp -d /tmp/sutra-compose-certs.XXXXXX)
backups=$(mktemp -d /tmp/sutra-compose-backups.XXXXXX)
export SUTRA_CERTS_DIR="$certs" SUTRA_BACKUP_HOST_DIR="$backups" SUTRA_IMAGE=${SUTRA_IMAGE:-sutra-node:dev}
export SUTRA_PROMETHEUS_IMAGE=${SUTRA_PROMETHEUS_IMAGE:-sutra-prometheus:dev}
compose() { deploy/compose -p "$project" -f deploy/docker-compose.yml "$@"; }
# With the `monitoring` profile's services too: ps, logs and down name them whichever
# Compose runs (a service under a profile is only part of the project with it).
monitoring() { compose --profile monitoring "$@"; }
# And the `backup` profile's one-shots, for ps, logs and down.
every_profile() { compose --profile monitoring --profile backup "$@"; }

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "--- failed (exit $rc); container state and node logs:"
    every_profile ps || true
    every_profile logs --no-color --tail 40 || true
  fi
  every_profile down -v --remove-orphans >/dev/null 2>&1 || true
  [ -z "${upgrade_image:-}" ] || docker rmi "$upgrade_image" >/dev/null 2>&1 || true
  rm -rf "$certs" "$backups"
  log "cleaned up project $project (exit $rc)"
}
trap cleanup EXIT

log "--- build the image (make docker)"
make -s docker

log "--- compose up ($project)"
compose up -d

port_of() { compose port "node$1" 50051 | sed 's/.*://'; }
endpoints_of() {
  local eps=() n
  for n in "$@"; do eps+=("127.0.0.1:$(port_of "$n")"); done
  (IFS=,; echo "${eps[*]}")
}
sutra() {
  "$sutra_bin" --ca "$certs/ca.pem" --cert "$certs/client-admin.pem" \
    --key "$certs/client-admin-key.pem" --timeout 5 "$@"
}
container_health() { docker inspect -f '{{.State.Health.Status}}' "$(compose ps -q "node$1")"; }
# Waits (bounded) until `sutra health` on these nodes shows every one SERVING with one
# leader among them, other than node $not_leader if set; prints the leader id.
not_leader=
wait_serving() {
  local deadline=$(($(date +%s) + $1)) eps out leader
  shift
  eps=$(endpoints_of "$@")
  while :; do
    if out=$(sutra --endpoints "$eps" health 2>&1) &&
      [ "$(grep -c ' SERVING ' <<<"$out")" -eq $# ]; then
      leader=$(grep -Eo 'leader [0-9]+' <<<"$out" | sort -u)
      if [ "$(wc -l <<<"$leader")" -eq 1 ] && [ "$leader" != "leader 0" ] &&
        [ "$leader" != "leader $not_leader" ]; then
        echo "${leader#leader }"
        return 0
      fi
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "not serving in time: $out" >&2
      return 1
    fi
    sleep 0.5
  done
}

log "--- wait for three healthy containers"
deadline=$(($(date +%s) + 120))
for n in 1 2 3; do
  until [ "$(container_health $n)" = healthy ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "node$n not healthy: $(container_health $n)"; exit 1; }
    sleep 1
  done
done
leader=$(wait_serving 30 1 2 3)
all=$(endpoints_of 1 2 3)
log "three healthy members, leader node $leader; from the host:"
sutra --endpoints "$all" cluster

log "--- each node container holds the CA certificate and its own pair, nothing more"
for n in 1 2 3; do
  held=$(compose exec -T "node$n" ls /etc/sutra/certs | sort | tr '\n' ' ')
  [ "$held" = "ca.pem node-$n-key.pem node-$n.pem " ] || { echo "node$n holds: $held"; exit 1; }
done
log "--- the image's own HEALTHCHECK (compose sets its interval) passes in every node"
probe=$(docker image inspect -f '{{index .Config.Healthcheck.Test 1}}' "${SUTRA_IMAGE:-sutra-node:dev}")
[ -n "$probe" ] || { echo "the image has no HEALTHCHECK"; exit 1; }
for n in 1 2 3; do
  compose exec -T "node$n" sh -c "$probe" || { echo "node$n: the image's HEALTHCHECK failed: $probe"; exit 1; }
done
compose exec -T node1 health-check | tail -n 1 | grep -q '^cluster OK: 3 of 3 nodes serving' ||
  { echo "health-check inside node1 (node certificate) did not say OK"; exit 1; }

log "--- the monitoring profile: Prometheus scrapes the nodes and evaluates the rules"
# Each node's monitoring listener is inside the compose network only.
for n in 1 2 3; do
  if published=$(compose port "node$n" 9100 2>/dev/null) && [ -n "${published#:}" ]; then
    echo "node$n publishes its monitoring listener on the host: $published"
    exit 1
  fi
done
monitoring up -d prometheus
prometheus_url="http://127.0.0.1:$(monitoring port prometheus 9090 | sed 's/.*://')"
# Polls the HTTP API (bounded) until the targets, the rules and a query all say what
# they should; else prints what Prometheus answered last and exits 1.
python3 - "$prometheus_url" 60 <<'PY'
import json, sys, time, urllib.parse, urllib.request

url, limit = sys.argv[1], float(sys.argv[2])
nodes = {"node1:9100", "node2:9100", "node3:9100"}

def get(path):
    with urllib.request.urlopen(url + path, timeout=5) as r:
        return json.load(r)["data"]

def problems():
    out = []
    targets = [t for t in get("/api/v1/targets")["activeTargets"]
               if t["labels"].get("job") == "sutra"]
    seen = {t["labels"]["instance"]: t for t in targets}
    if set(seen) != nodes:
        out.append(f"sutra targets are {sorted(seen)}, not {sorted(nodes)}")
    out += [f"target {i}: health {t['health']} ({t.get('lastError')!r})"
            for i, t in sorted(seen.items()) if t["health"] != "up"]
    groups = [g for g in get("/api/v1/rules")["groups"] if g["name"] == "sutra"]
    if not groups:
        out.append("no rule group named sutra loaded")
    for g in groups:
        if not g["rules"]:
            out.append("rule group sutra has no rules")
        for r in g["rules"]:
            last = r.get("lastEvaluation") or ""
            if r["health"] != "ok" or not last or last.startswith("0001-"):
                out.append(f"rule {r['name']}: health {r['health']!r}, lastEvaluation "
                           f"{last!r}, lastError {r.get('lastError')!r}")
    q = urllib.parse.quote("sutra_raft_has_leader")
    series = {s["metric"].get("instance"): s["value"][1]
              for s in get(f"/api/v1/query?query={q}")["result"]}
    if series != {n: "1" for n in nodes}:
        out.append(f"sutra_raft_has_leader is {series}, not 1 on each of {sorted(nodes)}")
    return out, len(groups[0]["rules"]) if groups else 0

deadline = time.monotonic() + limit
while True:
    try:
        found, rules = problems()
    except Exception as e:  # not up yet, or an answer without the expected fields
        found, rules = [f"{url}: {e!r}"], 0
    if not found:
        print(f"Prometheus at {url}: 3 sutra targets up, {rules} rules of group sutra "
              "evaluated (health ok), sutra_raft_has_leader = 1 on every node")
        sys.exit(0)
    if time.monotonic() >= deadline:
        print(f"Prometheus at {url} after {limit:.0f}s:", *found, sep="\n  ")
        sys.exit(1)
    time.sleep(1)
PY

log "--- write and read through the CLI"
sutra --endpoints "$all" put t200-a --content "before the kill"
sutra --endpoints "$all" get t200-a | grep -q "before the kill"

log "--- docker kill the leader (node$leader)"
docker kill "$(compose ps -q "node$leader")" >/dev/null
killed=$(date +%s.%N)
rest=()
for n in 1 2 3; do [ "$n" = "$leader" ] || rest+=("$n"); done
not_leader=$leader
new_leader=$(wait_serving 30 "${rest[@]}")
not_leader=
log "new leader node $new_leader, $(since "$killed") after the kill"
eps=$(endpoints_of "${rest[@]}")
sutra --endpoints "$eps" put t200-b --content "after the kill"
sutra --endpoints "$eps" get t200-b | grep -q "after the kill"
sutra --endpoints "$eps" get t200-a | grep -q "before the kill"

log "--- restart the killed node; it rejoins and catches up"
compose start "node$leader" >/dev/null
wait_serving 60 1 2 3 >/dev/null
# A stale read served by the restarted node itself shows it has applied the new write.
ep="127.0.0.1:$(port_of "$leader")"
deadline=$(($(date +%s) + 30))
until sutra --endpoints "$ep" get t200-b --consistency stale 2>/dev/null | grep -q "after the kill"; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "node$leader did not catch up"; exit 1; }
  sleep 0.5
done
log "node$leader is back and has the write made while it was down"

# One short round of each fault scenario through `sutra drill --docker` (DockerDriver), TLS
# files from --certs: it exits non-zero on a lost or duplicated write, a stale read or a
# round not recovered. --timeout 2: after pause-leader the drill reads every key through
# the resumed old leader alone, and a read it redirects to the new leader's compose host
# name (not resolvable on the host) waits out the whole per-call timeout.
for scenario in kill-leader partition-leader pause-leader kill-follower pause-follower \
  partition-follower restart-all rolling-restart; do
  log "--- sutra drill --docker $project --scenario $scenario"
  "$sutra_bin" --timeout 2 drill --docker "$project" --certs "$certs" --scenario "$scenario" \
    --rounds 1 --writers 2 --keys 8 --window 2
done

log "--- deploy/health-check from the host: OK, exit 0"
rc=0
out=$(SUTRA_BIN="$sutra_bin" SUTRA_ENDPOINTS="$all" SUTRA_CA="$certs/ca.pem" \
  SUTRA_CERT="$certs/client-reader.pem" SUTRA_KEY="$certs/client-reader-key.pem" \
  deploy/health-check) || rc=$?
echo "$out"
[ $rc -eq 0 ] && tail -n 1 <<<"$out" | grep -q '^cluster OK: 3 of 3 nodes serving' ||
  { echo "deploy/health-check: exit $rc"; exit 1; }

# The `backup` profile: deploy/backup in the image, with the admin pair from
# certs/backup, into a directory of the host; a second run with nothing written skips;
# the host's health check reads the directory's latest.json.
log "--- the backup profile: a verified backup, then unchanged, skipped"
backup_run() {
  compose --profile backup run --rm -T backup 2>/dev/null
}
rc=0
out=$(backup_run) || rc=$?
echo "$out"
[ $rc -eq 0 ] && grep -q '^backup OK: sutra-[0-9TZ]*-[0-9]*\.sutra-backup: index ' <<<"$out" ||
  { echo "backup profile: exit $rc"; exit 1; }
[ -f "$backups/latest.json" ] || { echo "no latest.json in $backups"; exit 1; }
rc=0
out=$(backup_run) || rc=$?
echo "$out"
[ $rc -eq 0 ] && grep -q '^backup unchanged, skipped: ' <<<"$out" ||
  { echo "backup profile, second run: exit $rc"; exit 1; }
rc=0
out=$(SUTRA_BIN="$sutra_bin" SUTRA_ENDPOINTS="$all" SUTRA_CA="$certs/ca.pem" \
  SUTRA_CERT="$certs/client-reader.pem" SUTRA_KEY="$certs/client-reader-key.pem" \
  SUTRA_BACKUP_DIR="$backups" deploy/health-check) || rc=$?
echo "$out"
[ $rc -eq 0 ] && grep -q '^backup OK: sutra-' <<<"$out" ||
  { echo "deploy/health-check with SUTRA_BACKUP_DIR: exit $rc"; exit 1; }

# The upgrade procedure under write load: `deploy/rolling-upgrade` recreates each
# container on another image tag (the same build; what is exercised is the procedure),
# while the drill writes and reads and then checks that no acknowledged write was lost
# or duplicated, histories are linearizable and the replicas converge.
upgrade_image="sutra-node:t200-upgrade-$$"
docker tag "$SUTRA_IMAGE" "$upgrade_image"
log "--- rolling upgrade to $upgrade_image under load (sutra drill --scenario procedure)"
"$sutra_bin" --timeout 2 drill --docker "$project" --certs "$certs" --scenario procedure \
  --procedure "deploy/rolling-upgrade --project $project --image $upgrade_image --timeout 60" \
  --rounds 1 --writers 2
for n in 1 2 3; do
  running=$(docker inspect -f '{{.Config.Image}}' "$(compose ps -q "node$n")")
  [ "$running" = "$upgrade_image" ] || { echo "node$n runs $running, not $upgrade_image"; exit 1; }
done
log "every node runs $upgrade_image"

log "--- compose down -v (with the monitoring and backup profiles)"
every_profile down -v --remove-orphans
log "passed"
