// bench/adapters/std_shared_mutex.hpp — std::unordered_map behind one std::shared_mutex: what
// a C++ engineer writes first. Reads take the lock shared; load_or_store looks under the
// shared lock first and takes it exclusively only to insert.
//
// Every adapter has the same shape (see bench/compare.cpp):
//   static constexpr const char* name;  static constexpr bool thread_safe;
//   bool load(const K&, V& out) const;   void store(const K&, V);
//   std::pair<V, bool> load_or_store(const K&, V);  // (actual value, loaded)
//   bool erase(const K&);   std::size_t size() const;
#pragma once

#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

#include "inline.hpp"

namespace numamap::bench {

template <class K, class V>
class std_shared_mutex_adapter {
 public:
  static constexpr const char* name = "std_shared_mutex";
  static constexpr bool thread_safe = true;
  /// Every write takes the one mutex: the driver prefills it from one thread.
  static constexpr bool one_write_lock = true;

  NUMAMAP_BENCH_INLINE bool load(const K& k, V& out) const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    const auto it = map_.find(k);
    if (it == map_.end()) return false;
    out = it->second;
    return true;
  }
  NUMAMAP_BENCH_INLINE void store(const K& k, V v) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    map_.insert_or_assign(k, v);
  }
  NUMAMAP_BENCH_INLINE std::pair<V, bool> load_or_store(const K& k, V v) {
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      const auto it = map_.find(k);
      if (it != map_.end()) return {it->second, true};
    }
    std::unique_lock<std::shared_mutex> lock(mu_);
    const auto r = map_.try_emplace(k, v);
    return {r.first->second, !r.second};
  }
  NUMAMAP_BENCH_INLINE bool erase(const K& k) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    return map_.erase(k) != 0;
  }
  std::size_t size() const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    return map_.size();
  }

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<K, V> map_;
};

}  // namespace numamap::bench
