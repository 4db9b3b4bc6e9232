// A process's first use of numamap from several threads at once: topology::system() (a
// function-local static: discovery, and the hwloc library's dlopen), the default memory's
// process-wide state (libnuma's dlopen, the per-node arenas) and the epoch domain, all first
// reached by eight threads released together. CTest runs this file in a process of its own
// (stress/stress_first_use), so these calls really are the first; under ThreadSanitizer a
// race in any of those first-use paths fails the run. In a run of the whole test binary it
// still checks that concurrent use agrees.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <numamap/numamap.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_catch.hpp"

TEST_CASE("the first topology::system() and the first maps, from eight threads at once",
          "[stress][first-use]") {
  using map_t = numamap::concurrent_map<std::uint64_t, std::uint64_t>;
  constexpr unsigned threads = 8;
  constexpr std::uint64_t keys = 2000;
  struct seen {
    const numamap::topology* topo = nullptr;
    numamap::node_id node = 0;
    std::size_t found = 0;
    std::size_t shards = 0;
    std::string memory;
    std::string source;
  };
  std::vector<seen> out(threads);
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      ready.fetch_add(1, std::memory_order_relaxed);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      seen& s = out[i];
      s.topo = &numamap::topology::system();
      s.node = s.topo->current_node();
      map_t m;  // default options: system(), default_memory, the process's epoch domain
      for (std::uint64_t k = 0; k < keys; ++k) m.store(k, k * threads + i);
      for (std::uint64_t k = 0; k < keys; ++k) {
        const auto v = m.load(k);
        if (v && *v == k * threads + i) ++s.found;
      }
      const numamap::map_stats st = m.stats();
      s.shards = m.shard_count();
      s.memory = st.memory_resource;
      s.source = st.topology_source;
    });
  }
  while (ready.load(std::memory_order_relaxed) < threads) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& t : pool) t.join();

  const numamap::topology& t = numamap::topology::system();
  REQUIRE(t.node_count() >= 1);
  for (unsigned i = 0; i < threads; ++i) {
    INFO("thread " << i);
    CHECK(out[i].topo == &t);  // one topology for the process, whoever came first
    CHECK(t.has_node(out[i].node));
    CHECK(out[i].found == keys);
    CHECK(out[i].shards == out[0].shards);
    CHECK_FALSE(out[i].memory.empty());
    CHECK(out[i].memory == out[0].memory);  // the default memory's state is the same for all
    CHECK(out[i].source == std::string(t.source()));
  }
}
