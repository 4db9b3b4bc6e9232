// bench/layout_bench.cpp — what one read hit costs with numamap's table, with bare
// prototypes of three table layouts (numamap's own among them), and with
// absl::flat_hash_map: the evidence behind docs/performance.md's "read path" analysis
// (decisions.md D19). One thread, uint64 keys and
// values, uniform random hits, keys key_u64(i) for i in [0, size) as in numamap_compare.
//
//   numamap        numamap::concurrent_map::load (entries in the probed slots since D19;
//                  before, a slot held a tagged pointer to an entry allocated apart)
//   inline_proto   a prototype, not a map: the same 16 shards, hash mixer, epoch pin and unpin
//                  stores, per-thread hit counter and seqlock read as numamap's hit path, the
//                  entry {ctl, hash, word, key} (24 bytes) in the probed slot, and nothing
//                  else. Filled once, never written: the floor of this layout's read path.
//   bare_proto     inline_proto's table with nothing of a concurrent map: no pin, no counter,
//                  no seqlock, only the probe (hash and key compared) and the word's load;
//                  "spread" 1 is numamap's capacity, 2 twice that (half the load). It asks
//                  whether trimming numamap's read-path overheads could ever reach the target.
//   swiss_proto    a second prototype: the same pin, counter and seqlock, the same 24-byte
//                  entries, but found through one control byte per slot (7 bits of hash,
//                  or empty) probed 16 at a time with SSE2, as absl's SwissTable does; load
//                  up to 7/8. Two lines per hit (control group, entry), a smaller table.
//   bucket_proto   a third: buckets of one cache line holding three entries (ctl words, keys,
//                  words side by side: 21 bytes per entry), compared without branches, found
//                  by a multiply-shift (any bucket count), filled to 60/75/85 % (the "load"
//                  argument); an overflow bit per bucket ends a miss.
//   group_proto    a fourth: what a SwissTable-like read table could be with numamap's read
//                  protocol. 16-byte slots {key, word}; per group of 16 slots a control
//                  byte each (7 bits of hash, or empty) and a seqlock word, apart from the
//                  slots (2 bytes per slot, a table of them stays in L2); load up to 7/8;
//                  the same pin and counter. A hit reads the group's seqlock and control
//                  bytes, one slot, and the seqlock again. (No writer: the write protocol,
//                  a lock per group, is not built.)
//   numamap_heap   numamap with heap_memory instead of the default numa_memory: whether the
//                  arena's mappings (huge pages, node binding) change the hit's cost
//   absl           absl::flat_hash_map::find, no lock (the ceiling of issue 4)
//
// The prototypes answer "would another layout reach the target?" (docs/performance.md, "read
// path"); run them interleaved, e.g. --benchmark_enable_random_interleaving=true
// --benchmark_repetitions=5, since the machines drift.
//
// Sizes: NUMAMAP_BENCH_SIZES (default "100000"); e.g. NUMAMAP_BENCH_SIZES=100000,10000000.
#include <benchmark/benchmark.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <numamap/numamap.hpp>
#include <vector>

#include "workload.hpp"

#if NUMAMAP_BENCH_HAVE_ABSL
#include <absl/container/flat_hash_map.h>
#endif

namespace {

using numamap::bench::key_u64;
using numamap::bench::wyrand;

// ---- what the prototypes share with numamap's hit path -----------------------------------------

// 16 shards chosen by the top bits of the mixed hash (numamap's default on 2 cpus), the pin
// and unpin stores of an epoch record (compiler barrier only, as numamap with membarrier), and
// a per-thread hit counter per shard.
class proto_common {
 public:
  static constexpr std::size_t shards = 16;

 protected:
  static std::size_t shard_of(std::uint64_t h) {
    return static_cast<std::size_t>(((h >> 48) * shards) >> 16);
  }
  /// Keys per shard for keys key_u64(0..n): each prototype sizes a shard from its count.
  static std::array<std::uint64_t, shards> keys_per_shard(std::uint64_t n) {
    std::array<std::uint64_t, shards> per{};
    for (std::uint64_t i = 0; i < n; ++i) ++per[shard_of(numamap::detail::mix64(key_u64(i)))];
    return per;
  }
  /// The smallest power of two, at least 16, that holds `keys` at load <= 7/8 (SwissTable's
  /// maximum), for the prototypes probed by control bytes.
  static std::size_t capacity_at_7_8(std::uint64_t keys) {
    std::size_t cap = 16;
    while (keys * 8 > cap * 7) cap *= 2;
    return cap;
  }
  /// Announces (epoch | active); returns the epoch for unpin.
  std::uint64_t pin() {
    const std::uint64_t e = epoch_.load(std::memory_order_acquire);
    record_.word.store((e << 1) | 1U, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return e;
  }
  void unpin(std::uint64_t e) { record_.word.store(e << 1, std::memory_order_release); }
  void count_hit(std::size_t s) {
    auto& hits = record_.hits[s];
    hits.store(hits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

 private:
  struct alignas(64) record {
    std::atomic<std::uint64_t> word{0};
    std::atomic<std::uint64_t> hits[shards] = {};
  };
  std::atomic<std::uint64_t> epoch_{1};
  record record_;
};

// ---- the prototype: entries inline in the probed slots ---------------------------------------

class inline_proto : proto_common {
 public:
  /// spread: a multiple of numamap's capacity (1: the same table as numamap's).
  explicit inline_proto(std::uint64_t n, std::size_t spread = 1) {
    // Per shard, the capacity numamap's growth reaches: the smallest power of two that holds
    // the shard's keys at its maximum load (13/16).
    const auto per = keys_per_shard(n);
    for (std::size_t s = 0; s < shards; ++s) {
      std::size_t cap = 8;
      while (!numamap::detail::within_max_load(per[s], cap)) cap *= 2;
      cap *= spread;
      tables_[s].mask = cap - 1;
      tables_[s].slots = std::make_unique<slot[]>(cap);
    }
    for (std::uint64_t i = 0; i < n; ++i) insert(key_u64(i), i);
  }

  bool load(std::uint64_t k, std::uint64_t& out) {
    const std::uint64_t h = numamap::detail::mix64(k);
    const std::size_t s = shard_of(h);
    const std::uint64_t e = pin();
    std::uint32_t c1 = 0;
    bool found = false;
    if (const slot* sl = probe(tables_[s], h, k, c1)) {
      const std::uint64_t w = sl->word.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (sl->ctl.load(std::memory_order_relaxed) == c1) {  // seqlock: no writer came between
        count_hit(s);
        out = w;
        found = true;
      }
    }
    unpin(e);
    return found;
  }

  /// The same probe, bare: no pin, no counter, no seqlock.
  bool load_bare(std::uint64_t k, std::uint64_t& out) const {
    const std::uint64_t h = numamap::detail::mix64(k);
    std::uint32_t c1 = 0;
    const slot* sl = probe(tables_[shard_of(h)], h, k, c1);
    if (sl == nullptr) return false;
    out = sl->word.load(std::memory_order_relaxed);
    return true;
  }

 private:
  struct slot {
    std::atomic<std::uint32_t> ctl{0};  // 0: empty; else full | state | count
    std::uint32_t hash = 0;
    std::atomic<std::uint64_t> word{0};
    std::uint64_t key = 0;
  };
  static_assert(sizeof(slot) == 24);
  struct table {
    std::size_t mask = 0;
    std::unique_ptr<slot[]> slots;
  };

  /// Linear probing from the key's home slot: the key's slot (its ctl as loaded into `c`), or
  /// null at the first empty slot.
  static const slot* probe(const table& t, std::uint64_t h, std::uint64_t k, std::uint32_t& c) {
    const auto bucket = static_cast<std::uint32_t>(h);
    for (std::size_t i = bucket & t.mask;; i = (i + 1) & t.mask) {
      const slot& sl = t.slots[i];
      c = sl.ctl.load(std::memory_order_acquire);
      if (c == 0) return nullptr;  // empty: the key is absent
      if (sl.hash == bucket && sl.key == k) return &sl;
    }
  }

  void insert(std::uint64_t k, std::uint64_t v) {
    const std::uint64_t h = numamap::detail::mix64(k);
    const std::size_t s = shard_of(h);
    table& t = tables_[s];
    std::size_t i = static_cast<std::uint32_t>(h) & t.mask;
    while (t.slots[i].ctl.load(std::memory_order_relaxed) != 0) i = (i + 1) & t.mask;
    t.slots[i].hash = static_cast<std::uint32_t>(h);
    t.slots[i].key = k;
    t.slots[i].word.store(v, std::memory_order_relaxed);
    t.slots[i].ctl.store(8, std::memory_order_release);  // full, present, count 1
  }

  table tables_[shards];
};

// ---- a second prototype: one control byte per slot, probed 16 at a time ---------------------
#if defined(__SSE2__)

class swiss_proto : proto_common {
 public:
  explicit swiss_proto(std::uint64_t n) {
    const auto per = keys_per_shard(n);
    for (std::size_t s = 0; s < shards; ++s) {
      const std::size_t cap = capacity_at_7_8(per[s]);
      tables_[s].mask = cap - 1;
      tables_[s].ctrl = std::make_unique<std::atomic<std::uint64_t>[]>(cap / 8);
      for (std::size_t i = 0; i < cap / 8; ++i) tables_[s].ctrl[i].store(0x8080808080808080ULL);
      tables_[s].slots = std::make_unique<slot[]>(cap);
    }
    for (std::uint64_t i = 0; i < n; ++i) insert(key_u64(i), i);
  }

  bool load(std::uint64_t k, std::uint64_t& out) {
    const std::uint64_t h = numamap::detail::mix64(k);
    const std::size_t s = shard_of(h);
    const std::uint64_t e = pin();
    const table& t = tables_[s];
    const auto bucket = static_cast<std::uint32_t>(h);
    const __m128i tag = _mm_set1_epi8(static_cast<char>(bucket & 0x7f));
    const __m128i empty = _mm_set1_epi8(static_cast<char>(0x80));
    const bool found = find(t, s, bucket, k, tag, empty, out);
    unpin(e);
    return found;
  }

 private:
  struct slot {
    std::atomic<std::uint32_t> ctl{0};
    std::uint32_t hash = 0;
    std::atomic<std::uint64_t> word{0};
    std::uint64_t key = 0;
  };
  struct table {
    std::size_t mask = 0;
    std::unique_ptr<std::atomic<std::uint64_t>[]> ctrl;
    std::unique_ptr<slot[]> slots;
  };

  // Probes groups of 16 control bytes from the bucket's group; a group with an empty byte
  // ends a miss.
  bool find(const table& t, std::size_t s, std::uint32_t bucket, std::uint64_t k, __m128i tag,
            __m128i empty, std::uint64_t& out) {
    std::size_t g = (bucket >> 7) & t.mask & ~std::size_t{15};
    for (;;) {
      const __m128i grp =
          _mm_set_epi64x(static_cast<long long>(t.ctrl[g / 8 + 1].load(std::memory_order_relaxed)),
                         static_cast<long long>(t.ctrl[g / 8].load(std::memory_order_relaxed)));
      auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(grp, tag)));
      while (m != 0) {
        const slot& sl = t.slots[g + static_cast<unsigned>(__builtin_ctz(m))];
        const std::uint32_t c1 = sl.ctl.load(std::memory_order_acquire);
        if (c1 != 0 && sl.key == k) {
          const std::uint64_t w = sl.word.load(std::memory_order_relaxed);
          std::atomic_thread_fence(std::memory_order_acquire);
          if (sl.ctl.load(std::memory_order_relaxed) != c1) return false;  // not in a bench
          count_hit(s);
          out = w;
          return true;
        }
        m &= m - 1;
      }
      if (_mm_movemask_epi8(_mm_cmpeq_epi8(grp, empty)) != 0) return false;
      g = (g + 16) & t.mask;
    }
  }

  void insert(std::uint64_t k, std::uint64_t v) {
    const std::uint64_t h = numamap::detail::mix64(k);
    const std::size_t s = shard_of(h);
    table& t = tables_[s];
    const auto bucket = static_cast<std::uint32_t>(h);
    std::size_t i = (bucket >> 7) & t.mask & ~std::size_t{15};
    auto byte = [&](std::size_t j) {
      return (t.ctrl[j / 8].load(std::memory_order_relaxed) >> (8 * (j % 8))) & 0xff;
    };
    while (byte(i) != 0x80) i = (i + 1) & t.mask;
    t.slots[i].hash = bucket;
    t.slots[i].key = k;
    t.slots[i].word.store(v, std::memory_order_relaxed);
    t.slots[i].ctl.store(8, std::memory_order_release);
    const std::uint64_t old = t.ctrl[i / 8].load(std::memory_order_relaxed);
    const std::uint64_t sh = 8 * (i % 8);
    t.ctrl[i / 8].store((old & ~(std::uint64_t{0xff} << sh)) | (std::uint64_t{bucket & 0x7f} << sh),
                        std::memory_order_release);
  }

  table tables_[shards];
};

// ---- a fourth prototype: 16-byte slots found through control bytes, a seqlock per group -------

class group_proto : proto_common {
 public:
  explicit group_proto(std::uint64_t n) {
    const auto per = keys_per_shard(n);
    for (std::size_t s = 0; s < shards; ++s) {
      const std::size_t cap = capacity_at_7_8(per[s]);
      tables_[s].gmask = cap / 16 - 1;
      tables_[s].groups = std::make_unique<group[]>(cap / 16);
      tables_[s].slots = std::make_unique<slot[]>(cap);
    }
    for (std::uint64_t i = 0; i < n; ++i) insert(key_u64(i), i);
  }

  bool load(std::uint64_t k, std::uint64_t& out) {
    const std::uint64_t h = numamap::detail::mix64(k);
    const std::size_t s = shard_of(h);
    const std::uint64_t e = pin();
    const table& t = tables_[s];
    const __m128i tag = _mm_set1_epi8(static_cast<char>((h >> 32) & 0x7f));
    const __m128i empty = _mm_set1_epi8(static_cast<char>(0x80));
    std::size_t g = static_cast<std::uint32_t>(h) & t.gmask;
    bool found = false;
    for (;;) {
      const group& gp = t.groups[g];
      const std::uint64_t s1 = gp.seq.load(std::memory_order_acquire);
      const __m128i grp =
          _mm_set_epi64x(static_cast<long long>(gp.ctrl[1].load(std::memory_order_acquire)),
                         static_cast<long long>(gp.ctrl[0].load(std::memory_order_acquire)));
      auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(grp, tag)));
      while (m != 0) {
        const slot& sl = t.slots[g * 16 + static_cast<unsigned>(__builtin_ctz(m))];
        if (sl.key == k) {
          const std::uint64_t w = sl.word.load(std::memory_order_relaxed);
          std::atomic_thread_fence(std::memory_order_acquire);
          if (gp.seq.load(std::memory_order_relaxed) == s1 && (s1 & 1) == 0) {
            count_hit(s);
            out = w;
            found = true;
          }
          unpin(e);
          return found;
        }
        m &= m - 1;
      }
      if (_mm_movemask_epi8(_mm_cmpeq_epi8(grp, empty)) != 0) break;
      g = (g + 1) & t.gmask;
    }
    unpin(e);
    return found;
  }

 private:
  struct alignas(32) group {
    std::atomic<std::uint64_t> seq{0};
    std::atomic<std::uint64_t> ctrl[2] = {{0x8080808080808080ULL}, {0x8080808080808080ULL}};
  };
  struct slot {
    std::uint64_t key = 0;
    std::atomic<std::uint64_t> word{0};
  };
  struct table {
    std::size_t gmask = 0;
    std::unique_ptr<group[]> groups;
    std::unique_ptr<slot[]> slots;
  };

  void insert(std::uint64_t k, std::uint64_t v) {
    const std::uint64_t h = numamap::detail::mix64(k);
    table& t = tables_[shard_of(h)];
    std::size_t g = static_cast<std::uint32_t>(h) & t.gmask;
    for (;;) {
      group& gp = t.groups[g];
      for (std::size_t j = 0; j < 16; ++j) {
        const std::uint64_t c = gp.ctrl[j / 8].load(std::memory_order_relaxed);
        const std::uint64_t sh = 8 * (j % 8);
        if (((c >> sh) & 0xff) != 0x80) continue;
        t.slots[g * 16 + j].key = k;
        t.slots[g * 16 + j].word.store(v, std::memory_order_relaxed);
        gp.ctrl[j / 8].store((c & ~(std::uint64_t{0xff} << sh)) | (((h >> 32) & 0x7f) << sh),
                             std::memory_order_release);
        gp.seq.store(gp.seq.load(std::memory_order_relaxed) + 2, std::memory_order_release);
        return;
      }
      g = (g + 1) & t.gmask;
    }
  }

  table tables_[shards];
};

#endif  // __SSE2__

// ---- a third prototype: buckets of one cache line, three entries each -------------------------

class bucket_proto : proto_common {
 public:
  bucket_proto(std::uint64_t n, double load) {
    const auto per = keys_per_shard(n);  // sized from the count, so no shard overflows
    for (std::size_t s = 0; s < shards; ++s) {
      const auto nb = static_cast<std::size_t>(static_cast<double>(per[s]) / (3 * load)) + 1;
      tables_[s].nb = nb;
      tables_[s].buckets = std::make_unique<bucket[]>(nb);
    }
    for (std::uint64_t i = 0; i < n; ++i) insert(key_u64(i), i);
  }

  bool load(std::uint64_t k, std::uint64_t& out) {
    const std::uint64_t h = numamap::detail::mix64(k);
    const std::size_t s = shard_of(h);
    const std::uint64_t e = pin();
    const table& t = tables_[s];
    std::size_t b = home(t, static_cast<std::uint32_t>(h));
    bool found = false;
    for (;;) {
      const bucket& bk = t.buckets[b];
      // The three keys compared without branches; the ctl word validates the match.
      const unsigned m = (bk.key[0].load(std::memory_order_relaxed) == k ? 1U : 0U) |
                         (bk.key[1].load(std::memory_order_relaxed) == k ? 2U : 0U) |
                         (bk.key[2].load(std::memory_order_relaxed) == k ? 4U : 0U);
      if (m != 0) {
        const auto j = static_cast<unsigned>(__builtin_ctz(m));
        const std::uint32_t c1 = bk.ctl[j].load(std::memory_order_acquire);
        if (c1 != 0) {
          const std::uint64_t w = bk.word[j].load(std::memory_order_relaxed);
          std::atomic_thread_fence(std::memory_order_acquire);
          if (bk.ctl[j].load(std::memory_order_relaxed) == c1) {
            count_hit(s);
            out = w;
            found = true;
          }
          break;
        }
      }
      if ((bk.flags.load(std::memory_order_relaxed) & 1U) == 0) break;  // nothing overflowed
      b = b + 1 == t.nb ? 0 : b + 1;
    }
    unpin(e);
    return found;
  }

  /// Buckets looked at per insertion, on average (a measure of the probe length).
  double buckets_per_insert() const {
    return static_cast<double>(probes_) / static_cast<double>(inserts_);
  }

 private:
  struct alignas(64) bucket {
    std::atomic<std::uint32_t> ctl[3] = {};
    std::uint8_t tag[3] = {};  // unused by uint64 keys; a hash tag for keys kept apart
    std::atomic<std::uint8_t> flags{0};
    std::atomic<std::uint64_t> key[3] = {};
    std::atomic<std::uint64_t> word[3] = {};
  };
  static_assert(sizeof(bucket) == 64);
  struct table {
    std::size_t nb = 0;
    std::unique_ptr<bucket[]> buckets;
  };

  static std::size_t home(const table& t, std::uint32_t bits) {
    return static_cast<std::size_t>((std::uint64_t{bits} * t.nb) >> 32);
  }

  void insert(std::uint64_t k, std::uint64_t v) {
    const std::uint64_t h = numamap::detail::mix64(k);
    const std::size_t s = shard_of(h);
    table& t = tables_[s];
    std::size_t b = home(t, static_cast<std::uint32_t>(h));
    ++inserts_;
    for (;;) {
      ++probes_;
      bucket& bk = t.buckets[b];
      for (unsigned j = 0; j < 3; ++j) {
        if (bk.ctl[j].load(std::memory_order_relaxed) == 0) {
          bk.key[j].store(k, std::memory_order_relaxed);
          bk.word[j].store(v, std::memory_order_relaxed);
          bk.ctl[j].store(8, std::memory_order_release);
          return;
        }
      }
      bk.flags.store(1, std::memory_order_relaxed);
      b = b + 1 == t.nb ? 0 : b + 1;
    }
  }

  table tables_[shards];
  std::uint64_t probes_ = 0, inserts_ = 0;
};

// ---- the benchmarks ----------------------------------------------------------------------------

template <class Map>
struct holder {
  std::unique_ptr<Map> map;
  std::uint64_t size = 0;
};

template <class Map, class Fill>
Map& prepared(holder<Map>& h, std::uint64_t n, Fill fill) {
  if (!h.map || h.size != n) {
    h.map.reset();
    h.map = fill(n);
    h.size = n;
  }
  return *h.map;
}

using numamap_t = numamap::concurrent_map<std::uint64_t, std::uint64_t>;
holder<numamap_t> g_numamap;
// std::equal_to<std::uint64_t>, as numamap_t's default: with it the map compares such keys
// by their bits (key_test_only, decisions.md D30); std::equal_to<> would not select that.
using numamap_heap_t = numamap::concurrent_map<
    std::uint64_t, std::uint64_t, std::hash<std::uint64_t>,
    std::equal_to<std::uint64_t>,  // NOLINT(modernize-use-transparent-functors)
    numamap::heap_memory>;
holder<numamap_heap_t> g_numamap_heap;
holder<inline_proto> g_inline;
holder<bucket_proto> g_bucket;
#if defined(__SSE2__)
holder<swiss_proto> g_swiss;
holder<group_proto> g_group;
#endif

/// numamap's read hit, on Map (numamap_t or numamap_heap_t), filled once per size.
template <class Map>
void time_numamap(benchmark::State& state, holder<Map>& h) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  Map& m = prepared(h, n, [](std::uint64_t size) {
    auto p = std::make_unique<Map>();
    for (std::uint64_t i = 0; i < size; ++i) p->store(key_u64(i), i);
    return p;
  });
  wyrand rng(0x1a70);
  std::uint64_t sum = 0;
  for (auto _ : state) {
    const auto v = m.load(key_u64(rng.next() % n));
    sum += v ? *v : 1;
  }
  benchmark::DoNotOptimize(sum);
  if (sum == 0 && n > 1) state.SkipWithError("loads missed");
  state.SetItemsProcessed(state.iterations());
}

void BM_numamap(benchmark::State& state) { time_numamap(state, g_numamap); }
void BM_numamap_heap(benchmark::State& state) { time_numamap(state, g_numamap_heap); }

/// The timed loop of every prototype: uniform random hits on keys [0, n).
template <class Proto>
void time_hits(benchmark::State& state, Proto& m, std::uint64_t n) {
  wyrand rng(0x1a70);
  std::uint64_t sum = 0;
  std::uint64_t misses = 0;
  for (auto _ : state) {
    std::uint64_t v = 0;
    if (m.load(key_u64(rng.next() % n), v)) {
      sum += v;
    } else {
      ++misses;
    }
  }
  benchmark::DoNotOptimize(sum);
  if (misses != 0) state.SkipWithError("a load of a present key missed");
  state.SetItemsProcessed(state.iterations());
}

void BM_inline_proto(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  time_hits(state,
            prepared(g_inline, n,
                     [](std::uint64_t size) { return std::make_unique<inline_proto>(size); }),
            n);
}

#if defined(__SSE2__)
void BM_swiss_proto(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  time_hits(
      state,
      prepared(g_swiss, n, [](std::uint64_t size) { return std::make_unique<swiss_proto>(size); }),
      n);
}
void BM_group_proto(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  time_hits(
      state,
      prepared(g_group, n, [](std::uint64_t size) { return std::make_unique<group_proto>(size); }),
      n);
}
#endif

/// inline_proto's bare probe, for time_hits.
struct bare_probe {
  const inline_proto* p;
  bool load(std::uint64_t k, std::uint64_t& out) const { return p->load_bare(k, out); }
};
std::unique_ptr<inline_proto> g_bare;

void BM_bare_proto(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  // Built for each (size, spread).
  g_bare = std::make_unique<inline_proto>(n, static_cast<std::size_t>(state.range(1)));
  bare_probe probe{g_bare.get()};
  time_hits(state, probe, n);
}

void BM_bucket_proto(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const double load = static_cast<double>(state.range(1)) / 100.0;
  // Built for each (size, load): the holder keeps one.
  g_bucket.map = std::make_unique<bucket_proto>(n, load);
  time_hits(state, *g_bucket.map, n);
  state.counters["buckets_per_insert"] = g_bucket.map->buckets_per_insert();
}

#if NUMAMAP_BENCH_HAVE_ABSL
using absl_t = absl::flat_hash_map<std::uint64_t, std::uint64_t>;
holder<absl_t> g_absl;

void BM_absl(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  absl_t& m = prepared(g_absl, n, [](std::uint64_t size) {
    auto p = std::make_unique<absl_t>();
    for (std::uint64_t i = 0; i < size; ++i) p->emplace(key_u64(i), i);
    return p;
  });
  wyrand rng(0x1a70);
  std::uint64_t sum = 0;
  std::uint64_t misses = 0;
  for (auto _ : state) {
    const auto it = m.find(key_u64(rng.next() % n));
    if (it != m.end()) {
      sum += it->second;
    } else {
      ++misses;
    }
  }
  benchmark::DoNotOptimize(sum);
  if (misses != 0) state.SkipWithError("a load of a present key missed");
  state.SetItemsProcessed(state.iterations());
}
#endif

// Interleaved per size: numamap, prototype, absl at each size in turn (a size's structures are
// built on first use and kept while the size stays).
void register_all() {
  for (const std::int64_t n : numamap::bench::bench_sizes("100000")) {
    benchmark::RegisterBenchmark("read_hit/numamap", BM_numamap)->Arg(n)->ArgName("size");
    benchmark::RegisterBenchmark("read_hit/numamap_heap", BM_numamap_heap)->Arg(n)->ArgName("size");
    benchmark::RegisterBenchmark("read_hit/inline_proto", BM_inline_proto)->Arg(n)->ArgName("size");
    for (const std::int64_t spread : {1, 2}) {
      benchmark::RegisterBenchmark("read_hit/bare_proto", BM_bare_proto)
          ->Args({n, spread})
          ->ArgNames({"size", "spread"});
    }
    for (const std::int64_t load : {60, 75, 85}) {
      benchmark::RegisterBenchmark("read_hit/bucket_proto", BM_bucket_proto)
          ->Args({n, load})
          ->ArgNames({"size", "load"});
    }
#if defined(__SSE2__)
    benchmark::RegisterBenchmark("read_hit/swiss_proto", BM_swiss_proto)->Arg(n)->ArgName("size");
    benchmark::RegisterBenchmark("read_hit/group_proto", BM_group_proto)->Arg(n)->ArgName("size");
#endif
#if NUMAMAP_BENCH_HAVE_ABSL
    benchmark::RegisterBenchmark("read_hit/absl_flat_nolock", BM_absl)->Arg(n)->ArgName("size");
#endif
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
