#!/usr/bin/env bash
# scripts/numa-vm.sh — build numamap's in-guest test program and run the QEMU multi-node
# scenarios directly (the same thing `ctest -L numa-vm` runs). See tests/numa-vm/README.md.
#
# Usage: scripts/numa-vm.sh [--build-dir DIR] [numa-vm.sh options] [SCENARIO...]
#   --build-dir DIR   where to configure and build (default build/numa-vm, Release, hwloc+libnuma)
#   SCENARIO          two-nodes, two-packages, tiny-node, odd-nodes (default: all four)
# Other options (--timeout SEC, --entries N, --cache DIR, --list) go to tests/numa-vm/numa-vm.sh.
# Needs: cmake, a C++17 compiler, libhwloc-dev, libnuma-dev, qemu-system-x86, busybox-static,
# cpio, and apt (to fetch Debian's cloud kernel) or NUMAMAP_VM_KERNEL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build="build/numa-vm"
pass=()
scenarios=()
while (($#)); do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --timeout | --entries | --cache) pass+=("$1" "$2"); shift 2 ;;
    --list) exec tests/numa-vm/numa-vm.sh --list ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "numa-vm: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) scenarios+=("$1"); shift ;;
  esac
done
((${#scenarios[@]})) || scenarios=(all)

generator=()
[ -f "$build/CMakeCache.txt" ] || ! command -v ninja >/dev/null || generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DNUMAMAP_WITH_HWLOC=ON -DNUMAMAP_WITH_LIBNUMA=ON \
  -DNUMAMAP_BUILD_BENCHMARKS=OFF -DNUMAMAP_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target numa_vm_guest
guest="$build/tests/numa-vm/numa_vm_guest"
[ -x "$guest" ] || {
  echo "numa-vm: FAIL: $guest was not built (hwloc or libnuma missing? see cmake's output)" >&2
  exit 1
}
exec tests/numa-vm/numa-vm.sh --guest "$guest" --work "$build/tests/numa-vm/work" \
  "${pass[@]}" "${scenarios[@]}"
