#!/usr/bin/env bash
# scripts/bench.sh — build numamap's benchmarks in Release and run the whole comparison
# against the peers, then draw the plots and the Markdown table.
#
#   scripts/bench.sh            full run: sizes 1K,100K,10M, threads 1..N, 3 reps of 1 s
#                               (tens of minutes on 2 cores; up to ~6 GB of memory at 10M)
#   scripts/bench.sh --quick    1K and 100K keys, all mixes, plus read100 at 10M keys on 1
#                               thread: under 5 minutes on 2 cores
#   scripts/bench.sh --smoke    a token run (seconds), to check that everything works
# Options: --out DIR (default docs/img; for --smoke BUILD_DIR/bench-smoke),
# --build-dir DIR (default build-bench-release),
# anything after -- goes to numamap_compare (e.g. -- --maps numamap,tbb_chm --threads 1,2).
# Writes DIR/results.csv, DIR/meta.json, DIR/lscpu.txt, DIR/*.png and DIR/table.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=()
out=""
build="$root/build-bench-release"
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick | --smoke) mode=("$1"); shift ;;
    --full) mode=(); shift ;;
    --out) out=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Real runs feed the documentation; a smoke run stays out of it.
if [[ -z "$out" ]]; then
  if [[ "${mode[*]:-}" == "--smoke" ]]; then out="$build/bench-smoke"; else out="$root/docs/img"; fi
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ -f "$root/CMakeLists.txt" ]]; then
  # The project's own build, with the benchmarks switched on and the tests off.
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DNUMAMAP_BUILD_BENCHMARKS=ON -DNUMAMAP_BUILD_TESTS=OFF -DNUMAMAP_BUILD_EXAMPLES=OFF >/dev/null
else
  cmake -S "$root/bench" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --parallel --target numamap_compare

compare=$(find "$build" -name numamap_compare -type f -perm -u+x | head -n 1)
[[ -n "$compare" ]] || { echo "bench.sh: numamap_compare was not built" >&2; exit 1; }

mkdir -p "$out"
lscpu >"$out/lscpu.txt" 2>/dev/null || true
# Which source was measured: the commit, and whether the map's headers had local changes.
if git -C "$root" rev-parse HEAD >/dev/null 2>&1; then
  {
    echo "commit $(git -C "$root" rev-parse --short HEAD)"
    changed=$(git -C "$root" status --porcelain -- include | wc -l)
    echo "uncommitted changes under include/: $changed file(s)"
  } >"$out/source.txt"
fi
"$compare" "${mode[@]}" --out "$out" "${extra[@]}"

python=/usr/bin/python3
[[ -x $python ]] || python=python3
doc=()
# The default output feeds the documentation: refresh the generated tables in it too.
[[ "$(cd "$out" && pwd)" == "$root/docs/img" && -f "$root/docs/benchmarks.md" ]] &&
  doc=(--doc "$root/docs/benchmarks.md")
"$python" "$root/bench/plot.py" "$out" "${doc[@]}"
echo "bench.sh: results, plots and table.md are in $out"
