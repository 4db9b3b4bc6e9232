// bench/compare.cpp — numamap_compare: the same workloads on numamap and on the peers a C++
// engineer would pick instead, in one run, interleaved.
//
// A cell is (workload mix, map size, thread count). For each cell the driver runs every
// selected map `reps` times, round robin (map A, B, C, A, B, C, ...; the order rotates each
// repetition), so drift of the machine (frequency, noisy neighbours) hits all maps alike.
// One run of one map in one cell:
//   1. trim the heap, read the resident set (/proc/self/statm);
//   2. build an empty map and fill it with key numbers [0, size) from `threads` pinned
//      threads (thread t stores the numbers = t mod threads);
//   3. resident bytes per entry = (resident now - resident before) / size: the RSS delta,
//      so it counts what the map really touched, allocator overhead included, whichever
//      allocator the map uses (tbbmalloc, numa_memory's mbind'ed chunks, malloc);
//   4. run the mix on `threads` pinned threads for `seconds`; every 64th operation is timed
//      with the cycle counter (rdtsc; the empty-timer cost is subtracted) into per-kind
//      histograms; Mops/s = all operations of all threads / (last end - first start);
//   5. check the map still makes sense (read mixes: no load of a present key missed and the
//      size is unchanged; churn: the size stayed within `threads` of `size`).
// Before any timing each map passes a correctness smoke test (a random sequence checked
// against std::unordered_map, and for thread-safe maps a concurrent insert/load/erase check).
//
// Output: DIR/results.csv (one row per run of one map in one cell) and DIR/meta.json (machine,
// compiler, flags, date, command, maps found and skipped). bench/plot.py turns them into PNGs
// and a Markdown table.
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "adapters/std_shared_mutex.hpp"
#include "numamap_bench_build_info.hpp"
#include "workload.hpp"
#if NUMAMAP_BENCH_HAVE_NUMAMAP
#include "adapters/numamap.hpp"
#endif
#if NUMAMAP_BENCH_HAVE_TBB
#include "adapters/tbb.hpp"
#endif
#if NUMAMAP_BENCH_HAVE_LIBCUCKOO
#include "adapters/libcuckoo.hpp"
#endif
#if NUMAMAP_BENCH_HAVE_ABSL
#include "adapters/absl.hpp"
#endif

namespace numamap::bench {
namespace {

using value_t = std::uint64_t;

// ------------------------------------------------------------------------------------------
// Workload mixes

enum class mix_kind { read_write, mixed, load_or_store, churn };

struct mix_def {
  const char* name;
  mix_kind kind;
  int percent;  // read_write: % loads (rest store to present keys); load_or_store: % reuse
  bool zipf;
  bool string_keys;
  const char* what;
};

const mix_def mixes[] = {
    {"read100", mix_kind::read_write, 100, false, false, "100% load of present keys"},
    {"read99", mix_kind::read_write, 99, false, false, "99% load, 1% store to present keys"},
    {"read95", mix_kind::read_write, 95, false, false, "95% load, 5% store to present keys"},
    {"mixed50", mix_kind::mixed, 50, false, false,
     "50% load, 25% store, 25% erase over 2x size key numbers (half present)"},
    {"los50", mix_kind::load_or_store, 50, false, false,
     "load_or_store: 50% present keys, 50% fresh keys"},
    {"los83", mix_kind::load_or_store, 83, false, false,
     "load_or_store: 83% present keys, 17% fresh keys"},
    {"los95", mix_kind::load_or_store, 95, false, false,
     "load_or_store: 95% present keys, 5% fresh keys"},
    {"churn", mix_kind::churn, 0, false, false,
     "alternate: store a fresh key, erase this thread's oldest key (size steady)"},
    {"read95_zipf", mix_kind::read_write, 95, true, false,
     "read95 with key ranks drawn from Zipf(0.99)"},
    {"read95_str", mix_kind::read_write, 95, false, true, "read95 with 24-byte std::string keys"},
};

const mix_def* find_mix(const std::string& name) {
  for (const auto& m : mixes)
    if (name == m.name) return &m;
  return nullptr;
}

struct cell {
  const mix_def* mix;
  std::uint64_t size;
  unsigned threads;
};

struct run_options {
  double seconds = 1.0;
  double warmup = 0.25;  // untimed seconds of the same mix right before the timed ones
  bool pin = true;
};

// How the main thread steers the workers of one run: start, end the warm-up, start timing,
// stop. relaxed flags: they only end loops; results are read after join().
struct run_control {
  explicit run_control(unsigned workers)
      : warm(workers + 1), settled(workers + 1), go(workers + 1) {}
  start_line warm;     // every worker is ready: the warm-up starts
  start_line settled;  // every worker has left the warm-up: the map is quiet until `go`
  start_line go;       // the timed run starts
  std::atomic<bool> warm_stop{false};
  std::atomic<bool> stop{false};
};

struct row {
  std::string map;
  const mix_def* mix = nullptr;
  std::uint64_t size = 0;
  unsigned threads = 0;
  int rep = 0;
  std::uint64_t ops = 0;
  double seconds = 0;
  double mops = 0;
  double p50 = 0, p99 = 0, p999 = 0;  // all sampled operations, ns
  double load_p50 = 0, load_p99 = 0, load_p999 = 0;
  double rss_bytes_per_entry = 0;
  double alloc_bytes_per_entry = -1;  // from the map's own accounting, where it has one
  double prefill_seconds = 0;
  double cpu_share = 0;  // CPU time the workers got / their wall time (< 1: others ran too)
  std::uint64_t samples = 0;
  // ns for a cache line to pass from worker 0's cpu to worker 1's, measured right after the
  // timed run (workload.hpp, handoff_ns); -1 unpinned or on one cpu.
  double handoff_ns = -1;
  // The map's own events during the timed run, per million operations, where the map counts
  // them (numamap: stats() rebuilds, promotions and misses); -1 where it does not.
  double rebuilds_per_mop = -1;
  double promotions_per_mop = -1;
  double misses_per_mop = -1;
  std::string check = "ok";
};

// ------------------------------------------------------------------------------------------
// Keys

struct u64_keys {
  using key_type = std::uint64_t;
  std::uint64_t operator()(std::uint64_t i) const noexcept { return key_u64(i); }
};

struct string_keys {
  using key_type = std::string;
  const std::vector<std::string>* table;
  const std::string& operator()(std::uint64_t i) const noexcept { return (*table)[i]; }
};

// Called by the main thread only (the smoke test, prepare()), before any worker runs.
const std::vector<std::string>& string_table(std::uint64_t n) {
  static std::map<std::uint64_t, std::vector<std::string>> cache;
  auto& t = cache[n];
  if (t.size() != n) {
    t.clear();
    t.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) t.push_back(key_string(i));
  }
  return t;
}

constexpr std::size_t zipf_samples = std::size_t{1} << 22;

// Every worker thread of a Zipf cell asks for the table as it starts, so the cache takes a
// lock: without it two threads inserted into the std::map at once, and a child process
// once died in _Rb_tree_decrement (std::map insertion), or both built the table and one
// replaced the vector the other was reading. The table is built once per process and
// size, by prepare() before any worker runs; a returned reference stays valid (std::map
// nodes do not move, and a built table is never replaced).
const std::vector<std::uint32_t>& zipf_ranks(std::uint64_t n) {
  static std::mutex mu;
  static std::map<std::uint64_t, std::vector<std::uint32_t>> cache;
  const std::lock_guard<std::mutex> lock(mu);
  auto& t = cache[n];
  if (t.empty()) t = zipf_table(n, 0.99, zipf_samples, 0x5eed + n);
  return t;
}

// ------------------------------------------------------------------------------------------
// Optional adapter members

template <class M, class = void>
struct has_bytes_allocated : std::false_type {};
template <class M>
struct has_bytes_allocated<M, std::void_t<decltype(std::declval<const M&>().bytes_allocated())>>
    : std::true_type {};

template <class M, class = void>
struct has_one_write_lock : std::false_type {};
template <class M>
struct has_one_write_lock<M, std::enable_if_t<M::one_write_lock>> : std::true_type {};

template <class M, class = void>
struct has_events : std::false_type {};
template <class M>
struct has_events<M, std::void_t<decltype(std::declval<const M&>().events())>> : std::true_type {};

template <class M, class = void>
struct has_describe : std::false_type {};
template <class M>
struct has_describe<M, std::void_t<decltype(std::declval<const M&>().describe())>>
    : std::true_type {};

template <class M, class = void>
struct has_release_memory : std::false_type {};
template <class M>
struct has_release_memory<M, std::void_t<decltype(M::release_memory())>> : std::true_type {};

// Asks the map's own allocator (tbbmalloc for TBB) to give cached memory back to the kernel.
template <class Map>
void release_map_memory() {
  if constexpr (has_release_memory<Map>::value) Map::release_memory();
}

// ------------------------------------------------------------------------------------------
// One run of one map in one cell

enum op_kind : int { op_load = 0, op_store = 1, op_los = 2, op_erase = 3, op_kinds = 4 };

struct alignas(128) thread_state {
  latency_histogram hist[op_kinds];
  std::uint64_t ops = 0;
  std::uint64_t misses = 0;  // loads of keys that must be present but were not found
  std::uint64_t sink = 0;
  double cpu_seconds = 0;  // CPU time this thread got while timed
  std::chrono::steady_clock::time_point start, end;
};

// The fresh key numbers of thread t in a load_or_store mix: far above any prefilled number,
// and disjoint between threads.
inline std::uint64_t fresh_base(unsigned t) {
  return (std::uint64_t{1} << 48) + (std::uint64_t{t} << 40);
}

// The timed loop of one worker: operations until the main thread says stop, one in 64 timed
// into the histogram of its kind; returns how many ran. A function of its own, so that
// scripts/lookup-cost.sh can count just this loop (callgrind --toggle-collect).
template <class Op>
[[gnu::noinline]] std::uint64_t timed_loop(Op& one, const run_control& ctl, thread_state& st,
                                           std::uint64_t overhead) {
  std::uint64_t ops = 0;
  while (!ctl.stop.load(std::memory_order_relaxed)) {
    const std::uint64_t t0 = cycle_clock::start();
    const int op = one();
    const std::uint64_t t1 = cycle_clock::stop();
    const std::uint64_t d = t1 - t0;
    st.hist[op].add(d > overhead ? d - overhead : 0);
    for (int j = 1; j < 64; ++j) one();
    ops += 64;
  }
  return ops;
}

template <class Map, class Keys>
void worker(Map& map, const Keys& keys, const cell& c, unsigned t, run_control& ctl,
            thread_state& st, bool pin) {
  if (pin) pin_to_cpu(t);
  wyrand rng(0x9e3779b97f4a7c15ULL * (t + 1) + c.size);
  const std::uint64_t n = c.size;
  const mix_def& mix = *c.mix;
  const std::uint64_t threshold = static_cast<std::uint64_t>(mix.percent) * 65536 / 100;
  const std::vector<std::uint32_t>* zipf = mix.zipf ? &zipf_ranks(n) : nullptr;
  std::size_t zpos = (zipf_samples / c.threads) * t;
  std::uint64_t fresh = 0;
  // churn: this thread owns key numbers j * threads + t; prefill stored those below n.
  std::uint64_t head = (n > t) ? (n - t + c.threads - 1) / c.threads : 0;
  std::uint64_t tail = 0;
  bool churn_insert = true;
  const std::uint64_t overhead = cycle_clock::overhead_ticks();
  value_t v = 0;

  // One operation of the mix. The kind is a template argument, not a switch: each kind gets
  // a timed loop of its own, into which the step is inlined, so the driver costs no call and
  // no switch per operation. A map's call is the compiler's to inline or not, as in a user's
  // loop. (A step called once per operation cost absl's flat_hash_map about a sixth of its
  // read100 speed at 100K keys and numamap about 4 %: decisions.md D34.)
  auto step = [&](auto kind) __attribute__((always_inline)) {
    constexpr mix_kind k = decltype(kind)::value;
    const std::uint64_t r = rng.next();
    if constexpr (k == mix_kind::read_write) {
      const std::uint64_t i = zipf ? (*zipf)[zpos++ & (zipf_samples - 1)] : fast_range(r, n);
      if ((r & 0xffff) < threshold) {
        if (!map.load(keys(i), v)) ++st.misses;
        st.sink += v;
        return op_load;
      }
      map.store(keys(i), r);
      return op_store;
    } else if constexpr (k == mix_kind::mixed) {
      const std::uint64_t i = fast_range(r, 2 * n);
      switch (r & 3) {
        case 0:
        case 1:
          if (map.load(keys(i), v)) st.sink += v;
          return op_load;
        case 2:
          map.store(keys(i), r);
          return op_store;
        default:
          st.sink += map.erase(keys(i));
          return op_erase;
      }
    } else if constexpr (k == mix_kind::load_or_store) {
      const std::uint64_t i = (r & 0xffff) < threshold ? fast_range(r, n) : fresh_base(t) + fresh++;
      st.sink += map.load_or_store(keys(i), r).first;
      return op_los;
    } else {
      churn_insert = !churn_insert;
      if (!churn_insert) {
        map.store(keys(head++ * c.threads + t), r);
        return op_store;
      }
      st.sink += map.erase(keys(tail++ * c.threads + t));
      return op_erase;
    }
  };

  auto run = [&](auto kind) {
    auto one = [&]() __attribute__((always_inline)) { return step(kind); };
    ctl.warm.arrive_and_wait();
    // Warm-up: the same mix, untimed (caches, TLB, and a map's own lazy work such as
    // promoting what a bulk load left in a side table, settle before timing).
    while (!ctl.warm_stop.load(std::memory_order_relaxed)) {
      for (int j = 0; j < 64; ++j) one();
    }
    ctl.settled.arrive_and_wait();
    ctl.go.arrive_and_wait();
    const double cpu0 = thread_cpu_seconds();
    st.start = std::chrono::steady_clock::now();
    st.ops = timed_loop(one, ctl, st, overhead);
    st.end = std::chrono::steady_clock::now();
    st.cpu_seconds = thread_cpu_seconds() - cpu0;
  };
  switch (mix.kind) {
    case mix_kind::read_write:
      run(std::integral_constant<mix_kind, mix_kind::read_write>{});
      break;
    case mix_kind::mixed:
      run(std::integral_constant<mix_kind, mix_kind::mixed>{});
      break;
    case mix_kind::load_or_store:
      run(std::integral_constant<mix_kind, mix_kind::load_or_store>{});
      break;
    case mix_kind::churn:
      run(std::integral_constant<mix_kind, mix_kind::churn>{});
      break;
  }
  keep(st.sink);
}

// A map built and prefilled for one cell, ready for timed runs. Read mixes leave the key set
// as it was, so the driver prefills each map once per cell and times it `reps` times (all
// maps alive at once, runs interleaved); the other mixes change the key set and get a fresh
// prepared map for every run.
class prepared {
 public:
  virtual ~prepared() = default;
  virtual row run(const run_options& opt) = 0;
};

template <class Map, class Keys>
class prepared_map final : public prepared {
 public:
  prepared_map(std::string name, const cell& c, Keys keys, const run_options& opt)
      : c_(c), keys_(std::move(keys)) {
    base_.map = std::move(name);
    base_.mix = c.mix;
    base_.size = c.size;
    base_.threads = c.threads;

    trim_heap();
    release_map_memory<Map>();
    const std::size_t rss0 = resident_bytes();
    // Made here, not in the initializer list: rss0 must be read before the map exists.
    map_ = std::make_unique<Map>();  // NOLINT(cppcoreguidelines-prefer-member-initializer)
    // Fill from as many threads as there are cpus (one for a map that is not thread-safe):
    // thread p stores the key numbers = p mod fillers.
    // A map whose every write takes one lock (has_one_write_lock) fills from one thread too:
    // more only contend for the lock (std_shared_mutex at 10M keys: 27 s from two threads,
    // 12 s from one, the same bytes per entry).
    unsigned fillers = 1;
    if (Map::thread_safe && !has_one_write_lock<Map>::value)
      fillers = std::max(c.threads, usable_cpus());
    const auto p0 = std::chrono::steady_clock::now();
    std::vector<std::thread> fill;
    for (unsigned p = 0; p < fillers; ++p) {
      fill.emplace_back([this, p, fillers, &opt] {
        if (opt.pin) pin_to_cpu(p);
        for (std::uint64_t i = p; i < c_.size; i += fillers) map_->store(keys_(i), i);
      });
    }
    for (auto& th : fill) th.join();
    base_.prefill_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - p0).count();
    // Give back what the allocator holds but the map does not (arrays left behind by growth),
    // so the delta is what the map keeps.
    trim_heap();
    release_map_memory<Map>();
    const std::size_t rss1 = resident_bytes();
    base_.rss_bytes_per_entry =
        rss1 > rss0 ? static_cast<double>(rss1 - rss0) / static_cast<double>(c.size) : 0.0;
    if constexpr (has_bytes_allocated<Map>::value) {
      base_.alloc_bytes_per_entry =
          static_cast<double>(map_->bytes_allocated()) / static_cast<double>(c.size);
    }
    if (map_->size() != c.size) base_.check = "prefill size " + std::to_string(map_->size());
  }

  row run(const run_options& opt) override {
    row out = base_;
    std::vector<std::unique_ptr<thread_state>> states;
    for (unsigned t = 0; t < c_.threads; ++t) states.push_back(std::make_unique<thread_state>());
    run_control ctl(c_.threads);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < c_.threads; ++t) {
      threads.emplace_back(worker<Map, Keys>, std::ref(*map_), std::cref(keys_), std::cref(c_), t,
                           std::ref(ctl), std::ref(*states[t]), opt.pin);
    }
    ctl.warm.arrive_and_wait();
    if (opt.warmup > 0) std::this_thread::sleep_for(std::chrono::duration<double>(opt.warmup));
    ctl.warm_stop.store(true, std::memory_order_relaxed);
    ctl.settled.arrive_and_wait();
    // The workers wait at `go`, so the counts before and after (all joined) are exact.
    [[maybe_unused]] const auto events0 = events();
    ctl.go.arrive_and_wait();
    std::this_thread::sleep_for(std::chrono::duration<double>(opt.seconds));
    ctl.stop.store(true, std::memory_order_relaxed);
    for (auto& th : threads) th.join();
    [[maybe_unused]] const auto events1 = events();
    if (opt.pin) out.handoff_ns = handoff_ns();

    latency_histogram all;
    latency_histogram loads;
    std::uint64_t misses = 0;
    double cpu = 0;
    double wall = 0;
    auto first = states[0]->start;
    auto last = states[0]->end;
    for (const auto& st : states) {
      out.ops += st->ops;
      misses += st->misses;
      first = std::min(first, st->start);
      last = std::max(last, st->end);
      cpu += st->cpu_seconds;
      wall += std::chrono::duration<double>(st->end - st->start).count();
      for (const auto& h : st->hist) all.merge(h);
      loads.merge(st->hist[op_load]);
    }
    out.seconds = std::chrono::duration<double>(last - first).count();
    out.mops = static_cast<double>(out.ops) / out.seconds / 1e6;
    out.cpu_share = wall > 0 ? cpu / wall : 0;
    if constexpr (has_events<Map>::value) {
      const double mops = static_cast<double>(out.ops) / 1e6;
      const auto per_mop = [mops](std::uint64_t a, std::uint64_t b) {
        return mops > 0 ? static_cast<double>(b - a) / mops : 0.0;
      };
      out.rebuilds_per_mop = per_mop(events0.rebuilds, events1.rebuilds);
      out.promotions_per_mop = per_mop(events0.promotions, events1.promotions);
      out.misses_per_mop = per_mop(events0.misses, events1.misses);
    }
    const double tpn = cycle_clock::ticks_per_ns();
    out.samples = all.count();
    out.p50 = all.quantile(0.50) / tpn;
    out.p99 = all.quantile(0.99) / tpn;
    out.p999 = all.quantile(0.999) / tpn;
    if (loads.count() != 0) {
      out.load_p50 = loads.quantile(0.50) / tpn;
      out.load_p99 = loads.quantile(0.99) / tpn;
      out.load_p999 = loads.quantile(0.999) / tpn;
    }

    const std::size_t final_size = map_->size();
    if (c_.mix->kind == mix_kind::read_write) {
      if (misses != 0) out.check = std::to_string(misses) + " loads of present keys missed";
      if (final_size != c_.size) out.check = "size changed to " + std::to_string(final_size);
    } else if (c_.mix->kind == mix_kind::churn) {
      const std::uint64_t lo = c_.size > c_.threads ? c_.size - c_.threads : 0;
      if (final_size < lo || final_size > c_.size + c_.threads)
        out.check = "churn size drifted to " + std::to_string(final_size);
    } else if (c_.mix->kind == mix_kind::load_or_store) {
      if (final_size < c_.size)
        out.check = "load_or_store lost keys: size " + std::to_string(final_size);
    }
    return out;
  }

 private:
  /// The map's own event counts (adapters/numamap.hpp, map_events), where it keeps them;
  /// for the others nothing (their rows keep -1).
  auto events() const {
    if constexpr (has_events<Map>::value) {
      return map_->events();
    } else {
      return 0;
    }
  }
  cell c_;
  Keys keys_;
  row base_;
  std::unique_ptr<Map> map_;
};

// ------------------------------------------------------------------------------------------
// Correctness smoke test, before anything is timed

template <class Map, class Keys>
std::string smoke_sequential(const Keys& keys, std::uint64_t key_space) {
  Map map;
  std::unordered_map<std::uint64_t, value_t> model;  // by key number
  wyrand rng(42);
  for (int step = 0; step < 200000; ++step) {
    const std::uint64_t r = rng.next();
    const std::uint64_t i = r % key_space;
    const value_t v = r >> 8;
    value_t got = 0;
    switch ((r >> 40) % 4) {
      case 0: {
        const bool found = map.load(keys(i), got);
        const auto it = model.find(i);
        if (found != (it != model.end()) || (found && got != it->second))
          return "load disagrees with the model at step " + std::to_string(step);
        break;
      }
      case 1:
        map.store(keys(i), v);
        model[i] = v;
        break;
      case 2: {
        const auto res = map.load_or_store(keys(i), v);
        const auto ins = model.try_emplace(i, v);
        if (res.second != !ins.second || res.first != ins.first->second)
          return "load_or_store disagrees with the model at step " + std::to_string(step);
        break;
      }
      default: {
        const bool erased = map.erase(keys(i));
        if (erased != (model.erase(i) != 0))
          return "erase disagrees with the model at step " + std::to_string(step);
      }
    }
  }
  if (map.size() != model.size()) return "size disagrees with the model";
  return "";
}

template <class Map>
std::string smoke_concurrent() {
  Map map;
  constexpr unsigned threads = 4;
  constexpr std::uint64_t per = 20000;
  std::vector<std::string> errors(threads);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      auto& err = errors[t];
      for (std::uint64_t j = 0; j < per; ++j) {
        const std::uint64_t i = j * threads + t;
        const auto r = map.load_or_store(key_u64(i), i);
        if (r.second || r.first != i) err = "load_or_store of a fresh key did not insert";
      }
      for (std::uint64_t j = 0; j < per; ++j) {
        const std::uint64_t i = j * threads + t;
        value_t v = 0;
        if (!map.load(key_u64(i), v) || v != i) err = "a stored key was not found";
        const auto r = map.load_or_store(key_u64(i), i + 1);
        if (!r.second || r.first != i) err = "load_or_store of a present key did not load";
      }
      for (std::uint64_t j = 0; j < per; j += 2) {
        const std::uint64_t i = j * threads + t;
        if (!map.erase(key_u64(i))) err = "erase of a present key returned false";
        if (map.erase(key_u64(i))) err = "erase of an erased key returned true";
      }
    });
  }
  for (auto& th : ts) th.join();
  for (const auto& e : errors)
    if (!e.empty()) return e;
  if (map.size() != threads * per / 2) return "size after the concurrent phase is wrong";
  for (std::uint64_t i = 0; i < threads * per; ++i) {
    value_t v = 0;
    const bool found = map.load(key_u64(i), v);
    const bool want = ((i / threads) % 2) == 1;
    if (found != want || (found && v != i)) return "the concurrent phase left a wrong key set";
  }
  return "";
}

// ------------------------------------------------------------------------------------------
// The registry of maps

struct map_entry {
  std::string name;
  bool thread_safe = true;
  bool by_default = true;                 // false: runs only when --maps names it
  std::function<std::string()> smoke;     // "" when correct
  std::function<std::string()> describe;  // extra words for meta.json
  std::function<std::unique_ptr<prepared>(const cell&, const run_options&)> prepare;
};

template <template <class, class> class Adapter>
map_entry make_entry() {
  using map64 = Adapter<std::uint64_t, value_t>;
  using mapstr = Adapter<std::string, value_t>;
  map_entry e;
  e.name = map64::name;
  e.thread_safe = map64::thread_safe;
  e.smoke = [] {
    std::string err = smoke_sequential<map64>(u64_keys{}, 4096);
    if (!err.empty()) return "uint64 keys: " + err;
    const auto& table = string_table(4096);
    err = smoke_sequential<mapstr>(string_keys{&table}, 4096);
    if (!err.empty()) return "string keys: " + err;
    if (map64::thread_safe) {
      err = smoke_concurrent<map64>();
      if (!err.empty()) return "concurrent: " + err;
    }
    return std::string();
  };
  e.describe = [] {
    if constexpr (has_describe<map64>::value) {
      map64 m;
      return m.describe();
    } else {
      return std::string();
    }
  };
  e.prepare = [](const cell& c, const run_options& opt) -> std::unique_ptr<prepared> {
    if (c.mix->zipf) (void)zipf_ranks(c.size);  // built here, single-threaded, untimed
    if (c.mix->string_keys) {
      const auto& table = string_table(c.size);
      return std::make_unique<prepared_map<mapstr, string_keys>>(mapstr::name, c,
                                                                 string_keys{&table}, opt);
    }
    return std::make_unique<prepared_map<map64, u64_keys>>(map64::name, c, u64_keys{}, opt);
  };
  return e;
}

std::vector<map_entry> all_maps() {
  std::vector<map_entry> v;
#if NUMAMAP_BENCH_HAVE_NUMAMAP
  v.push_back(make_entry<numamap_adapter>());
  // numamap with its read probe forced (decisions.md D33), for scripts/probe-sweep.sh.
  v.push_back(make_entry<numamap_tags_adapter>());
  v.back().by_default = false;
  v.push_back(make_entry<numamap_slots_adapter>());
  v.back().by_default = false;
#endif
  v.push_back(make_entry<std_shared_mutex_adapter>());
#if NUMAMAP_BENCH_HAVE_TBB
  v.push_back(make_entry<tbb_adapter>());
#endif
#if NUMAMAP_BENCH_HAVE_LIBCUCKOO
  v.push_back(make_entry<libcuckoo_adapter>());
#endif
#if NUMAMAP_BENCH_HAVE_ABSL
  v.push_back(make_entry<absl_adapter>());
#endif
  return v;
}

// ------------------------------------------------------------------------------------------
// Command line

struct config {
  std::vector<std::string> maps;  // empty: all found
  std::vector<std::string> mix_names;
  std::vector<std::uint64_t> sizes;
  std::vector<unsigned> threads;
  std::vector<cell> extra;  // cells added by --quick beyond the grid
  int reps = 3;
  int target_reps = 0;  // reps of the cells issue 4's targets read (0: `reps`)
  double seconds = 1.0;
  double warmup = -1;  // < 0: a quarter of seconds
  std::string out = "bench-results";
  bool pin = true;
  bool isolate = true;     // run each cell in a child process (a pristine heap per cell)
  std::string child_cell;  // internal: this process is the child running one cell
  std::string child_csv;   // internal: where the child appends its rows
  std::string mode = "full";
  std::size_t probe_cache_bytes = 0;  // --probe-cache-bytes (0: the machine's L2)
  bool printed_only = false;          // --list or --help: printed, nothing to run
};

// The cells issue 4's targets are read from (bench/plot.py, targets): read100 at 1 thread
// with 100K and 10M keys, and the 2-thread cells at 100K keys. A noisy machine moves one
// 0.2 s run by 2x and more (docs/benchmarks.md, "Noise"); more repetitions of these cells
// make the median that decides a target steadier at little cost.
bool is_target_cell(const cell& c) {
  const std::string mix = c.mix->name;
  if (mix == "read100") return c.threads == 1 && (c.size == 100000 || c.size == 10000000);
  static const char* const two_thread[] = {"read99", "read95",  "read95_zipf",
                                           "los83",  "mixed50", "churn"};
  return c.threads == 2 && c.size == 100000 &&
         std::find(std::begin(two_thread), std::end(two_thread), mix) != std::end(two_thread);
}

int cell_reps(const cell& c, const config& cfg) {
  return cfg.target_reps > 0 && is_target_cell(c) ? cfg.target_reps : cfg.reps;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

/// The number an option's whole value spells, or an error that names the option (std::stoi
/// and its kin take a prefix such as "3x", and say only "stoi" of what they cannot read).
template <class T>
T option_number(const std::string& option, const std::string& v) {
  std::size_t pos = 0;
  T n{};
  try {
    if constexpr (std::is_floating_point_v<T>) {
      n = static_cast<T>(std::stod(v, &pos));
    } else if constexpr (std::is_signed_v<T>) {
      n = static_cast<T>(std::stoi(v, &pos));
    } else {
      n = static_cast<T>(std::stoull(v, &pos));
    }
  } catch (const std::logic_error&) {
    pos = 0;  // not a number, or out of range
  }
  const bool negative = std::is_unsigned_v<T> && v.find('-') != std::string::npos;
  if (v.empty() || pos != v.size() || negative)
    throw std::invalid_argument(option + " needs a number, not '" + v + "'");
  return n;
}

std::uint64_t parse_size(const std::string& s) {
  std::size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (const std::logic_error&) {
    throw std::invalid_argument("bad size '" + s + "' (use e.g. 1000, 100K, 10M)");
  }
  std::string suffix = s.substr(pos);
  double mult = 1;
  if (suffix == "K" || suffix == "k") {
    mult = 1e3;
  } else if (suffix == "M" || suffix == "m") {
    mult = 1e6;
  } else if (!suffix.empty()) {
    throw std::invalid_argument("bad size '" + s + "' (use e.g. 1000, 100K, 10M)");
  }
  const auto n = static_cast<std::uint64_t>(v * mult);
  if (n == 0 || n > (std::uint64_t{1} << 31))
    throw std::invalid_argument("size out of range: " + s);
  return n;
}

std::string size_label(std::uint64_t n) {
  if (n % 1000000 == 0) return std::to_string(n / 1000000) + "M";
  if (n % 1000 == 0) return std::to_string(n / 1000) + "K";
  return std::to_string(n);
}

/// --threads: counts and ranges ("1,2,4", "1-16"), each count a whole number in
/// 1..max_threads and each range ascending (before, std::stoul took "2x" as 2).
std::vector<unsigned> parse_threads(const std::string& s) {
  constexpr unsigned long long max_threads = 1024;
  const auto count = [&s](const std::string& item) {
    unsigned long long t = 0;
    try {
      t = option_number<unsigned long long>("--threads", item);
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("--threads needs counts such as 1,2,4 or 1-16, not '" + s + "'");
    }
    if (t == 0 || t > max_threads) {
      throw std::invalid_argument("--threads: " + item + " in '" + s +
                                  "' is not a thread count (1-" + std::to_string(max_threads) +
                                  ")");
    }
    return static_cast<unsigned>(t);
  };
  std::vector<unsigned> out;
  for (const auto& item : split(s)) {
    const auto dash = item.find('-');
    if (dash == std::string::npos) {
      out.push_back(count(item));
    } else {
      const unsigned lo = count(item.substr(0, dash));
      const unsigned hi = count(item.substr(dash + 1));
      if (lo > hi) throw std::invalid_argument("--threads: range '" + item + "' runs backwards");
      for (unsigned t = lo; t <= hi; ++t) out.push_back(t);
    }
  }
  if (out.empty()) throw std::invalid_argument("--threads needs a thread count, not '" + s + "'");
  return out;
}

std::vector<unsigned> default_threads() {
  const unsigned n = usable_cpus();
  std::vector<unsigned> out;
  for (unsigned t = 1; t < n; t *= 2) out.push_back(t);
  out.push_back(n);
  return out;
}

void usage() {
  std::printf(
      "numamap_compare: numamap against its peers, same workloads, one run, interleaved.\n"
      "usage: numamap_compare [options]\n"
      "  --quick            sizes 1K,100K, all mixes, the default threads, 3 reps of 0.2 s (7 of\n"
      "                     the target cells), plus read100 at 10M keys on 1 thread (< 5 min\n"
      "                     on 2 cores)\n"
      "  --smoke            a token run for CI: 1K keys, threads 1,2, 1 rep of 0.02 s\n"
      "  --maps LIST        maps to run (default: all found but numamap_tags and\n"
      "                     numamap_slots), e.g. numamap,tbb_chm\n"
      "  --mixes LIST       mixes to run (default: all)\n"
      "  --sizes LIST       e.g. 1K,100K,10M (default 1K,100K,10M)\n"
      "  --threads LIST     e.g. 1,2,4 or 1-16 (default powers of two up to the cpus, and\n"
      "                     the cpu count)\n"
      "  --reps N           repetitions of each cell, maps interleaved (default 3)\n"
      "  --target-reps N    repetitions of the cells the targets in docs/benchmarks.md read\n"
      "                     (default: --reps; --quick: 7)\n"
      "  --seconds S        timed seconds per run (default 1.0)\n"
      "  --warmup S         untimed seconds of the same mix before each run (default: a\n"
      "                     quarter of --seconds)\n"
      "  --out DIR          where results.csv and meta.json go (default bench-results)\n"
      "  --no-pin           do not pin worker threads to cpus\n"
      "  --no-isolate       run all cells in this process (default: each cell in a fresh\n"
      "                     child process, so every cell starts from a pristine heap)\n"
      "  --probe-cache-bytes N\n"
      "                     the cache size numamap sizes its read probe's choice against\n"
      "                     (options.probe_cache_bytes; default 0: this machine's L2)\n"
      "  --list             print the maps found and the mixes, then exit\n");
}

config parse(int argc, char** argv) {
  config cfg;
  cfg.sizes = {1000, 100000, 10000000};
  cfg.threads = default_threads();
  for (const auto& m : mixes) cfg.mix_names.emplace_back(m.name);
  std::vector<std::string> args(argv + 1, argv + argc);
  // Modes first, so explicit options given with them override their defaults.
  for (const auto& a : args) {
    if (a == "--quick") {
      cfg.mode = "quick";
      cfg.sizes = {1000, 100000};
      cfg.reps = 3;
      cfg.target_reps = 7;
      cfg.seconds = 0.2;
      cfg.threads = default_threads();
      cfg.extra.push_back({find_mix("read100"), 10000000, 1});
    } else if (a == "--smoke") {
      cfg.mode = "smoke";
      cfg.sizes = {1000};
      cfg.threads = {1, 2};
      cfg.reps = 1;
      cfg.seconds = 0.02;
      cfg.out = "bench-smoke";
    }
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string val;
    const auto eq = a.find('=');
    const bool has_eq = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (has_eq) {
      val = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto value = [&]() -> std::string {
      if (has_eq) return val;
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      return args[++i];
    };
    static const char* const grid_options[] = {"--maps", "--mixes",       "--sizes",   "--threads",
                                               "--reps", "--target-reps", "--seconds", "--warmup"};
    if (cfg.mode == "full" &&
        std::find(std::begin(grid_options), std::end(grid_options), a) != std::end(grid_options))
      cfg.mode = "custom";
    if (a == "--quick" || a == "--smoke") {
    } else if (a == "--maps") {
      cfg.maps = split(value());
    } else if (a == "--mixes") {
      cfg.mix_names = split(value());
      for (const auto& m : cfg.mix_names)
        if (find_mix(m) == nullptr)
          throw std::invalid_argument("unknown mix '" + m + "' (see --list)");
    } else if (a == "--sizes") {
      cfg.sizes.clear();
      for (const auto& s : split(value())) cfg.sizes.push_back(parse_size(s));
    } else if (a == "--threads") {
      cfg.threads = parse_threads(value());
    } else if (a == "--reps") {
      cfg.reps = option_number<int>(a, value());
    } else if (a == "--target-reps") {
      cfg.target_reps = option_number<int>(a, value());
    } else if (a == "--seconds") {
      cfg.seconds = option_number<double>(a, value());
    } else if (a == "--warmup") {
      cfg.warmup = option_number<double>(a, value());
    } else if (a == "--out") {
      cfg.out = value();
    } else if (a == "--no-pin") {
      cfg.pin = false;
    } else if (a == "--no-isolate") {
      cfg.isolate = false;
    } else if (a == "--probe-cache-bytes") {
      cfg.probe_cache_bytes = option_number<std::size_t>(a, value());
    } else if (a == "--child-cell") {
      cfg.child_cell = value();
    } else if (a == "--child-csv") {
      cfg.child_csv = value();
    } else if (a == "--list") {
      std::printf("maps:\n");
      for (const auto& m : all_maps())
        std::printf("  %-18s %s%s\n", m.name.c_str(), m.thread_safe ? "" : "(1 thread only)",
                    m.by_default ? "" : "(only when --maps names it)");
      std::printf("not built: %s\n", NUMAMAP_BENCH_SKIPPED);
      std::printf("mixes:\n");
      for (const auto& m : mixes) std::printf("  %-12s %s\n", m.name, m.what);
      cfg.printed_only = true;
      return cfg;
    } else if (a == "--help" || a == "-h") {
      usage();
      cfg.printed_only = true;
      return cfg;
    } else {
      usage();
      throw std::invalid_argument("unknown option '" + a + "'");
    }
  }
  if (cfg.reps < 1 || cfg.target_reps < 0 || cfg.seconds <= 0)
    throw std::invalid_argument("--reps and --seconds must be > 0, --target-reps >= 0");
  return cfg;
}

// ------------------------------------------------------------------------------------------
// Output

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += ' ';
    } else {
      out += ch;
    }
  }
  return out;
}

std::string first_line_with(const char* path, const char* prefix) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(prefix, 0) == 0) {
      const auto colon = line.find(':');
      std::string v = colon == std::string::npos ? line : line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "unknown";
}

void write_meta(const config& cfg, const std::vector<map_entry>& maps, int argc, char** argv,
                const std::string& load_start, const std::string& load_end) {
  std::ofstream f(cfg.out + "/meta.json");
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += std::string(i != 0 ? " " : "") + argv[i];
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc);
  utsname u{};
  uname(&u);
  // One "name": value line each; text is quoted and escaped, numbers and booleans are not.
  const auto text = [](const std::string& v) { return '"' + json_escape(v) + '"'; };
  const auto field = [&f, &text](const char* name, const auto& value) {
    f << "  " << text(name) << ": " << value << ",\n";
  };
  const auto boolean = [](bool b) { return b ? "true" : "false"; };
  f << "{\n";
  field("date", text(date));
  field("command", text(cmd));
  field("mode", text(cfg.mode));
  field("cpu_model", text(first_line_with("/proc/cpuinfo", "model name")));
  field("cpus", usable_cpus());
  field("memory", text(first_line_with("/proc/meminfo", "MemTotal")));
  field("kernel", text(std::string(u.sysname) + " " + u.release + " " + u.machine));
  field("compiler", text(NUMAMAP_BENCH_COMPILER));
  field("build_type", text(NUMAMAP_BENCH_BUILD_TYPE));
  field("flags", text(NUMAMAP_BENCH_CXX_FLAGS));
  field("seconds_per_run", cfg.seconds);
  field("warmup_seconds", cfg.warmup >= 0 ? cfg.warmup : cfg.seconds / 4);
  field("reps", cfg.reps);
  field("target_reps", cfg.target_reps > 0 ? cfg.target_reps : cfg.reps);
  field("pinned", boolean(cfg.pin));
  field("isolated_cells", boolean(cfg.isolate));
#if NUMAMAP_BENCH_HAVE_NUMAMAP
  field("probe_cache_bytes",
        cfg.probe_cache_bytes != 0 ? cfg.probe_cache_bytes : numamap::detail::l2_cache_bytes());
#endif
  field("load_average_start", text(load_start));
  field("load_average_end", text(load_end));
  std::ostringstream latency;
  latency << "1 op in 64 timed with " << (NUMAMAP_BENCH_RDTSC ? "lfence+rdtsc" : "steady_clock")
          << ", " << cycle_clock::ticks_per_ns() << " ticks/ns, timer overhead "
          << cycle_clock::overhead_ticks() << " ticks subtracted";
  field("latency", text(latency.str()));
  field("memory_measure",
        text("resident set delta (/proc/self/statm) across the prefill, after malloc_trim; "
             "alloc_bytes_per_entry from numamap stats() where present"));
  field("skipped", text(NUMAMAP_BENCH_SKIPPED));
  std::string list;
  for (const auto& m : maps) {
    list += std::string(list.empty() ? "" : ", ") + "{" + text("name") + ": " + text(m.name) +
            ", " + text("thread_safe") + ": " + boolean(m.thread_safe) + ", " + text("describe") +
            ": " + text(m.describe()) + "}";
  }
  field("maps", "[" + list + "]");
  std::string kinds;
  for (const auto& m : mixes)
    kinds += std::string(kinds.empty() ? "" : ", ") + text(m.name) + ": " + text(m.what);
  f << "  " << text("mixes") << ": {" << kinds << "}\n}\n";
}

const char* csv_header =
    "map,mix,size,threads,rep,ops,seconds,mops,p50_ns,p99_ns,p999_ns,load_p50_ns,load_p99_ns,"
    "load_p999_ns,rss_bytes_per_entry,alloc_bytes_per_entry,prefill_s,cpu_share,samples,handoff_ns,"
    "rebuilds_per_mop,promotions_per_mop,misses_per_mop,check\n";

void write_row(std::FILE* f, const row& r) {
  std::fprintf(f,
               "%s,%s,%" PRIu64 ",%u,%d,%" PRIu64
               ",%.4f,%.3f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.2f,"
               "%.2f,%.3f,%.3f,%" PRIu64 ",%.1f,%.2f,%.2f,%.2f,%s\n",
               r.map.c_str(), r.mix->name, r.size, r.threads, r.rep, r.ops, r.seconds, r.mops,
               r.p50, r.p99, r.p999, r.load_p50, r.load_p99, r.load_p999, r.rss_bytes_per_entry,
               r.alloc_bytes_per_entry, r.prefill_seconds, r.cpu_share, r.samples, r.handoff_ns,
               r.rebuilds_per_mop, r.promotions_per_mop, r.misses_per_mop, r.check.c_str());
  std::fflush(f);
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : ",") + x;
  return out;
}

// Runs one cell in this process: every map `reps` times, interleaved. Rows go to `f`.
int run_cell(const cell& c, const std::vector<const map_entry*>& runnable, const config& cfg,
             const run_options& opt, std::FILE* f) {
  int failures = 0;
  const int reps = cell_reps(c, cfg);
  auto report = [&](row r, int rep) {
    r.rep = rep;
    write_row(f, r);
    std::printf("  %-18s %9.2f Mops/s  p50 %6.0f ns  p99 %7.0f ns  %6.1f B/entry  cpu %.2f%s%s\n",
                r.map.c_str(), r.mops, r.p50, r.p99, r.rss_bytes_per_entry, r.cpu_share,
                r.check == "ok" ? "" : "  CHECK FAILED: ", r.check == "ok" ? "" : r.check.c_str());
    std::fflush(stdout);
    if (r.check != "ok") ++failures;
  };
  if (c.mix->kind == mix_kind::read_write) {
    // The key set stays: prefill every map once, then interleave the timed runs.
    std::vector<std::unique_ptr<prepared>> live;
    live.reserve(runnable.size());
    for (const map_entry* m : runnable) live.push_back(m->prepare(c, opt));
    for (int rep = 0; rep < reps; ++rep)
      for (std::size_t k = 0; k < live.size(); ++k)
        report(live[(k + static_cast<std::size_t>(rep)) % live.size()]->run(opt), rep);
  } else {
    for (int rep = 0; rep < reps; ++rep) {
      for (std::size_t k = 0; k < runnable.size(); ++k) {
        const map_entry& m = *runnable[(k + static_cast<std::size_t>(rep)) % runnable.size()];
        report(m.prepare(c, opt)->run(opt), rep);
      }
    }
  }
  return failures;
}

// Runs one cell in a child process (this executable with --child-cell) and appends its rows
// to `f`. Returns the number of failed runs (a child that died counts as one).
int run_cell_isolated(const cell& c, const std::vector<const map_entry*>& runnable,
                      const config& cfg, const run_options& opt, std::FILE* f) {
  std::vector<std::string> names;
  names.reserve(runnable.size());
  for (const map_entry* m : runnable) names.push_back(m->name);
  const std::string part = cfg.out + "/.cell.csv";
  std::remove(part.c_str());
  char buf[64];
  std::vector<std::string> args = {
      "/proc/self/exe",
      "--child-cell",
      std::string(c.mix->name) + ":" + std::to_string(c.size) + ":" + std::to_string(c.threads),
      "--child-csv",
      part,
      "--maps",
      join(names),
      "--reps",
      std::to_string(cell_reps(c, cfg))};
  std::snprintf(buf, sizeof buf, "%.17g", opt.seconds);
  args.insert(args.end(), {"--seconds", buf});
  std::snprintf(buf, sizeof buf, "%.17g", opt.warmup);
  args.insert(args.end(), {"--warmup", buf});
  if (!opt.pin) args.emplace_back("--no-pin");
  if (cfg.probe_cache_bytes != 0)
    args.insert(args.end(), {"--probe-cache-bytes", std::to_string(cfg.probe_cache_bytes)});
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(f);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  int failures = 0;
  int rows = 0;
  std::ifstream in(part);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++rows;
    std::fputs((line + "\n").c_str(), f);
    if (line.substr(line.rfind(',') + 1) != "ok") ++failures;
  }
  std::fflush(f);
  std::remove(part.c_str());
  if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && failures == 0)) {
    std::fprintf(stderr, "FAIL: the child process for %s size=%s threads=%u ended with status %d\n",
                 c.mix->name, size_label(c.size).c_str(), c.threads, status);
    ++failures;
  }
  if (rows == 0 && failures == 0) ++failures;
  return failures;
}

int run(int argc, char** argv) {
  fix_mmap_threshold();
  const config cfg = parse(argc, argv);
  if (cfg.printed_only) return 0;
  std::vector<map_entry> maps;
  for (auto& m : all_maps()) {
    const bool named = std::find(cfg.maps.begin(), cfg.maps.end(), m.name) != cfg.maps.end();
    if (named || (cfg.maps.empty() && m.by_default)) maps.push_back(std::move(m));
  }
  for (const auto& want : cfg.maps) {
    if (std::none_of(maps.begin(), maps.end(), [&](const map_entry& m) { return m.name == want; }))
      std::printf("note: map '%s' is not built here (not built: %s)\n", want.c_str(),
                  NUMAMAP_BENCH_SKIPPED);
  }
  if (maps.empty()) throw std::invalid_argument("no map selected");

#if NUMAMAP_BENCH_HAVE_NUMAMAP
  probe_cache_bytes = cfg.probe_cache_bytes;
#endif
  run_options opt;
  opt.seconds = cfg.seconds;
  opt.warmup = cfg.warmup >= 0 ? cfg.warmup : cfg.seconds / 4;
  opt.pin = cfg.pin;

  if (!cfg.child_cell.empty()) {
    // The child: one cell, rows appended to --child-csv, no smoke tests (the parent ran them).
    const auto p1 = cfg.child_cell.find(':');
    const auto p2 = cfg.child_cell.rfind(':');
    if (p1 == std::string::npos || p1 == p2) throw std::invalid_argument("bad --child-cell");
    const mix_def* mix = find_mix(cfg.child_cell.substr(0, p1));
    if (mix == nullptr) throw std::invalid_argument("bad --child-cell mix");
    const cell c{mix, std::stoull(cfg.child_cell.substr(p1 + 1, p2 - p1 - 1)),
                 static_cast<unsigned>(std::stoul(cfg.child_cell.substr(p2 + 1)))};
    std::vector<const map_entry*> runnable;
    for (const auto& m : maps)
      if (m.thread_safe || c.threads == 1) runnable.push_back(&m);
    std::FILE* f = std::fopen(cfg.child_csv.c_str(), "a");
    if (f == nullptr) throw std::runtime_error("cannot write " + cfg.child_csv);
    const int failures = run_cell(c, runnable, cfg, opt, f);
    std::fclose(f);
    return failures != 0 ? 1 : 0;
  }
  std::printf("not built (missing at configure time): %s\n", NUMAMAP_BENCH_SKIPPED);

  mkdir(cfg.out.c_str(), 0755);
  const std::string load_start = load_average();
  write_meta(cfg, maps, argc, argv, load_start, "(running)");

  // 1. Correctness first.
  for (const auto& m : maps) {
    const std::string err = m.smoke();
    if (!err.empty()) {
      std::fprintf(stderr, "FAIL: %s failed its correctness smoke test: %s\n", m.name.c_str(),
                   err.c_str());
      return 1;
    }
    std::printf("smoke ok: %s\n", m.name.c_str());
  }

  // 2. The cells: the grid, then the extras, filtered by the same options.
  std::vector<cell> cells;
  for (const auto& mn : cfg.mix_names)
    for (auto n : cfg.sizes)
      for (auto t : cfg.threads) cells.push_back({find_mix(mn), n, t});
  for (const auto& c : cfg.extra) {
    const bool mix_ok =
        std::find(cfg.mix_names.begin(), cfg.mix_names.end(), c.mix->name) != cfg.mix_names.end();
    const bool dup = std::any_of(cells.begin(), cells.end(), [&](const cell& x) {
      return x.mix == c.mix && x.size == c.size && x.threads == c.threads;
    });
    if (mix_ok && !dup) cells.push_back(c);
  }

  const std::string csv = cfg.out + "/results.csv";
  std::FILE* f = std::fopen(csv.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("cannot write " + csv);
  std::fputs(csv_header, f);
  int failures = 0;
  const auto t_start = std::chrono::steady_clock::now();
  for (std::size_t ci = 0; ci < cells.size(); ++ci) {
    const cell& c = cells[ci];
    std::vector<const map_entry*> runnable;
    for (const auto& m : maps)
      if (m.thread_safe || c.threads == 1) runnable.push_back(&m);
    if (runnable.empty()) continue;
    std::printf("[%zu/%zu] %s size=%s threads=%u\n", ci + 1, cells.size(), c.mix->name,
                size_label(c.size).c_str(), c.threads);
    failures += cfg.isolate ? run_cell_isolated(c, runnable, cfg, opt, f)
                            : run_cell(c, runnable, cfg, opt, f);
  }
  std::fclose(f);
  write_meta(cfg, maps, argc, argv, load_start, load_average());
  std::printf("wrote %s and %s/meta.json in %.0f s\n", csv.c_str(), cfg.out.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
  if (failures != 0) {
    std::fprintf(stderr, "FAIL: %d runs failed their checks (see the check column)\n", failures);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace numamap::bench

int main(int argc, char** argv) {
  try {
    return numamap::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "numamap_compare: %s\n", e.what());
    return 2;
  }
}
