// bench/adapters/tbb.hpp — oneTBB tbb::concurrent_hash_map with its default hash_compare and
// allocator (tbb_allocator: tbbmalloc where the library is present). Reads hold a
// const_accessor (a reader lock on the element), writes an accessor.
#pragma once

#include <tbb/concurrent_hash_map.h>
#if NUMAMAP_BENCH_HAVE_TBBMALLOC
#include <tbb/scalable_allocator.h>
#endif

#include <utility>

#include "inline.hpp"

namespace numamap::bench {

template <class K, class V>
class tbb_adapter {
 public:
  static constexpr const char* name = "tbb_chm";
  static constexpr bool thread_safe = true;

  NUMAMAP_BENCH_INLINE bool load(const K& k, V& out) const {
    typename map_type::const_accessor a;
    if (!map_.find(a, k)) return false;
    out = a->second;
    return true;
  }
  NUMAMAP_BENCH_INLINE void store(const K& k, V v) {
    typename map_type::accessor a;
    map_.insert(a, k);
    a->second = v;
  }
  NUMAMAP_BENCH_INLINE std::pair<V, bool> load_or_store(const K& k, V v) {
    typename map_type::const_accessor a;
    const bool inserted = map_.insert(a, typename map_type::value_type(k, v));
    return {a->second, !inserted};
  }
  NUMAMAP_BENCH_INLINE bool erase(const K& k) { return map_.erase(k); }
  std::size_t size() const { return map_.size(); }
  /// tbbmalloc keeps freed memory in its own caches, out of malloc_trim's reach; the driver
  /// calls this before reading the resident set so one run's leftovers do not shrink the next
  /// run's bytes per entry.
  static void release_memory() {
#if NUMAMAP_BENCH_HAVE_TBBMALLOC
    scalable_allocation_command(TBBMALLOC_CLEAN_ALL_BUFFERS, nullptr);
#endif
  }

 private:
  using map_type = tbb::concurrent_hash_map<K, V>;
  mutable map_type map_;
};

}  // namespace numamap::bench
