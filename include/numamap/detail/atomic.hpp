// numamap/detail/atomic.hpp — the atomic type every shared word of the map uses.
//
// Normally `detail::atomic<T>` is `std::atomic<T>`. A test that defines
// NUMAMAP_INSTRUMENTED_ATOMICS=1 before including numamap gets a wrapper that reports every
// store and read-modify-write to `atomic_probe`, so the test can prove that the read path
// writes no shared memory. The switch also changes the inline ABI namespace (config.hpp),
// so instrumented and plain code never mix in one program by accident.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "../config.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

#if NUMAMAP_INSTRUMENTED_ATOMICS

/// Records, per thread, the address of every write made through detail::atomic.
class atomic_probe {
 public:
  enum class kind : std::uint8_t { store, rmw };
  struct event {
    const void* addr;
    kind what;
  };
  /// Starts recording this thread's writes (clears what was recorded before).
  static void start() {
    log().clear();
    recording() = true;
  }
  /// Stops recording and returns what was recorded.
  static std::vector<event> stop() {
    recording() = false;
    return log();
  }
  static void note(const void* addr, kind k) {
    if (recording()) {
      recording() = false;  // the vector's own allocation is not the map's business
      log().push_back(event{addr, k});
      recording() = true;
    }
  }

 private:
  static bool& recording() {
    static thread_local bool on = false;
    return on;
  }
  static std::vector<event>& log() {
    static thread_local std::vector<event> events;
    return events;
  }
};

template <class T>
class atomic : public std::atomic<T> {
  using base = std::atomic<T>;

 public:
  atomic() noexcept = default;
  constexpr atomic(T v) noexcept : base(v) {}  // NOLINT(google-explicit-constructor)
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

  void store(T v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    atomic_probe::note(this, atomic_probe::kind::store);
    base::store(v, o);
  }
  T exchange(T v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    atomic_probe::note(this, atomic_probe::kind::rmw);
    return base::exchange(v, o);
  }
  bool compare_exchange_weak(T& e, T d, std::memory_order s, std::memory_order f) noexcept {
    atomic_probe::note(this, atomic_probe::kind::rmw);
    return base::compare_exchange_weak(e, d, s, f);
  }
  bool compare_exchange_strong(T& e, T d, std::memory_order s, std::memory_order f) noexcept {
    atomic_probe::note(this, atomic_probe::kind::rmw);
    return base::compare_exchange_strong(e, d, s, f);
  }
  template <class U = T>
  T fetch_add(U v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    atomic_probe::note(this, atomic_probe::kind::rmw);
    return base::fetch_add(v, o);
  }
  template <class U = T>
  T fetch_sub(U v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    atomic_probe::note(this, atomic_probe::kind::rmw);
    return base::fetch_sub(v, o);
  }
  template <class U = T>
  T fetch_or(U v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    atomic_probe::note(this, atomic_probe::kind::rmw);
    return base::fetch_or(v, o);
  }
};

#else

template <class T>
using atomic = std::atomic<T>;

#endif

// Fences. ThreadSanitizer does not model std::atomic_thread_fence, and GCC rejects it under
// -fsanitize=thread (-Wtsan). The TSan build therefore substitutes, in these three functions
// only: acquire and release fences become compiler barriers (what they compile to on
// x86-64 anyway, the only target the TSan job runs on), and a seq_cst fence becomes a
// seq_cst read-modify-write of a local (a locked instruction: a full barrier on x86-64).
// Every happens-before edge TSan must see goes through release/acquire operations on the
// variables themselves; docs/design.md lists them.
inline void fence_acquire() noexcept {
#if NUMAMAP_TSAN
  std::atomic_signal_fence(std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
}
inline void fence_release() noexcept {
#if NUMAMAP_TSAN
  std::atomic_signal_fence(std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_release);
#endif
}
inline void fence_seq_cst() noexcept {
#if NUMAMAP_TSAN
  std::atomic<int> f{0};
  f.exchange(1, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
