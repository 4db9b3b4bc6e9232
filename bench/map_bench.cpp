// bench/map_bench.cpp — Google Benchmark microbenchmarks of numamap::concurrent_map, one per
// operation, over map sizes and thread counts (->ThreadRange(1, hardware concurrency)), real
// time, items per second.
//
// Sizes come from the environment variable NUMAMAP_BENCH_SIZES (comma-separated, default
// "1000,100000"); add 10000000 for the 10M-entry runs, which need ~1 GB and minutes:
//   NUMAMAP_BENCH_SIZES=1000,100000,10000000 ./numamap_map_bench
//
// The benchmarks share one prefilled map per size (built in Setup, before the threads start,
// and kept while the size stays), holding key_u64(i) -> i for i in [0, size). Every benchmark
// that writes it keeps that invariant (stores write i back, erase+insert puts the key back),
// so compare_and_swap(key_u64(i), i, i) always succeeds and loads always hit. The insert
// benchmark builds its own map per run and grows it.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <numamap/numamap.hpp>
#include <thread>
#include <vector>

#include "workload.hpp"

namespace {

using numamap::bench::key_u64;
using numamap::bench::wyrand;
using map_type = numamap::concurrent_map<std::uint64_t, std::uint64_t>;

struct prefilled {
  std::unique_ptr<map_type> map;
  std::uint64_t size = 0;
};
prefilled g_shared;  // reused across runs of the same size
prefilled g_fresh;   // rebuilt for each run of the insert benchmark

void fill(prefilled& p, std::uint64_t n) {
  p.map.reset();
  p.map = std::make_unique<map_type>();
  for (std::uint64_t i = 0; i < n; ++i) p.map->store(key_u64(i), i);
  p.size = n;
}

void setup_shared(const benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  if (!g_shared.map || g_shared.size != n) fill(g_shared, n);
}
void setup_fresh(const benchmark::State& state) {
  fill(g_fresh, static_cast<std::uint64_t>(state.range(0)));
}
void teardown_fresh(const benchmark::State& /*state*/) {
  g_fresh.map.reset();
  g_fresh.size = 0;
}

wyrand thread_rng(const benchmark::State& state) {
  return wyrand(0x51ed + static_cast<std::uint64_t>(state.thread_index()) * 7919 +
                static_cast<std::uint64_t>(state.range(0)));
}

// A key number this thread alone writes: i = t (mod threads).
std::uint64_t own_number(wyrand& rng, const benchmark::State& state, std::uint64_t n) {
  const auto t = static_cast<std::uint64_t>(state.thread_index());
  const auto threads = static_cast<std::uint64_t>(state.threads());
  const std::uint64_t per = n / threads;
  return rng.below(per != 0 ? per : 1) * threads + t;
}

void BM_load_hit(benchmark::State& state) {
  const map_type& m = *g_shared.map;
  const std::uint64_t n = g_shared.size;
  wyrand rng = thread_rng(state);
  for (auto _ : state) {
    auto v = m.load(key_u64(rng.below(n)));
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_load_miss(benchmark::State& state) {
  const map_type& m = *g_shared.map;
  const std::uint64_t n = g_shared.size;
  wyrand rng = thread_rng(state);
  for (auto _ : state) {
    auto v = m.load(key_u64((std::uint64_t{1} << 40) + rng.below(n)));  // never stored
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_store_existing(benchmark::State& state) {
  map_type& m = *g_shared.map;
  const std::uint64_t n = g_shared.size;
  wyrand rng = thread_rng(state);
  for (auto _ : state) {
    const std::uint64_t i = rng.below(n);
    m.store(key_u64(i), i);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_load_or_store_hit(benchmark::State& state) {
  map_type& m = *g_shared.map;
  const std::uint64_t n = g_shared.size;
  wyrand rng = thread_rng(state);
  for (auto _ : state) {
    const std::uint64_t i = rng.below(n);
    auto r = m.load_or_store(key_u64(i), i);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_load_or_store_insert(benchmark::State& state) {
  map_type& m = *g_fresh.map;
  // Fresh key numbers, disjoint per thread and from the prefilled [0, size).
  std::uint64_t next =
      (std::uint64_t{1} << 48) + (static_cast<std::uint64_t>(state.thread_index()) << 40);
  for (auto _ : state) {
    auto r = m.load_or_store(key_u64(next), next);
    ++next;
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_erase_insert(benchmark::State& state) {
  map_type& m = *g_shared.map;
  const std::uint64_t n = g_shared.size;
  wyrand rng = thread_rng(state);
  for (auto _ : state) {
    const std::uint64_t i = own_number(rng, state, n);
    const bool erased = m.erase(key_u64(i));
    m.store(key_u64(i), i);
    benchmark::DoNotOptimize(erased);
  }
  state.SetItemsProcessed(state.iterations());  // one item = one erase + one insert
}

void BM_exchange(benchmark::State& state) {
  map_type& m = *g_shared.map;
  const std::uint64_t n = g_shared.size;
  wyrand rng = thread_rng(state);
  for (auto _ : state) {
    const std::uint64_t i = rng.below(n);
    auto old = m.exchange(key_u64(i), i);
    benchmark::DoNotOptimize(old);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_compare_and_swap(benchmark::State& state) {
  map_type& m = *g_shared.map;
  const std::uint64_t n = g_shared.size;
  wyrand rng = thread_rng(state);
  std::uint64_t failed = 0;
  for (auto _ : state) {
    const std::uint64_t i = rng.below(n);
    // Succeeds: the value is always i.
    if (!m.compare_and_swap(key_u64(i), i, i)) ++failed;
  }
  if (failed != 0)
    state.SkipWithError("compare_and_swap failed on a key holding the expected value");
  state.SetItemsProcessed(state.iterations());
}

void BM_range_per_entry(benchmark::State& state) {
  const map_type& m = *g_shared.map;
  std::uint64_t visited = 0;
  for (auto _ : state) {
    std::uint64_t sum = 0;
    m.range([&](const std::uint64_t&, const std::uint64_t& v) {
      sum += v;
      ++visited;
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(visited));  // items = entries visited
}

void register_all() {
  const unsigned hw = std::thread::hardware_concurrency();
  const int max_threads = hw != 0 ? static_cast<int>(hw) : 1;
  struct entry {
    const char* name;
    void (*fn)(benchmark::State&);
    bool fresh;
  };
  const entry entries[] = {
      {"load_hit", BM_load_hit, false},
      {"load_miss", BM_load_miss, false},
      {"store_existing", BM_store_existing, false},
      {"load_or_store_hit", BM_load_or_store_hit, false},
      {"load_or_store_insert", BM_load_or_store_insert, true},
      {"erase_insert", BM_erase_insert, false},
      {"exchange", BM_exchange, false},
      {"compare_and_swap", BM_compare_and_swap, false},
      {"range_per_entry", BM_range_per_entry, false},
  };
  const std::vector<std::int64_t> ns = numamap::bench::bench_sizes("1000,100000");
  for (const auto& e : entries) {
    auto* b = benchmark::RegisterBenchmark(e.name, e.fn);
    for (auto n : ns) b->Arg(n);
    b->ArgName("size")->ThreadRange(1, max_threads)->UseRealTime();
    if (e.fresh) {
      b->Setup(setup_fresh)->Teardown(teardown_fresh);
    } else {
      b->Setup(setup_shared);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_shared.map.reset();
  return 0;
}
