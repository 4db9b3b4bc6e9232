// The README's usage example, compiled and run by CTest (label example).
#include <cstdio>
#include <numamap/numamap.hpp>
#include <string>

int main() {
  numamap::concurrent_map<std::string, int> hits;  // shards on every NUMA node

  hits.store("alpha", 1);
  auto [value, loaded] = hits.load_or_store("beta", 2);  // inserts: value 2, loaded false
  hits.compare_and_swap("alpha", 1, 10);                 // 1 -> 10

  if (auto v = hits.load("alpha")) std::printf("alpha = %d\n", *v);
  std::printf("beta = %d (was there: %s)\n", value, loaded ? "yes" : "no");

  hits.range([](const std::string& key, int v) {  // weakly consistent, holds no lock
    std::printf("  %s -> %d\n", key.c_str(), v);
    return true;  // returning false stops the walk
  });
  hits.erase("beta");
  std::printf("size %zu, %zu shards, topology from %s\n", hits.size(), hits.shard_count(),
              std::string(numamap::topology::system().source()).c_str());
  return hits.contains("alpha") && !hits.contains("beta") ? 0 : 1;
}
