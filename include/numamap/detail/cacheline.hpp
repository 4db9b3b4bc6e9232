// numamap/detail/cacheline.hpp — cache-line size and padding.
//
// A fixed constant rather than std::hardware_destructive_interference_size: clang 14 with
// libstdc++ 12 does not define it, and GCC warns that its value is not ABI-stable. 128 bytes
// covers Intel's adjacent-line prefetcher (two 64-byte lines fetched together) and the
// 128-byte lines of Apple M-series and some POWER parts.
#pragma once

#include <cstddef>
#include <mutex>
#include <utility>

#include "../config.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

inline constexpr std::size_t cacheline_size = 128;

/// A T alone on its cache line(s): nothing else shares a line with it.
template <class T>
struct alignas(cacheline_size) cache_padded {
  T value;

  cache_padded() = default;
  template <class... Args>
  explicit cache_padded(Args&&... args) : value(std::forward<Args>(args)...) {}

  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
  const T* operator->() const noexcept { return &value; }
};

static_assert(sizeof(cache_padded<char>) == cacheline_size);
static_assert(alignof(cache_padded<char>) == cacheline_size);

/// Tells the core that this is a spin-wait loop (saves power, frees the sibling hyperthread).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Asks for p's line in cache ahead of a write (a hint: no effect on correctness), so that
/// a miss whose address is known early overlaps other work.
inline void prefetch_for_write(const void* p) noexcept { __builtin_prefetch(p, 1, 3); }

/// A mutex that spins briefly before it sleeps. A shard's critical sections are short
/// (a probe and an insert), so a waiter usually gets the lock within a few hundred cycles;
/// sleeping at once costs two futex calls and a context switch, and on a virtual machine
/// far more. A promotion that rebuilds a table holds the lock longer: then the spin ends
/// and the waiter sleeps as with std::mutex. The same idea as glibc's
/// PTHREAD_MUTEX_ADAPTIVE_NP, which the standard mutex does not expose.
class adaptive_mutex {
 public:
  void lock() {
    for (int i = 0; i < spin_tries; ++i) {
      if (m_.try_lock()) return;
      cpu_relax();
    }
    m_.lock();
  }
  bool try_lock() { return m_.try_lock(); }
  void unlock() { m_.unlock(); }

 private:
  static constexpr int spin_tries = 128;
  std::mutex m_;
};

}  // namespace detail
NUMAMAP_END_NAMESPACE
