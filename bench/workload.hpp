// bench/workload.hpp — what every numamap benchmark shares: keys, random numbers, the Zipf
// table, the cycle clock and its latency histogram, resident memory, thread pinning.
//
// Keys. Key number i (i = 0, 1, 2, ...) is the 64-bit key mix64(i). mix64 is a bijection
// (the splitmix64 finaliser), so distinct numbers give distinct keys, and the keys are spread
// over all 64 bits: a map whose std::hash is the identity (libstdc++, libcuckoo) does not get
// an unrealistically tidy layout from sequential keys. A map of size N holds key numbers
// [0, N); key numbers >= N are absent until a workload inserts them.
//
// Random numbers come from wyrand (one 64x64->128 multiply per number), cheap enough that the
// generator is a small, equal cost for every map. The Zipf distribution is too expensive to
// draw per operation, so a table of ranks is drawn once (YCSB's generator, Gray et al. 1994)
// and each thread walks it from its own offset.
#pragma once

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define NUMAMAP_BENCH_RDTSC 1
#else
#define NUMAMAP_BENCH_RDTSC 0
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace numamap::bench {

/// splitmix64's finaliser: a bijection on 64-bit integers.
inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/// The 64-bit key with key number i.
inline std::uint64_t key_u64(std::uint64_t i) noexcept { return mix64(i); }

/// The 24-byte string key with key number i: "user" and 20 decimal digits of mix64(i), as
/// YCSB names its keys. 24 bytes do not fit libstdc++'s 15-byte small-string buffer.
inline std::string key_string(std::uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "user%020llu", static_cast<unsigned long long>(mix64(i)));
  return {buf, 24};
}

__extension__ using u128 = unsigned __int128;  // GCC/Clang extension; __extension__ for -Wpedantic

/// The high 64 bits of a * b.
inline std::uint64_t mul_hi(std::uint64_t a, std::uint64_t b) noexcept {
  return static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64);
}

/// Maps a uniform 64-bit number onto [0, n) (Lemire's multiply-shift).
inline std::uint64_t fast_range(std::uint64_t r, std::uint64_t n) noexcept { return mul_hi(r, n); }

/// wyrand: a 64-bit generator with one multiply per number.
class wyrand {
 public:
  explicit wyrand(std::uint64_t seed) noexcept : s_(mix64(seed + 1)) {}
  std::uint64_t next() noexcept {
    s_ += 0xa0761d6478bd642fULL;
    const u128 t = static_cast<u128>(s_) * (s_ ^ 0xe7037ed1a0b428dbULL);
    return static_cast<std::uint64_t>(t >> 64) ^ static_cast<std::uint64_t>(t);
  }
  /// A number in [0, n) (Lemire's multiply-shift; the bias is below 2^-32 for n < 2^32).
  std::uint64_t below(std::uint64_t n) noexcept { return fast_range(next(), n); }

 private:
  std::uint64_t s_;
};

/// A table of Zipf(theta) ranks in [0, n), rank 0 the most frequent, drawn with YCSB's
/// ZipfianGenerator (Gray et al., "Quickly generating billion-record synthetic databases").
inline std::vector<std::uint32_t> zipf_table(std::uint64_t n, double theta, std::size_t samples,
                                             std::uint64_t seed) {
  double zetan = 0;
  for (std::uint64_t i = 1; i <= n; ++i) zetan += 1.0 / std::pow(static_cast<double>(i), theta);
  const double zeta2 = 1.0 + 1.0 / std::pow(2.0, theta);
  const double alpha = 1.0 / (1.0 - theta);
  const double eta =
      (1.0 - std::pow(2.0 / static_cast<double>(n), 1.0 - theta)) / (1.0 - zeta2 / zetan);
  wyrand rng(seed);
  std::vector<std::uint32_t> out(samples);
  for (auto& r : out) {
    const double u = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
    const double uz = u * zetan;
    std::uint64_t rank = 0;
    if (uz < 1.0) {
      rank = 0;
    } else if (uz < zeta2) {
      rank = 1;
    } else {
      rank =
          static_cast<std::uint64_t>(static_cast<double>(n) * std::pow(eta * u - eta + 1.0, alpha));
    }
    r = static_cast<std::uint32_t>(std::min<std::uint64_t>(rank, n - 1));
  }
  return out;
}

/// A cycle counter for latency samples: rdtsc on x86 (constant rate on every CPU this runs
/// on; checked by calibrating against steady_clock), steady_clock elsewhere.
class cycle_clock {
 public:
  /// Both ends read the counter the same way: the first fence lets earlier instructions
  /// (at stop(), the timed operation's) finish before the read, the second keeps later ones
  /// (at start(), the timed operation) after it. lfence, not rdtscp, at stop(): some virtual
  /// CPUs do not list rdtscp in CPUID, and valgrind then refuses it (scripts/lookup-cost.sh).
  static std::uint64_t start() noexcept { return fenced_now(); }
  static std::uint64_t stop() noexcept { return fenced_now(); }
  /// Ticks per nanosecond, measured once against steady_clock over ~50 ms.
  static double ticks_per_ns() {
    static const double v = calibrate();
    return v;
  }
  /// The cost of an empty start()/stop() pair in ticks (the median of many), subtracted
  /// from every sample.
  static std::uint64_t overhead_ticks() {
    static const std::uint64_t v = measure_overhead();
    return v;
  }

 private:
  static std::uint64_t fenced_now() noexcept {
#if NUMAMAP_BENCH_RDTSC
    _mm_lfence();
    const std::uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
#else
    return now_ns();
#endif
  }
  static std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
  }
  static double calibrate() {
#if NUMAMAP_BENCH_RDTSC
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t c0 = start();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(50)) {
    }
    const auto t1 = std::chrono::steady_clock::now();
    const std::uint64_t c1 = stop();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
    return static_cast<double>(c1 - c0) / ns;
#else
    return 1.0;
#endif
  }
  static std::uint64_t measure_overhead() {
    std::vector<std::uint64_t> v(4096);
    for (auto& x : v) {
      const std::uint64_t a = start();
      x = stop() - a;
    }
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  }
};

/// A log-linear histogram of tick counts: exact below 64, then 32 buckets per power of two
/// (at most 3% error). Fixed size, no allocation while recording.
class latency_histogram {
 public:
  static constexpr int sub_bits = 5;
  static constexpr int linear = 64;
  static constexpr int buckets = linear + (64 - 6) * (1 << sub_bits);

  void add(std::uint64_t ticks) noexcept {
    ++counts_[index(ticks)];
    ++total_;
  }
  void merge(const latency_histogram& o) noexcept {
    for (int i = 0; i < buckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
  }
  std::uint64_t count() const noexcept { return total_; }
  /// The q-quantile (0 < q <= 1) in ticks: the middle of the bucket that holds it.
  double quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    const auto want = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
    std::uint64_t seen = 0;
    for (int i = 0; i < buckets; ++i) {
      seen += counts_[i];
      if (seen >= want && counts_[i] != 0) return middle(i);
    }
    return middle(buckets - 1);
  }

 private:
  static int index(std::uint64_t v) noexcept {
    if (v < linear) return static_cast<int>(v);
    const int e = 63 - __builtin_clzll(v);  // e >= 6
    const int sub = static_cast<int>((v >> (e - sub_bits)) & ((1 << sub_bits) - 1));
    return linear + (e - 6) * (1 << sub_bits) + sub;
  }
  static double middle(int i) noexcept {
    if (i < linear) return i;
    const int e = (i - linear) / (1 << sub_bits) + 6;
    const int sub = (i - linear) % (1 << sub_bits);
    const double width = std::ldexp(1.0, e - sub_bits);
    return std::ldexp(1.0, e) + sub * width + width / 2;
  }
  std::uint64_t counts_[buckets] = {};
  std::uint64_t total_ = 0;
};

/// Resident bytes of this process (/proc/self/statm, second field, times the page size).
inline std::size_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  std::size_t size = 0;
  std::size_t resident = 0;
  f >> size >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

/// Gives freed heap memory back to the kernel, so that the next resident_bytes() delta
/// counts what a new map takes and not memory the allocator kept from the last one.
inline void trim_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

/// Fixes glibc's mmap threshold at 1 MiB. By default glibc raises the threshold each time a
/// large mmap'ed block is freed, after which the next map's big arrays come from the heap and
/// stay resident after they are freed, which skews the next map's resident-set delta. With a
/// fixed threshold every large array is its own mapping and goes back when freed.
inline void fix_mmap_threshold() {
#if defined(__GLIBC__)
  // The driver calls it at its start, before any thread starts.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);  // NOLINT(concurrency-mt-unsafe)
#endif
}

/// Pins the calling thread to one CPU of those this process may run on (cpu index modulo
/// their number). Returns false if the affinity call failed.
inline bool pin_to_cpu(unsigned index) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  if (cpus.empty()) return false;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpus[index % cpus.size()], &one);
  return sched_setaffinity(0, sizeof one, &one) == 0;
}

/// CPU time the calling thread has used, in seconds.
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// The 1-, 5- and 15-minute load averages (/proc/loadavg), as text.
inline std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a;
  std::string b;
  std::string c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

/// The number of CPUs this process may run on.
inline unsigned usable_cpus() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    const unsigned n = std::thread::hardware_concurrency();
    return n != 0 ? n : 1;
  }
  return static_cast<unsigned>(CPU_COUNT(&allowed));
}

/// A one-shot spinning start line for n threads.
class start_line {
 public:
  explicit start_line(unsigned n) : left_(n) {}
  void arrive_and_wait() noexcept {
    // acq_rel: the last arrival sees every thread's setup; the others acquire it below.
    left_.fetch_sub(1, std::memory_order_acq_rel);
    while (left_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

 private:
  std::atomic<unsigned> left_;
};

/// How long one cache line takes to go from the CPU of worker 0 to that of worker 1 (as
/// pin_to_cpu places them): two threads pinned there hand a token back and forth through
/// one line 20,000 times; returns ns per one-way hand-off, or -1 when fewer than two
/// CPUs are usable or pinning fails. On a virtual machine this moves with where the host
/// runs the two vCPUs (about 26 ns when they share a last-level cache, about 160 ns when
/// not, on the machine of docs/benchmarks.md), and with it every mix whose threads write
/// the same lines; the driver records it with every run (column handoff_ns).
inline double handoff_ns() {
  constexpr int handoffs = 20000;  // even: each side makes half
  if (usable_cpus() < 2) return -1;
  struct alignas(128) line {
    std::atomic<int> token{0};
  };
  line l;
  start_line ready(2);
  std::atomic<bool> pinned[2] = {{false}, {false}};
  double ns = -1;
  // Side `s` (0 or 1) waits for the token to reach its parity and passes it on. Acquire and
  // release: each hand-off is one transfer of the line and nothing else.
  auto side = [&](unsigned s) {
    pinned[s].store(pin_to_cpu(s), std::memory_order_relaxed);
    ready.arrive_and_wait();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = static_cast<int>(s); i < handoffs; i += 2) {
      while (l.token.load(std::memory_order_acquire) != i) {
      }
      l.token.store(i + 1, std::memory_order_release);
    }
    if (s == 0) {
      // From its first store to its last, side 0 waited out handoffs - 2 transfers.
      ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
           (handoffs - 2);
    }
  };
  // Two new threads: pinning the caller would narrow its own affinity for good.
  std::thread t0(side, 0U);
  std::thread t1(side, 1U);
  t0.join();
  t1.join();
  return pinned[0].load(std::memory_order_relaxed) && pinned[1].load(std::memory_order_relaxed)
             ? ns
             : -1;
}

/// Keeps a value alive so the compiler cannot drop the code that computed it.
template <class T>
inline void keep(const T& v) noexcept {
  asm volatile("" : : "r,m"(v) : "memory");
}

/// The map sizes a Google Benchmark microbenchmark runs: NUMAMAP_BENCH_SIZES
/// (comma-separated, e.g. "1000,100000,10000000"), or `fallback` when it is unset or empty.
inline std::vector<std::int64_t> bench_sizes(const char* fallback) {
  std::vector<std::int64_t> out;
  // Read while the benchmarks are registered, before any thread starts.
  const char* env = std::getenv("NUMAMAP_BENCH_SIZES");  // NOLINT(concurrency-mt-unsafe)
  const std::string s = env != nullptr && *env != '\0' ? env : fallback;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::size_t comma = s.find(',', pos);
    const std::string item =
        s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) out.push_back(std::stoll(item));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace numamap::bench
