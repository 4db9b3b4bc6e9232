// SPEC "The map": "Every operation on one key is linearizable", while rebuilds move entries.
//
// Entries live in table slots, so a rebuild freezes the old table (writers that reach it
// then go to the shard mutex), copies its present entries into the new table and leaves the
// old copies as they were (design.md, "Why moving is linearizable"). Here
// one shard takes a stream of fresh keys and erasures, so it rebuilds again and again, while
// other threads work on a fixed set of keys that are never erased:
// - counter keys, changed only by compare_and_swap(v, v + 1) from two threads: the sum of
//   their final values must equal the number of successful swaps (a swap applied to a frozen
//   copy, or a copy made before a swap, would lose one);
// - stored keys, written with increasing values by one thread (store, exchange,
//   load_or_store on a present key): readers must always find them, and never see a value
//   older than one they saw before;
// - erased-and-revived keys: load_and_delete then load_or_store by one thread, checked
//   exactly against its own model.
// Both key types: uint64 keys (kept in the slots) and string keys (kept in key nodes that a
// move hands over), the first with lookups probing on the tags, the second slot by slot
// (decisions.md D33).
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "map_kinds.hpp"
#include "stress_util.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"
#include "watchdog.hpp"

using numamap_test::string_kind;
using numamap_test::u64_kind;

namespace {

constexpr std::uint64_t counters = 16;
constexpr std::uint64_t stored = 16;
constexpr std::uint64_t revived = 16;
constexpr std::uint64_t churn_base = 1'000'000;

template <class Kind>
void run_moves(numamap::read_probe probe) {
  using map_t = typename Kind::map_type;
  typename map_t::options o;
  o.shards_per_node = 1;  // every key in one shard per node: rebuilds come often
  o.probe = probe;
  map_t m(o);
  const std::uint64_t rounds = numamap_test::scaled(30000, 4);
  numamap_test::watchdog dog("rebuild.moves", std::chrono::seconds(240));

  auto key = [](std::uint64_t i) { return Kind::key(i); };
  auto val = [](std::uint64_t v) { return Kind::value(v); };
  auto num = [](const auto& v) { return Kind::value_id(v); };

  // counter keys [0, counters), stored keys [100, 100 + stored), revived [200, 200 + revived)
  for (std::uint64_t i = 0; i < counters; ++i) m.store(key(i), val(0));
  for (std::uint64_t i = 0; i < stored; ++i) m.store(key(100 + i), val(0));
  for (std::uint64_t i = 0; i < revived; ++i) m.store(key(200 + i), val(0));

  std::atomic<std::uint64_t> swaps{0};
  // Failures by kind: 0 counter missing, 1 exchange, 2 load_or_store on a present key,
  // 3 revived key missing, 4 revived key not inserted, 5 stored key missing or older, 6
  // counter missing for a reader.
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> kinds[7] = {};
  auto fail = [&](int kind) {
    errors.fetch_add(1);
    kinds[kind].fetch_add(1);
  };
  std::atomic<int> writers_left{4};
  numamap_test::run_threads(6, [&](std::size_t t) {
    if (t == 0) {
      // The churn: fresh keys in, old keys out, at a steady size of 4096.
      for (std::uint64_t i = 0; i < rounds * 2; ++i) {
        m.store(key(churn_base + i), val(i));
        if (i >= 4096) (void)m.erase(key(churn_base + i - 4096));
      }
      writers_left.fetch_sub(1);
    } else if (t == 1 || t == 2) {
      // Counters: read, then compare_and_swap to read + 1.
      std::uint64_t mine = 0;
      for (std::uint64_t i = 0; i < rounds; ++i) {
        const std::uint64_t k = (i * 7 + t) % counters;
        const auto cur = m.load(key(k));
        if (!cur) {
          fail(0);
          continue;
        }
        if (m.compare_and_swap(key(k), *cur, val(num(*cur) + 1))) ++mine;
      }
      swaps.fetch_add(mine);
      writers_left.fetch_sub(1);
    } else if (t == 3) {
      // Stored keys: increasing values through store, exchange and load_or_store; revived
      // keys: erased and put back, modelled exactly.
      for (std::uint64_t i = 1; i <= rounds; ++i) {
        const std::uint64_t k = 100 + i % stored;
        switch (i % 3) {
          case 0:
            m.store(key(k), val(i));
            break;
          case 1: {
            const auto prev = m.exchange(key(k), val(i));
            if (!prev || num(*prev) >= i) fail(1);
            break;
          }
          default: {
            const auto r = m.load_or_store(key(k), val(i));  // present: loads, stores nothing
            if (!r.second || num(r.first) >= i) fail(2);
            m.store(key(k), val(i));
            break;
          }
        }
        const std::uint64_t r = 200 + i % revived;
        const auto gone = m.load_and_delete(key(r));
        if (!gone) fail(3);
        const auto back = m.load_or_store(key(r), val(i));
        if (back.second || num(back.first) != i) fail(4);
      }
      writers_left.fetch_sub(1);
    } else {
      // Readers: stored keys are always there and never go backwards; counters are always
      // there.
      std::vector<std::uint64_t> seen(stored, 0);
      while (writers_left.load() > 0) {
        for (std::uint64_t i = 0; i < stored; ++i) {
          const auto v = m.load(key(100 + i));
          if (!v || num(*v) < seen[i]) {
            fail(5);
          } else {
            seen[i] = num(*v);
          }
        }
        for (std::uint64_t i = 0; i < counters; ++i) {
          if (!m.contains(key(i))) fail(6);
        }
      }
    }
  });

  INFO("failures by kind: " << kinds[0] << " " << kinds[1] << " " << kinds[2] << " " << kinds[3]
                            << " " << kinds[4] << " " << kinds[5] << " " << kinds[6]);
  CHECK(errors.load() == 0);
  std::uint64_t total = 0;
  for (std::uint64_t i = 0; i < counters; ++i) {
    const auto v = m.load(key(i));
    REQUIRE(v.has_value());
    total += num(*v);
  }
  CHECK(total == swaps.load());
  CHECK(swaps.load() > 0);
  for (std::uint64_t i = 0; i < revived; ++i) CHECK(m.contains(key(200 + i)));
  CHECK(m.size() == counters + stored + revived + 4096);
  std::uint64_t rebuilds = 0;
  for (const auto& s : m.stats().shards) rebuilds += s.rebuilds;
  CHECK(rebuilds >= 2);  // the case under test happened
}

}  // namespace

TEST_CASE(
    "stress: compare_and_swap, store and revive stay exact while rebuilds move entries "
    "(uint64)",
    "[stress]") {
  run_moves<u64_kind>(numamap::read_probe::tags);
}

TEST_CASE(
    "stress: compare_and_swap, store and revive stay exact while rebuilds move entries "
    "(string)",
    "[stress]") {
  run_moves<string_kind>(numamap::read_probe::slots);
}
