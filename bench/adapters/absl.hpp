// bench/adapters/absl.hpp — absl::flat_hash_map with no lock at all: the single-thread
// ceiling (SwissTable, open addressing, one control byte per slot). Never run with more than
// one thread.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <utility>

#include "inline.hpp"

namespace numamap::bench {

template <class K, class V>
class absl_adapter {
 public:
  static constexpr const char* name = "absl_flat_nolock";
  static constexpr bool thread_safe = false;

  NUMAMAP_BENCH_INLINE bool load(const K& k, V& out) const {
    const auto it = map_.find(k);
    if (it == map_.end()) return false;
    out = it->second;
    return true;
  }
  NUMAMAP_BENCH_INLINE void store(const K& k, V v) { map_.insert_or_assign(k, v); }
  NUMAMAP_BENCH_INLINE std::pair<V, bool> load_or_store(const K& k, V v) {
    const auto r = map_.try_emplace(k, v);
    return {r.first->second, !r.second};
  }
  NUMAMAP_BENCH_INLINE bool erase(const K& k) { return map_.erase(k) != 0; }
  std::size_t size() const { return map_.size(); }

 private:
  absl::flat_hash_map<K, V> map_;
};

}  // namespace numamap::bench
