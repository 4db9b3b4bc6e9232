// bench/adapters/numamap.hpp — numamap::concurrent_map with its defaults: topology::system(),
// default shards per node, default_memory (numa_memory where libnuma works, else heap); and,
// for the probe sweep only, the same map with its read probe forced (numamap_tags,
// numamap_slots).
#pragma once

#include <cstddef>
#include <cstdint>
#include <numamap/numamap.hpp>
#include <string>
#include <utility>

#include "inline.hpp"

namespace numamap::bench {

/// options.probe_cache_bytes for every numamap the driver builds (--probe-cache-bytes; 0:
/// the machine's own L2 size). scripts/lookup-cost.sh sets it to the machine's size:
/// under valgrind the C library reports the simulated CPU's L2 (256 KiB), which moves the
/// size-chosen probe's window (decisions.md D33), so the counts would be of another probe.
inline std::size_t probe_cache_bytes = 0;

/// The map with options.probe = Probe (decisions.md D33); `numamap` runs the default.
template <class K, class V, read_probe Probe>
class numamap_probe_adapter {
 public:
  static constexpr const char* name = Probe == read_probe::tags    ? "numamap_tags"
                                      : Probe == read_probe::slots ? "numamap_slots"
                                                                   : "numamap";
  static constexpr bool thread_safe = true;

  numamap_probe_adapter() : map_(options()) {}

  NUMAMAP_BENCH_INLINE bool load(const K& k, V& out) const {
    const auto v = map_.load(k);
    if (!v) return false;
    out = *v;
    return true;
  }
  NUMAMAP_BENCH_INLINE void store(const K& k, V v) { map_.store(k, std::move(v)); }
  NUMAMAP_BENCH_INLINE std::pair<V, bool> load_or_store(const K& k, V v) {
    return map_.load_or_store(k, std::move(v));
  }
  NUMAMAP_BENCH_INLINE bool erase(const K& k) { return map_.erase(k); }
  std::size_t size() const { return map_.size(); }

  /// Bytes the map holds from its memory resource (stats()), for the bytes-per-entry column.
  std::size_t bytes_allocated() const {
    std::size_t total = 0;
    for (const auto& n : map_.stats().nodes) total += n.bytes_allocated;
    return total;
  }
  /// Events the map counts (stats(), summed over the shards), for the driver's per-run
  /// columns: read tables rebuilt, dirty maps promoted (rebuilds included), operations
  /// that looked in a dirty map under the shard's lock (stats.hpp).
  struct map_events {
    std::uint64_t rebuilds = 0;
    std::uint64_t promotions = 0;
    std::uint64_t misses = 0;
  };
  map_events events() const {
    map_events e;
    for (const auto& s : map_.stats().shards) {
      e.rebuilds += s.rebuilds;
      e.promotions += s.promotions;
      e.misses += s.misses;
    }
    return e;
  }
  std::string describe() const {
    const auto s = map_.stats();
    return s.memory_resource + ", topology " + s.topology_source + ", " +
           std::to_string(map_.shard_count()) + " shards";
  }

 private:
  using map_t = numamap::concurrent_map<K, V>;
  static typename map_t::options options() {
    typename map_t::options o;
    o.probe = Probe;
    o.probe_cache_bytes = probe_cache_bytes;
    return o;
  }
  map_t map_;
};

template <class K, class V>
using numamap_adapter = numamap_probe_adapter<K, V, read_probe::automatic>;
/// Only when named in --maps: the read probe forced, for the size sweep
/// (scripts/probe-sweep.sh).
template <class K, class V>
using numamap_tags_adapter = numamap_probe_adapter<K, V, read_probe::tags>;
template <class K, class V>
using numamap_slots_adapter = numamap_probe_adapter<K, V, read_probe::slots>;

}  // namespace numamap::bench
