// tests/support/test_env.hpp — seeds and stress sizes for numamap's tests.
//
// NUMAMAP_TEST_SEED=<n>      replays a run: every seeded test derives its seed from it.
// NUMAMAP_STRESS_SCALE=<n>   multiplies the iteration counts of the stress tests (default 1:
//                            the whole suite stays well under a minute on 2 cores, TSan too).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "numamap/config.hpp"

namespace numamap_test {

/// True in a ThreadSanitizer build (sizes shrink there, never the checks).
constexpr bool under_tsan = NUMAMAP_TSAN != 0;

/// NUMAMAP_STRESS_SCALE, at least 1.
inline std::uint64_t stress_scale() {
  const char* s = std::getenv("NUMAMAP_STRESS_SCALE");
  if (s == nullptr || *s == '\0') return 1;
  const long long v = std::atoll(s);
  return v < 1 ? 1 : static_cast<std::uint64_t>(v);
}

/// `n` iterations at scale 1, times NUMAMAP_STRESS_SCALE; divided by `tsan_divisor` under TSan.
inline std::uint64_t scaled(std::uint64_t n, std::uint64_t tsan_divisor = 4) {
  std::uint64_t v = n * stress_scale();
  if (under_tsan) v /= tsan_divisor;
  return v == 0 ? 1 : v;
}

/// The base seed of this process: NUMAMAP_TEST_SEED if set, else from std::random_device.
/// Printed once so any failure can be replayed.
inline std::uint64_t base_seed() {
  static const std::uint64_t seed = [] {
    std::uint64_t s = 0;
    const char* env = std::getenv("NUMAMAP_TEST_SEED");
    if (env != nullptr && *env != '\0') {
      s = std::strtoull(env, nullptr, 0);
    } else {
      std::random_device rd;
      s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }
    std::fprintf(stderr, "numamap tests: NUMAMAP_TEST_SEED=%llu (set it to replay)\n",
                 static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

/// A seed for one test, derived from the base seed and the test's name.
inline std::uint64_t test_seed(const std::string& name) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the name
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  std::uint64_t x = base_seed() ^ h;
  x ^= x >> 33;  // splitmix-style finaliser so neighbouring names differ everywhere
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

/// RAII: sets an environment variable for the scope of a test, then restores (or unsets) it.
struct scoped_env {
  scoped_env(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    setenv(name, value.c_str(), 1);
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;
  ~scoped_env() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

}  // namespace numamap_test
