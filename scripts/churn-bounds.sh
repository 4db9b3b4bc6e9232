#!/usr/bin/env bash
# scripts/churn-bounds.sh — what two churning threads pay for sharing a shard (decisions.md
# D36). Builds numamap_compare from copies of this tree, each changed for the experiment
# only (none is a correct map for every workload), and runs churn at 100K keys and 2 threads
# against libcuckoo, the builds alternating:
#
#   base        the tree as it is
#   split       each thread's churn keys live in shards of their own (hash bit 63 := the
#               key's bit 0, and thread t's key numbers are made to carry bit t): no line of
#               a shard is written by both threads
#   split_rmw   split, plus one relaxed fetch_add per fresh key on one counter that both
#               threads share: the price of one shared line per insert
#   lines       shards shared, but each thread's keys in alternate 64-slot blocks of every
#               table (hash bit 6 := the key's bit 0): tag lines and most entry lines private
#   spin        the shard mutex spins without sleeping and unlocks with a plain store
#
#   scripts/churn-bounds.sh                 3 rounds (about 5 minutes plus 5 builds)
#   scripts/churn-bounds.sh --check         only apply the changes (no build): a smoke test
# Options: --rounds N (default 3), --work DIR (default /tmp/numamap-churn-bounds).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=/tmp/numamap-churn-bounds
rounds=3
check=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --check) check=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "churn-bounds.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "churn-bounds.sh: --rounds takes a positive count" >&2; exit 2; }

variants=(base split split_rmw lines spin)
mkdir -p "$work"
for v in "${variants[@]}"; do rm -rf "${work:?}/src-$v" "${work:?}/build-$v" "$work"/out-"$v"-*; done

# The tree as checked out (tracked files, with uncommitted edits), once per variant.
for v in "${variants[@]}"; do
  mkdir -p "$work/src-$v"
  git -C "$root" ls-files -z | tar -C "$root" --null -T - -cf - | tar -C "$work/src-$v" -xf -
done

# The changes. Each text must be found exactly once, so that a change to the map's code
# makes this script fail instead of measuring something else.
python3 - "$work" <<'PY'
import sys

work = sys.argv[1]


def edit(variant, path, old, new):
    p = f"{work}/src-{variant}/{path}"
    with open(p) as f:
        s = f.read()
    if s.count(old) != 1:
        sys.exit(f"churn-bounds.sh: {path}: the text to change for '{variant}' is not there "
                 f"once; update this script to the code:\n{old}")
    with open(p, "w") as f:
        f.write(s.replace(old, new))


HASH = "    return detail::hashed{detail::mix64(static_cast<std::uint64_t>(hash_(k)))};"


def key_bit_to(variant, bit):
    edit(variant, "include/numamap/concurrent_map.hpp", HASH, f"""\
    std::uint64_t h = detail::mix64(static_cast<std::uint64_t>(hash_(k)));
    if constexpr (std::is_same_v<K, std::uint64_t>) {{
      h = (h & ~(std::uint64_t{{1}} << {bit})) | ((static_cast<std::uint64_t>(k) & 1U) << {bit});
    }}
    return detail::hashed{{h}};""")
    # Key number j * 2 + t (churn's thread t of 2) gets a key whose bit 0 is t.
    edit(variant, "bench/workload.hpp",
         "inline std::uint64_t key_u64(std::uint64_t i) noexcept { return mix64(i); }",
         "inline std::uint64_t key_u64(std::uint64_t i) noexcept "
         "{ return (mix64(i >> 1) << 1) | (i & 1U); }")


key_bit_to("split", 63)
key_bit_to("split_rmw", 63)
key_bit_to("lines", 6)

# Both ways a store puts in a new key: a claim without the mutex (decisions.md D37), and
# an insert under it.
for indent in ("      ", "    "):
    edit("split_rmw", "include/numamap/detail/shard.hpp", f"""\
{indent}bump(rec, counter(ctr_stores));
{indent}set_inserting(rec, true);
{indent}return false;""", f"""\
{indent}bump(rec, counter(ctr_stores));
{indent}set_inserting(rec, true);
{indent}static std::atomic<std::uint64_t> shared_line{{0}};
{indent}shared_line.fetch_add(1, std::memory_order_relaxed);
{indent}return false;""")

edit("spin", "include/numamap/detail/cacheline.hpp",
     "    if (state_.exchange(0, std::memory_order_release) == 2) wake_one();",
     "    state_.store(0, std::memory_order_release);")
edit("spin", "include/numamap/detail/cacheline.hpp", """\
  NUMAMAP_NOINLINE void lock_slow(const Idle& idle) noexcept {
    int c = 0;""", """\
  NUMAMAP_NOINLINE void lock_slow(const Idle& idle) noexcept {
    for (;;) {
      idle();
      cpu_relax();
      int s = 0;
      if (state_.load(std::memory_order_relaxed) == 0 &&
          state_.compare_exchange_weak(s, 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
    }
    int c = 0;""")
PY

if [[ $check == 1 ]]; then
  echo "churn-bounds.sh: all changes apply (${variants[*]})"
  exit 0
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
for v in "${variants[@]}"; do
  cmake -S "$work/src-$v" -B "$work/build-$v" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DNUMAMAP_BUILD_BENCHMARKS=ON -DNUMAMAP_BUILD_TESTS=OFF -DNUMAMAP_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$work/build-$v" --parallel --target numamap_compare >/dev/null
  [[ -x "$work/build-$v/bench/numamap_compare" ]] ||
    { echo "churn-bounds.sh: $v: numamap_compare was not built" >&2; exit 1; }
done

for ((r = 1; r <= rounds; r++)); do
  for v in "${variants[@]}"; do
    echo "round $r of $rounds: $v" >&2
    "$work/build-$v/bench/numamap_compare" --maps numamap,libcuckoo --mixes churn --sizes 100K \
      --threads 2 --reps 3 --seconds 0.25 --out "$work/out-$v-$r" >/dev/null
  done
done

python3 - "$work" "$rounds" "${variants[@]}" <<'PY'
import csv
import statistics
import sys

work, rounds, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| build | numamap Mops/s (median, range) | libcuckoo | ratio | numamap cpu share "
      "| hand-off ns |")
print("|---|---|---|---|---|---|")
for v in variants:
    rows = []
    for r in range(1, rounds + 1):
        with open(f"{work}/out-{v}-{r}/results.csv") as f:
            rows += list(csv.DictReader(f))
    bad = [r["check"] for r in rows if r["check"] != "ok"]
    if bad:
        sys.exit(f"churn-bounds.sh: {v}: a run failed its check: {bad[0]}")
    n = [float(r["mops"]) for r in rows if r["map"] == "numamap"]
    c = [float(r["mops"]) for r in rows if r["map"] == "libcuckoo"]
    cpu = [float(r["cpu_share"]) for r in rows if r["map"] == "numamap"]
    h = [float(r["handoff_ns"]) for r in rows]
    print(f"| {v} | {statistics.median(n):.1f} ({min(n):.1f}-{max(n):.1f}) "
          f"| {statistics.median(c):.1f} ({min(c):.1f}-{max(c):.1f}) "
          f"| {statistics.median(n) / statistics.median(c):.2f}x "
          f"| {min(cpu):.2f}-{max(cpu):.2f} | {min(h):.0f}-{max(h):.0f} |")
PY
