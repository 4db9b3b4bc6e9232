// bench/layout_bench.cpp — what one read hit costs with numamap's table, with a bare
// prototype of the same layout, and with absl::flat_hash_map: the evidence behind
// docs/benchmarks.md's "read path" analysis (decisions.md D19). One thread, uint64 keys and
// values, uniform random hits, keys key_u64(i) for i in [0, size) as in numamap_compare.
//
//   numamap        numamap::concurrent_map::load (entries in the probed slots since D19;
//                  before, a slot held a tagged pointer to an entry allocated apart)
//   inline_proto   a prototype, not a map: the same 16 shards, hash mixer, epoch pin and unpin
//                  stores, per-thread hit counter and seqlock read as numamap's hit path, the
//                  entry {ctl, hash, word, key} (24 bytes) in the probed slot, and nothing
//                  else. Filled once, never written: the floor of this layout's read path.
//   absl           absl::flat_hash_map::find, no lock (the ceiling of issue 4)
//
// Sizes: NUMAMAP_BENCH_SIZES (default "100000"); e.g. NUMAMAP_BENCH_SIZES=100000,10000000.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <numamap/numamap.hpp>
#include <vector>

#include "workload.hpp"

#if NUMAMAP_BENCH_HAVE_ABSL
#include <absl/container/flat_hash_map.h>
#endif

namespace {

using numamap::bench::key_u64;
using numamap::bench::wyrand;

// ---- the prototype: entries inline in the probed slots ---------------------------------------

class inline_proto {
 public:
  static constexpr std::size_t shards = 16;  // numamap's default on 2 cpus

  explicit inline_proto(std::uint64_t n) {
    // Per shard, the capacity numamap's growth reaches: the smallest power of two that holds
    // the shard's keys at load <= 3/4.
    for (std::size_t s = 0; s < shards; ++s) {
      const std::uint64_t per = n / shards + 1;
      std::size_t cap = 8;
      while (per * 4 > cap * 3) cap *= 2;
      tables_[s].mask = cap - 1;
      tables_[s].slots = std::make_unique<slot[]>(cap);
    }
    for (std::uint64_t i = 0; i < n; ++i) insert(key_u64(i), i);
  }

  bool load(std::uint64_t k, std::uint64_t& out) {
    const std::uint64_t h = numamap::detail::mix64(k);
    const std::size_t s = static_cast<std::size_t>(((h >> 48) * shards) >> 16);
    // The pin: announce (epoch | active) in this thread's record, compiler barrier only (as
    // numamap with membarrier); the unpin stores the word back.
    const std::uint64_t e = epoch_.load(std::memory_order_acquire);
    record_.word.store((e << 1) | 1U, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    const table& t = tables_[s];
    const auto bucket = static_cast<std::uint32_t>(h);
    bool found = false;
    for (std::size_t i = bucket & t.mask;; i = (i + 1) & t.mask) {
      const slot& sl = t.slots[i];
      const std::uint32_t c1 = sl.ctl.load(std::memory_order_acquire);
      if (c1 == 0) break;  // empty: the key is absent
      if (sl.hash == bucket && sl.key == k) {
        const std::uint64_t w = sl.word.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (sl.ctl.load(std::memory_order_relaxed) == c1) {  // seqlock: no writer came between
          auto& hits = record_.hits[s];
          hits.store(hits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
          out = w;
          found = true;
        }
        break;
      }
    }
    record_.word.store(e << 1, std::memory_order_release);
    return found;
  }

 private:
  struct slot {
    std::atomic<std::uint32_t> ctl{0};  // 0: empty; else full | state | count
    std::uint32_t hash = 0;
    std::atomic<std::uint64_t> word{0};
    std::uint64_t key = 0;
  };
  static_assert(sizeof(slot) == 24);
  struct table {
    std::size_t mask = 0;
    std::unique_ptr<slot[]> slots;
  };
  struct alignas(64) record {
    std::atomic<std::uint64_t> word{0};
    std::atomic<std::uint64_t> hits[shards] = {};
  };

  void insert(std::uint64_t k, std::uint64_t v) {
    const std::uint64_t h = numamap::detail::mix64(k);
    const std::size_t s = static_cast<std::size_t>(((h >> 48) * shards) >> 16);
    table& t = tables_[s];
    std::size_t i = static_cast<std::uint32_t>(h) & t.mask;
    while (t.slots[i].ctl.load(std::memory_order_relaxed) != 0) i = (i + 1) & t.mask;
    t.slots[i].hash = static_cast<std::uint32_t>(h);
    t.slots[i].key = k;
    t.slots[i].word.store(v, std::memory_order_relaxed);
    t.slots[i].ctl.store(8, std::memory_order_release);  // full, present, count 1
  }

  table tables_[shards];
  std::atomic<std::uint64_t> epoch_{1};
  record record_;
};

// ---- the benchmarks ----------------------------------------------------------------------------

template <class Map>
struct holder {
  std::unique_ptr<Map> map;
  std::uint64_t size = 0;
};

template <class Map, class Fill>
Map& prepared(holder<Map>& h, std::uint64_t n, Fill fill) {
  if (!h.map || h.size != n) {
    h.map.reset();
    h.map = fill(n);
    h.size = n;
  }
  return *h.map;
}

using numamap_t = numamap::concurrent_map<std::uint64_t, std::uint64_t>;
holder<numamap_t> g_numamap;
holder<inline_proto> g_inline;

void BM_numamap(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  numamap_t& m = prepared(g_numamap, n, [](std::uint64_t size) {
    auto p = std::make_unique<numamap_t>();
    for (std::uint64_t i = 0; i < size; ++i) p->store(key_u64(i), i);
    return p;
  });
  wyrand rng(0x1a70);
  std::uint64_t sum = 0;
  for (auto _ : state) {
    const auto v = m.load(key_u64(rng.next() % n));
    sum += v ? *v : 1;
  }
  benchmark::DoNotOptimize(sum);
  if (sum == 0 && n > 1) state.SkipWithError("loads missed");
  state.SetItemsProcessed(state.iterations());
}

void BM_inline_proto(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  inline_proto& m = prepared(
      g_inline, n, [](std::uint64_t size) { return std::make_unique<inline_proto>(size); });
  wyrand rng(0x1a70);
  std::uint64_t sum = 0, misses = 0;
  for (auto _ : state) {
    std::uint64_t v = 0;
    if (m.load(key_u64(rng.next() % n), v)) {
      sum += v;
    } else {
      ++misses;
    }
  }
  benchmark::DoNotOptimize(sum);
  if (misses != 0) state.SkipWithError("a load of a present key missed");
  state.SetItemsProcessed(state.iterations());
}

#if NUMAMAP_BENCH_HAVE_ABSL
using absl_t = absl::flat_hash_map<std::uint64_t, std::uint64_t>;
holder<absl_t> g_absl;

void BM_absl(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  absl_t& m = prepared(g_absl, n, [](std::uint64_t size) {
    auto p = std::make_unique<absl_t>();
    for (std::uint64_t i = 0; i < size; ++i) p->emplace(key_u64(i), i);
    return p;
  });
  wyrand rng(0x1a70);
  std::uint64_t sum = 0, misses = 0;
  for (auto _ : state) {
    const auto it = m.find(key_u64(rng.next() % n));
    if (it != m.end()) {
      sum += it->second;
    } else {
      ++misses;
    }
  }
  benchmark::DoNotOptimize(sum);
  if (misses != 0) state.SkipWithError("a load of a present key missed");
  state.SetItemsProcessed(state.iterations());
}
#endif

// Interleaved per size: numamap, prototype, absl at each size in turn (a size's structures are
// built on first use and kept while the size stays).
void register_all() {
  for (const std::int64_t n : numamap::bench::bench_sizes("100000")) {
    benchmark::RegisterBenchmark("read_hit/numamap", BM_numamap)->Arg(n)->ArgName("size");
    benchmark::RegisterBenchmark("read_hit/inline_proto", BM_inline_proto)->Arg(n)->ArgName("size");
#if NUMAMAP_BENCH_HAVE_ABSL
    benchmark::RegisterBenchmark("read_hit/absl_flat_nolock", BM_absl)->Arg(n)->ArgName("size");
#endif
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
