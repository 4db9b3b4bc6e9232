// numamap/config.hpp — build configuration seen by every header.
//
// NUMAMAP_HAVE_HWLOC and NUMAMAP_HAVE_LIBNUMA reach users through the CMake target
// `numamap::numamap` (or the pkg-config file); they are never guessed from the headers
// present, because the link line must agree with them. Whether they are set changes
// inline code, so the public names live in an inline ABI namespace that encodes the
// configuration: linking two translation units built with different settings fails at
// link time instead of silently breaking the one-definition rule.
#pragma once

#ifndef NUMAMAP_HAVE_HWLOC
#define NUMAMAP_HAVE_HWLOC 0
#endif
#ifndef NUMAMAP_HAVE_LIBNUMA
#define NUMAMAP_HAVE_LIBNUMA 0
#endif
// Test-only: route the map's atomics through an instrumented type (see detail/atomic.hpp).
#ifndef NUMAMAP_INSTRUMENTED_ATOMICS
#define NUMAMAP_INSTRUMENTED_ATOMICS 0
#endif

#if defined(__SANITIZE_THREAD__)
#define NUMAMAP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NUMAMAP_TSAN 1
#endif
#endif
#ifndef NUMAMAP_TSAN
#define NUMAMAP_TSAN 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NUMAMAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NUMAMAP_ASAN 1
#endif
#endif
#ifndef NUMAMAP_ASAN
#define NUMAMAP_ASAN 0
#endif

// Hot-path inlining control: the read path is a handful of inlined steps; its rare slow
// paths stay out of line so they do not bloat it (or its prologue).
#if defined(__GNUC__) || defined(__clang__)
#define NUMAMAP_ALWAYS_INLINE inline __attribute__((always_inline))
#define NUMAMAP_NOINLINE __attribute__((noinline))
#else
#define NUMAMAP_ALWAYS_INLINE inline
#define NUMAMAP_NOINLINE
#endif

// The inline ABI namespace: v0 + h (hwloc) + n (libnuma) + i (instrumented atomics).
#define NUMAMAP_ABI_CAT2(a, b) a##b
#define NUMAMAP_ABI_CAT(a, b) NUMAMAP_ABI_CAT2(a, b)
#if NUMAMAP_HAVE_HWLOC
#define NUMAMAP_ABI_H _h
#else
#define NUMAMAP_ABI_H _x
#endif
#if NUMAMAP_HAVE_LIBNUMA
#define NUMAMAP_ABI_N n
#else
#define NUMAMAP_ABI_N x
#endif
#if NUMAMAP_INSTRUMENTED_ATOMICS
#define NUMAMAP_ABI_I _i
#else
#define NUMAMAP_ABI_I
#endif
#define NUMAMAP_ABI \
  NUMAMAP_ABI_CAT(NUMAMAP_ABI_CAT(NUMAMAP_ABI_CAT(v0, NUMAMAP_ABI_H), NUMAMAP_ABI_N), NUMAMAP_ABI_I)

#define NUMAMAP_BEGIN_NAMESPACE \
  namespace numamap {           \
  inline namespace NUMAMAP_ABI {
#define NUMAMAP_END_NAMESPACE \
  }                           \
  }
