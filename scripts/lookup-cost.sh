#!/usr/bin/env bash
# scripts/lookup-cost.sh — what one lookup costs in instructions, data reads and simulated
# cache misses, per map, counted by valgrind's callgrind instead of timed.
#
# On a shared, noisy machine one timed read100 run of numamap_compare can move by 2x and
# more (docs/benchmarks.md, "Noise"); the counts here do not move between runs, so they
# show what a change to the read path did when the timings cannot.
#
#   scripts/lookup-cost.sh                     read100, 100K keys, numamap and absl_flat_nolock
#   scripts/lookup-cost.sh --size 1K --maps numamap,tbb_chm,libcuckoo
# Options: --size N (1K, 100K, 10M, ...), --maps LIST, --mix MIX (a read mix: read100,
# read99, read95, read95_zipf), --build-dir DIR (default build-bench-release), --compare
# PATH (a numamap_compare already built: no build; CTest's bench-smoke run uses it).
# Needs valgrind (Debian: apt-get install valgrind). Takes about 10 s per map at 100K keys.
#
# Per map it runs numamap_compare on one thread under callgrind with its cache simulator
# (D1 32 KiB 8-way, LL 32 MiB 16-way, 64-byte lines) and its branch predictor simulator (2-bit
# counters indexed by the branch's address and the last few outcomes, as valgrind's manual
# describes it: older than a current core's, so its mispredictions are a relative measure,
# but a branch on the length of a probe is one no predictor can learn), and divides what was
# counted by the number of operations the run timed. Only the driver's timed loop is counted
# (callgrind collects inside bench/compare.cpp's timed_loop alone): the smoke test, whose
# loads go to maps of other sizes, the prefill and the warm-up are left out. The counts per
# operation include the driver's own share (its random number, the key's mixing, the loop;
# decisions.md D34), which all maps pay alike.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
size=100K
maps=numamap,absl_flat_nolock
mix=read100
build="$root/build-bench-release"
compare=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --maps) maps=$2; shift 2 ;;
    --mix) mix=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --compare) compare=$2; shift 2 ;;
    -h | --help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "lookup-cost.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || {
  echo "lookup-cost.sh: valgrind not found (Debian: apt-get install valgrind)" >&2
  exit 1
}

if [[ -z "$compare" ]]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DNUMAMAP_BUILD_BENCHMARKS=ON -DNUMAMAP_BUILD_TESTS=OFF -DNUMAMAP_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$build" --parallel --target numamap_compare >/dev/null
  compare=$(find "$build" -name numamap_compare -type f -perm -u+x | head -n 1)
  [[ -n "$compare" ]] || { echo "lookup-cost.sh: numamap_compare was not built" >&2; exit 1; }
fi
[[ -x "$compare" ]] || { echo "lookup-cost.sh: $compare is not an executable" >&2; exit 1; }

# numamap chooses its read probe by the L2 size the C library reports (decisions.md D33);
# under valgrind that is the simulated CPU's (256 KiB), not this machine's, and the counts
# would be of the probe a machine with that cache runs. Pass the size a native run uses:
# this machine's, or 1 MiB where it reports none (detail::l2_cache_bytes's fallback).
l2=$(getconf LEVEL2_CACHE_SIZE 2>/dev/null || echo 0)
[[ "$l2" =~ ^[0-9]+$ && "$l2" -gt 0 ]] || l2=1048576

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python=/usr/bin/python3
[[ -x $python ]] || python=python3

echo "| map | Ir / op | data reads / op | D1 read misses / op | LL read misses / op | cond. branches / op | mispredicted / op | ops counted |"
echo "|---|---|---|---|---|---|---|---|"
IFS=, read -r -a list <<<"$maps"
for m in "${list[@]}"; do
  # Time-based runs: under valgrind 0.3 s of wall time is a few million operations.
  # --fair-sched: valgrind runs one thread at a time; without it the driver's timer thread
  # can wait for seconds behind the worker.
  valgrind --tool=callgrind --fair-sched=yes --cache-sim=yes --branch-sim=yes \
    --D1=32768,8,64 --LL=33554432,16,64 \
    --collect-atstart=no --toggle-collect='*numamap::bench::*::timed_loop<*' \
    --callgrind-out-file="$work/$m.out" \
    "$compare" --maps "$m" --mixes "$mix" --sizes "$size" --threads 1 --reps 1 \
    --seconds 0.3 --warmup 0.1 --no-isolate --no-pin --probe-cache-bytes "$l2" \
    --out "$work/$m" >"$work/$m.log" 2>&1 || {
    echo "lookup-cost.sh: the run of $m failed; its log:" >&2
    tail -n 20 "$work/$m.log" >&2
    exit 1
  }
  "$python" - "$work/$m.out" "$work/$m/results.csv" "$m" <<'EOF'
import csv
import sys

# Callgrind collected inside the timed loop only (--toggle-collect), so its totals are the
# timed operations' cost; the driver's CSV says how many operations that loop ran.
out_path, csv_path, map_name = sys.argv[1], sys.argv[2], sys.argv[3]
events, totals = [], None
for line in open(out_path):
    if line.startswith("events:"):
        events = line.split()[1:]
    elif line.startswith(("totals:", "summary:")):
        totals = [int(v) for v in line.split()[1:]]
ops = sum(int(r["ops"]) for r in csv.DictReader(open(csv_path)))
if not events or not totals or not any(totals) or not ops:
    # Nothing collected: the toggle did not match the timed loop (renamed?) or it ran none.
    sys.exit(f"lookup-cost.sh: no counts or no operations for {map_name} ({out_path})")
per = {e: totals[i] / ops for i, e in enumerate(events) if i < len(totals)}
print(f"| {map_name} | {per.get('Ir', 0):.1f} | {per.get('Dr', 0):.1f} | {per.get('D1mr', 0):.2f} "
      f"| {per.get('DLmr', 0):.3f} | {per.get('Bc', 0):.1f} | {per.get('Bcm', 0):.2f} | {ops} |")
EOF
done
