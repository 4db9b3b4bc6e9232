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

/// std::atomic<T>'s interface, with every write recorded. The base is private, so no code can
/// reach an unrecorded write through it (a std::atomic<T>& to this object, std::atomic_store
/// and the other free functions do not compile). Every member of std::atomic<T> that writes
/// is here and recorded: store and operator= as stores; exchange, compare_exchange_*,
/// fetch_*, ++, -- and the compound assignments as read-modify-writes (a failed compare-
/// exchange is recorded too: the probe counts attempts). Reads and waits are not recorded.
/// As with std::atomic<T>, the arithmetic and bitwise members compile only for the T that
/// support them (their bodies are instantiated on use).
template <class T>
class atomic : private std::atomic<T> {
  using base = std::atomic<T>;
  void note_store() const noexcept { atomic_probe::note(this, atomic_probe::kind::store); }
  void note_rmw() const noexcept { atomic_probe::note(this, atomic_probe::kind::rmw); }

 public:
  using value_type = T;
  static constexpr bool is_always_lock_free = base::is_always_lock_free;

  atomic() noexcept = default;
  constexpr atomic(T v) noexcept : base(v) {}  // NOLINT(google-explicit-constructor)
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;
  atomic(atomic&&) = delete;
  atomic& operator=(atomic&&) = delete;
  ~atomic() = default;

  // Reads.
  bool is_lock_free() const noexcept { return base::is_lock_free(); }
  T load(std::memory_order o = std::memory_order_seq_cst) const noexcept { return base::load(o); }
  operator T() const noexcept { return base::load(); }  // NOLINT(google-explicit-constructor)
#if defined(__cpp_lib_atomic_wait)
  void wait(T old, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    base::wait(old, o);
  }
  void notify_one() noexcept { base::notify_one(); }  // writes no part of the value
  void notify_all() noexcept { base::notify_all(); }
#endif

  // Stores.
  void store(T v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    note_store();
    base::store(v, o);
  }
  // NOLINTNEXTLINE(cppcoreguidelines-c-copy-assignment-signature): returns T, as std::atomic
  T operator=(T v) noexcept {  // NOLINT(misc-unconventional-assign-operator): as std::atomic
    note_store();
    base::store(v);
    return v;
  }

  // Read-modify-writes.
  T exchange(T v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    note_rmw();
    return base::exchange(v, o);
  }
  bool compare_exchange_weak(T& e, T d, std::memory_order s, std::memory_order f) noexcept {
    note_rmw();
    return base::compare_exchange_weak(e, d, s, f);
  }
  bool compare_exchange_weak(T& e, T d, std::memory_order o = std::memory_order_seq_cst) noexcept {
    note_rmw();
    return base::compare_exchange_weak(e, d, o);
  }
  bool compare_exchange_strong(T& e, T d, std::memory_order s, std::memory_order f) noexcept {
    note_rmw();
    return base::compare_exchange_strong(e, d, s, f);
  }
  bool compare_exchange_strong(T& e, T d,
                               std::memory_order o = std::memory_order_seq_cst) noexcept {
    note_rmw();
    return base::compare_exchange_strong(e, d, o);
  }
  template <class U>
  T fetch_add(U v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    note_rmw();
    return base::fetch_add(v, o);
  }
  template <class U>
  T fetch_sub(U v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    note_rmw();
    return base::fetch_sub(v, o);
  }
  template <class U>
  T fetch_and(U v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    note_rmw();
    return base::fetch_and(v, o);
  }
  template <class U>
  T fetch_or(U v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    note_rmw();
    return base::fetch_or(v, o);
  }
  template <class U>
  T fetch_xor(U v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    note_rmw();
    return base::fetch_xor(v, o);
  }
  T operator++() noexcept {
    note_rmw();
    return base::operator++();
  }
  T operator++(int) noexcept {
    note_rmw();
    return base::operator++(0);
  }
  T operator--() noexcept {
    note_rmw();
    return base::operator--();
  }
  T operator--(int) noexcept {
    note_rmw();
    return base::operator--(0);
  }
  template <class U>
  T operator+=(U v) noexcept {
    note_rmw();
    return base::operator+=(v);
  }
  template <class U>
  T operator-=(U v) noexcept {
    note_rmw();
    return base::operator-=(v);
  }
  template <class U>
  T operator&=(U v) noexcept {
    note_rmw();
    return base::operator&=(v);
  }
  template <class U>
  T operator|=(U v) noexcept {
    note_rmw();
    return base::operator|=(v);
  }
  template <class U>
  T operator^=(U v) noexcept {
    note_rmw();
    return base::operator^=(v);
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
