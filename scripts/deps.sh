#!/usr/bin/env bash
# Installs the Debian packages the build needs, or says exactly what to install.
# Used by `make run` and `make test`; safe to run repeatedly.
set -euo pipefail

# libclang-dev: bindgen for the RocksDB bindings; librocksdb-dev: the Raft log store links
# the system RocksDB instead of compiling it (which takes ~45 minutes on 2 cores).
# prometheus: the tests check every node's /metrics with its `promtool check metrics` and
# the alert rules with `promtool test rules`. chromium: the status page is tested in a
# headless browser.
packages=(make pkg-config libclang-dev librocksdb-dev prometheus chromium)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
