// numamap/detail/cacheline.hpp — cache-line size and padding.
//
// A fixed constant rather than std::hardware_destructive_interference_size: clang 14 with
// libstdc++ 12 does not define it, and GCC warns that its value is not ABI-stable. 128 bytes
// covers Intel's adjacent-line prefetcher (two 64-byte lines fetched together) and the
// 128-byte lines of Apple M-series and some POWER parts.
#pragma once

#include <atomic>
#include <cstddef>
#include <limits>
#include <mutex>
#include <utility>

#include "../config.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#define NUMAMAP_FUTEX_MUTEX 1
#else
#define NUMAMAP_FUTEX_MUTEX 0
#endif

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
/// a miss whose address is known early overlaps other work. On x86-64 it is PREFETCHW,
/// whatever the compiler's target flags (GCC emits a plain read prefetch for the builtin
/// without -mprfchw): the line comes in owned, so the write or CAS that follows does not
/// ask the other cores a second time. Processors without PREFETCHW execute it as a NOP.
inline void prefetch_for_write(const void* p) noexcept {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

/// A mutex that spins briefly before it sleeps. A shard's critical sections are short
/// (a probe and an insert), so a waiter usually gets the lock within a few hundred cycles;
/// sleeping at once costs two futex calls and a context switch, and on a virtual machine
/// far more. A promotion that rebuilds a table holds the lock longer: then the spin ends
/// and the waiter sleeps as with std::mutex. The same idea as glibc's
/// PTHREAD_MUTEX_ADAPTIVE_NP, which the standard mutex does not expose.
///
/// On Linux it is one atomic word and a futex ("Futexes Are Tricky", Drepper, mutex 3):
/// 0 free, 1 locked, 2 locked and maybe waited for. An uncontended lock is one CAS and an
/// unlock one exchange, inline: every insert of a new key takes a shard's mutex, and
/// std::mutex's pthread calls cost about 60 instructions more per insert-and-erase pair
/// (callgrind, churn; decisions.md D22).
/// Elsewhere it wraps std::mutex.
///
/// lock(idle) calls idle() while it waits: at each spin, and before each sleep. A shard
/// passes a function that copies chunks of a rebuild in progress (shard.hpp, D51), and the
/// rebuild wakes the sleepers when it has chunks to share (wake_waiters).
class adaptive_mutex {
 public:
#if NUMAMAP_FUTEX_MUTEX
  void lock() noexcept {
    if (!try_lock()) lock_slow(no_idle{});
  }
  template <class Idle>
  void lock(Idle&& idle) noexcept {
    if (!try_lock()) lock_slow(idle);
  }
  /// Wakes every thread asleep in lock() (called by the holder): each looks again, calls its
  /// idle function, and sleeps again while the mutex is held. Nothing if no one may sleep.
  void wake_waiters() noexcept {
    // Relaxed: a hint. A waiter that marks the word 2 as this load runs, or calls idle()
    // just before the holder's work is there and sleeps just after the wake, may miss that
    // work and sleep until the unlock, as without idle(): it loses the work, never a wake-up
    // (the unlock still finds the word 2 and wakes one).
    if (state_.load(std::memory_order_relaxed) == 2) {
      (void)::syscall(SYS_futex, reinterpret_cast<int*>(&state_), FUTEX_WAKE_PRIVATE,
                      std::numeric_limits<int>::max(), nullptr, nullptr, 0);
    }
  }
  NUMAMAP_ALWAYS_INLINE bool try_lock() noexcept {
    int c = 0;
    // (M1) acquire: the holder's critical section, ended by unlock's release, happens before
    // ours. Failure relaxed: a taken mutex is not entered, so nothing is read through it.
    return state_.compare_exchange_strong(c, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  // Forced inline, with try_lock: GCC 12 made unlock a call of its own.
  NUMAMAP_ALWAYS_INLINE void unlock() noexcept {
    // (M2) release: our critical section before the next holder's (pairs with (M1)).
    // 2 means someone may sleep on the word: wake one.
    if (state_.exchange(0, std::memory_order_release) == 2) wake_one();
  }

 private:
  struct no_idle {
    void operator()() const noexcept {}
  };
  template <class Idle>
  NUMAMAP_NOINLINE void lock_slow(const Idle& idle) noexcept {
    int c = 0;
    for (int i = 0; i < spin_tries; ++i) {
      idle();
      cpu_relax();
      // Relaxed: a look before the CAS, which decides; (M1) acquire on success, failure
      // relaxed (nothing is read on its strength).
      c = state_.load(std::memory_order_relaxed);
      if (c == 0 && state_.compare_exchange_weak(c, 1, std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
        return;
      }
    }
    // Mark the word "waited for" before sleeping, so the holder's unlock wakes us; taking
    // it with 2 (not 1) is conservative: a later unlock may wake a thread that need not wait.
    // (M1) acquire: as try_lock().
    if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
    while (c != 0) {
      idle();
      // Sleeps only while the word is still 2 (the kernel compares atomically with queuing).
      (void)::syscall(SYS_futex, reinterpret_cast<int*>(&state_), FUTEX_WAIT_PRIVATE, 2, nullptr,
                      nullptr, 0);
      c = state_.exchange(2, std::memory_order_acquire);
    }
  }
  NUMAMAP_NOINLINE void wake_one() noexcept {
    (void)::syscall(SYS_futex, reinterpret_cast<int*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr,
                    nullptr, 0);
  }

  static constexpr int spin_tries = 128;
  // The futex word: the kernel reads it as an int (std::atomic<int> is one, lock-free).
  std::atomic<int> state_{0};
  static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free);
#else
  void lock() {
    lock([] {});
  }
  template <class Idle>
  void lock(Idle&& idle) {
    for (int i = 0; i < spin_tries; ++i) {
      if (m_.try_lock()) return;
      idle();
      cpu_relax();
    }
    m_.lock();
  }
  void wake_waiters() noexcept {}  // std::mutex's sleepers wake only at unlock
  bool try_lock() { return m_.try_lock(); }
  void unlock() { m_.unlock(); }

 private:
  static constexpr int spin_tries = 128;
  std::mutex m_;
#endif
};

}  // namespace detail
NUMAMAP_END_NAMESPACE
