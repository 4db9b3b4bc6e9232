// numamap/detail/current_cpu.hpp — the cpu the calling thread runs on, cheaply.
//
// sched_getcpu() costs no system call on the platforms numamap targets: glibc >= 2.35 reads
// the cpu from the thread's rseq area (a TLS load), older glibc on x86-64 uses the vDSO
// getcpu (RDPID or LSL, ~10-20 ns). On top of that the answer is cached per thread and
// re-read every `current_cpu_refresh_interval` calls (the folly AccessSpreader pattern), so
// the amortised cost is a TLS load and a decrement.
//
// Staleness is bounded: after a migration the cached cpu is wrong for at most
// `current_cpu_refresh_interval - 1` further calls of the migrated thread. Even a fresh
// answer may be stale by the time it is used (getcpu(2)), so callers use it only to choose
// among equally correct options (never to decide where a key lives).
#pragma once

#include <sched.h>

#include "../config.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

/// How many calls reuse one reading of the current cpu (the staleness bound).
inline constexpr unsigned current_cpu_refresh_interval = 64;

/// The current cpu from the kernel, uncached; 0 when the platform cannot say.
inline unsigned read_current_cpu() noexcept {
  const int cpu = ::sched_getcpu();
  return cpu < 0 ? 0U : static_cast<unsigned>(cpu);
}

struct current_cpu_cache {
  unsigned cpu = 0;
  unsigned uses_left = 0;  // 0: read again on the next call
};

inline current_cpu_cache& this_thread_cpu_cache() noexcept {
  static thread_local current_cpu_cache cache;
  return cache;
}

/// The calling thread's cpu, re-read from the kernel every current_cpu_refresh_interval calls.
inline unsigned cached_current_cpu() noexcept {
  current_cpu_cache& c = this_thread_cpu_cache();
  if (c.uses_left == 0) {
    c.cpu = read_current_cpu();
    c.uses_left = current_cpu_refresh_interval;
  }
  --c.uses_left;
  return c.cpu;
}

/// Forgets the calling thread's cached cpu (after the thread pinned itself, for example).
inline void refresh_current_cpu() noexcept { this_thread_cpu_cache().uses_left = 0; }

}  // namespace detail
NUMAMAP_END_NAMESPACE
