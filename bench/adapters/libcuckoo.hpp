// bench/adapters/libcuckoo.hpp — libcuckoo's cuckoohash_map (bucketised cuckoo hashing with
// striped spinlocks) with its default hash and allocator. load_or_store is one uprase_fn call,
// so a hit takes the bucket locks once.
#pragma once

#include <libcuckoo/cuckoohash_map.hh>
#include <utility>

#include "inline.hpp"

namespace numamap::bench {

template <class K, class V>
class libcuckoo_adapter {
 public:
  static constexpr const char* name = "libcuckoo";
  static constexpr bool thread_safe = true;

  NUMAMAP_BENCH_INLINE bool load(const K& k, V& out) const { return map_.find(k, out); }
  NUMAMAP_BENCH_INLINE void store(const K& k, V v) { map_.insert_or_assign(k, v); }
  NUMAMAP_BENCH_INLINE std::pair<V, bool> load_or_store(const K& k, V v) {
    V actual = v;
    const bool inserted = map_.uprase_fn(
        k,
        [&actual](V& existing) {
          actual = existing;
          return false;  // keep the element
        },
        v);
    return {actual, !inserted};
  }
  NUMAMAP_BENCH_INLINE bool erase(const K& k) { return map_.erase(k); }
  std::size_t size() const { return map_.size(); }

 private:
  libcuckoo::cuckoohash_map<K, V> map_;
};

}  // namespace numamap::bench
