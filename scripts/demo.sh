#!/usr/bin/env bash
# scripts/demo.sh — build and run numamap's demo on this machine.
#
# Usage: scripts/demo.sh [--no-install] [demo arguments: --keys N --seconds S --threads T]
#
# Installs the Debian packages the demo needs (only those missing; sudo when not root),
# configures the `release` preset (build/release), builds examples/demo.cpp and runs it: the
# topology as numamap sees it, where a map's shards and pages live, and a short read-mostly
# workload on all hardware threads against std::unordered_map + std::shared_mutex.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

install=1
if [[ ${1:-} == --no-install ]]; then
  install=0
  shift
fi

PACKAGES=(build-essential cmake ninja-build pkg-config libhwloc-dev hwloc libnuma-dev numactl)

if ((install)) && command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  if ((${#missing[@]})); then
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    echo "==> installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${missing[@]}"
  fi
fi

echo "==> configure (preset release, build/release)"
cmake --preset release >/dev/null
echo "==> build numamap_demo"
cmake --build --preset release --target numamap_demo
echo "==> run"
exec build/release/examples/numamap_demo "$@"
