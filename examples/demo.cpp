// numamap demo: the machine as numamap sees it, where a map's shards live, and a short
// read-mostly workload on every hardware thread against std::unordered_map + std::shared_mutex.
//
//   numamap_demo [--keys N] [--seconds S] [--threads T]
//
// --seconds is the time given to each of the two maps (default 1). scripts/demo.sh builds and
// runs this; CTest runs a short version (label example).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numamap/numamap.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct config {
  std::uint64_t keys = 100000;
  double seconds = 1.0;
  unsigned threads = 0;  // 0: std::thread::hardware_concurrency()
};

config parse_args(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--keys") == 0 && has_value) {
      c.keys = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--seconds") == 0 && has_value) {
      c.seconds = std::strtod(argv[++i], nullptr);
    } else if (std::strcmp(argv[i], "--threads") == 0 && has_value) {
      c.threads = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: %s [--keys N] [--seconds S] [--threads T]\n", argv[0]);
      std::exit(2);  // NOLINT(concurrency-mt-unsafe): no other thread runs yet
    }
  }
  if (c.keys == 0 || c.seconds <= 0) {
    std::fprintf(stderr, "--keys and --seconds must be positive\n");
    std::exit(2);  // NOLINT(concurrency-mt-unsafe): no other thread runs yet
  }
  if (c.threads == 0) c.threads = std::max(1U, std::thread::hardware_concurrency());
  return c;
}

// xorshift64*: a fast per-thread generator, good enough to pick uniform keys.
struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
};

// The baseline a C++ engineer writes first.
class locked_unordered_map {
 public:
  std::optional<std::uint64_t> load(std::uint64_t k) const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = map_.find(k);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void store(std::uint64_t k, std::uint64_t v) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    map_[k] = v;
  }

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<std::uint64_t, std::uint64_t> map_;
};

// 95% load / 5% store on uniform keys in [0, keys) from `threads` threads for `seconds`.
// Returns million operations per second.
template <class Map>
double read_mostly(Map& map, const config& c) {
  std::atomic<bool> start{false};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> total_ops{0};
  std::atomic<std::uint64_t> sink{0};
  std::vector<std::thread> workers;
  workers.reserve(c.threads);
  for (unsigned t = 0; t < c.threads; ++t) {
    workers.emplace_back([&, t] {
      rng r{0x9E3779B97F4A7C15ULL * (t + 1)};
      std::uint64_t ops = 0;
      std::uint64_t found = 0;
      // relaxed: start/stop only gate the timing loop; no data is published through them.
      while (!start.load(std::memory_order_relaxed)) {
      }
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 256; ++i) {
          const std::uint64_t x = r.next();
          const std::uint64_t key = x % c.keys;
          if ((x >> 56) < 13) {  // 13/256 ~ 5% stores
            map.store(key, x);
          } else if (map.load(key)) {
            ++found;
          }
        }
        ops += 256;
      }
      // relaxed: read after join(), which orders these increments before the read.
      total_ops.fetch_add(ops, std::memory_order_relaxed);
      sink.fetch_add(found, std::memory_order_relaxed);
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  start.store(true, std::memory_order_relaxed);
  std::this_thread::sleep_for(std::chrono::duration<double>(c.seconds));
  stop.store(true, std::memory_order_relaxed);
  for (auto& w : workers) w.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sink.load(std::memory_order_relaxed) == 0) std::puts("(no key found: the prefill failed?)");
  return static_cast<double>(total_ops.load(std::memory_order_relaxed)) / elapsed / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const config c = parse_args(argc, argv);

  const numamap::topology& topo = numamap::topology::system();
  std::printf("== Topology (source: %s)\n%s\n", std::string(topo.source()).c_str(),
              topo.describe().c_str());

  numamap::concurrent_map<std::uint64_t, std::uint64_t> map;
  locked_unordered_map baseline;
  for (std::uint64_t k = 0; k < c.keys; ++k) {
    map.store(k, k);
    baseline.store(k, k);
  }
  // Loads on every key promote each shard's dirty map into its read snapshot, as a
  // read-mostly service does in its first seconds.
  for (int round = 0; round < 2; ++round) {
    for (std::uint64_t k = 0; k < c.keys; ++k) (void)map.load(k);
  }

  std::printf("== concurrent_map<uint64_t, uint64_t> with %llu keys: %zu shards\n",
              static_cast<unsigned long long>(c.keys), map.shard_count());
  std::printf("%s\n", map.stats().to_table().c_str());

  std::printf(
      "== Read-mostly workload: 95%% load / 5%% store, uniform keys, %u threads, %.1f s "
      "per map\n",
      c.threads, c.seconds);
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    double load1 = 0;
    if (std::fscanf(f, "%lf", &load1) == 1 && load1 > 0.5 * c.threads) {
      std::printf("  (load average %.1f on %u hardware threads: other work skews these numbers)\n",
                  load1, std::max(1U, std::thread::hardware_concurrency()));
    }
    std::fclose(f);
  }
  const double numamap_mops = read_mostly(map, c);
  const double baseline_mops = read_mostly(baseline, c);
  std::printf("  numamap::concurrent_map                 %10.2f Mops/s\n", numamap_mops);
  std::printf("  std::unordered_map + std::shared_mutex  %10.2f Mops/s\n", baseline_mops);
  std::printf("  ratio (numamap / baseline)              %10.2fx\n",
              baseline_mops > 0 ? numamap_mops / baseline_mops : 0.0);
  return 0;
}
