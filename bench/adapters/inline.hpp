// bench/adapters/inline.hpp — NUMAMAP_BENCH_INLINE, for the adapters' operations.
//
// An adapter is only a common spelling of each map's calls, and must cost nothing of its
// own: its operation is inlined into the driver's timed loop, as a user's call of the map
// would be in the user's loop. Left to the compiler, most wrappers were inlined, but
// numamap's load (whose own body the library forces inline) and the stores of TBB and
// std::shared_mutex were not: those loops paid a call, and the register saves it needs,
// that the others did not (decisions.md D35). What the wrapper calls, each map's own
// code, stays as its library declares it. Build with -DNUMAMAP_BENCH_NO_FORCED_INLINE to
// leave the choice to the compiler again, for an A/B run of this choice.
#pragma once

#if (defined(__GNUC__) || defined(__clang__)) && !defined(NUMAMAP_BENCH_NO_FORCED_INLINE)
#define NUMAMAP_BENCH_INLINE __attribute__((always_inline)) inline
#else
#define NUMAMAP_BENCH_INLINE inline
#endif
