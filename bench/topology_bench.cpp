// bench/topology_bench.cpp — what asking "which node am I on?" costs: the map asks on its
// paths that place memory, so topology::current_node() must be cheap. sched_getcpu() is the
// floor it builds on, shown for reference.
#include <benchmark/benchmark.h>
#include <sched.h>

#include <numamap/topology.hpp>
#include <thread>

namespace {

void BM_current_node(benchmark::State& state) {
  const numamap::topology& topo = numamap::topology::system();
  for (auto _ : state) {
    numamap::node_id n = topo.current_node();
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_sched_getcpu(benchmark::State& state) {
  for (auto _ : state) {
    int cpu = sched_getcpu();
    benchmark::DoNotOptimize(cpu);
  }
  state.SetItemsProcessed(state.iterations());
}

int max_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n != 0 ? static_cast<int>(n) : 1;
}

BENCHMARK(BM_current_node)->ThreadRange(1, max_threads())->UseRealTime();
BENCHMARK(BM_sched_getcpu)->ThreadRange(1, max_threads())->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
