// A consumer of numamap::numamap: store, load, print OK.
#include <cstdio>
#include <numamap/numamap.hpp>
#include <string>

#if defined(CONSUMER_EXPECT_HWLOC)
static_assert(NUMAMAP_HAVE_HWLOC == CONSUMER_EXPECT_HWLOC,
              "NUMAMAP_HAVE_HWLOC did not travel through the numamap::numamap target");
static_assert(NUMAMAP_HAVE_LIBNUMA == CONSUMER_EXPECT_LIBNUMA,
              "NUMAMAP_HAVE_LIBNUMA did not travel through the numamap::numamap target");
#endif

int main() {
  numamap::concurrent_map<int, int> map;
  map.store(1, 42);
  const auto v = map.load(1);
  if (!v || *v != 42 || map.load(2)) {
    std::puts("FAIL: load after store");
    return 1;
  }
  std::printf("OK (numamap %s, topology source %s, %zu shards)\n", NUMAMAP_VERSION_STRING,
              std::string(numamap::topology::system().source()).c_str(), map.shard_count());
  return 0;
}
