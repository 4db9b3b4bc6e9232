#!/usr/bin/env bash
# scripts/probe-sweep.sh — read100 at one thread across map sizes: numamap with its read probe
# chosen by size (the default), with the tag probe forced and with the slot-by-slot probe
# forced, against absl::flat_hash_map without a lock, in one run (decisions.md D33).
#
#   scripts/probe-sweep.sh            sizes 1K..10M, 3 reps of 0.25 s (about 4 minutes)
#   scripts/probe-sweep.sh --smoke    two small sizes, a token run (seconds)
# Options: --out DIR (default docs/img/probe-sweep; for --smoke BUILD_DIR/probe-sweep-smoke),
# --build-dir DIR (default build-bench-release, shared with scripts/bench.sh).
# Writes DIR/results.csv, DIR/meta.json, DIR/probe_sweep.png and DIR/probe_sweep.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-bench-release"
out=""
smoke=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --out) out=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "probe-sweep.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$out" ]]; then
  if [[ $smoke == 1 ]]; then out="$build/probe-sweep-smoke"; else out="$root/docs/img/probe-sweep"; fi
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DNUMAMAP_BUILD_BENCHMARKS=ON -DNUMAMAP_BUILD_TESTS=OFF -DNUMAMAP_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --parallel --target numamap_compare
compare=$(find "$build" -name numamap_compare -type f -perm -u+x | head -n 1)
[[ -n "$compare" ]] || { echo "probe-sweep.sh: numamap_compare was not built" >&2; exit 1; }

if [[ $smoke == 1 ]]; then
  grid=(--sizes 1K,4K --reps 1 --seconds 0.02)
else
  grid=(--sizes 1K,10K,30K,100K,300K,1M,3M,10M --reps 3 --seconds 0.25)
fi
mkdir -p "$out"
lscpu >"$out/lscpu.txt" 2>/dev/null || true
"$compare" --maps numamap,numamap_tags,numamap_slots,absl_flat_nolock --mixes read100 \
  --threads 1 "${grid[@]}" --out "$out"

python=/usr/bin/python3
[[ -x $python ]] || python=python3
"$python" "$root/bench/plot_sweep.py" "$out"
