// SPEC "The map": "Every operation on one key is linearizable", for new keys that threads
// put into a read table without the shard's lock (decisions.md D37).
//
// A thread with credits claims the first empty slot on a new key's path with a CAS of its
// tag; a writer that passes a claim in flight of its key's tag waits for it; a table that
// is closed (its keys go to the dirty map from then on) or frozen (a rebuild or a clear
// copies or drops it) makes a claim that did not see it abandon its slot. What can go wrong
// is a key put in twice (two claims, or a claim and the dirty map) or lost (a claim a
// rebuild did not copy). Here:
// - every thread inserts the same fresh keys at about the same moment (load_or_store, then
//   store): exactly one load_or_store per key inserts, every thread gets the winner's
//   value, and a range sees each key once;
// - threads churn keys of their own (insert fresh, erase the oldest) in one shard, so its
//   table fills, is closed and rebuilt again and again, and check every key against their
//   own model;
// - a thread clears the map while others insert: afterwards a range sees no key twice and
//   agrees with size() and load().
// Each case also checks that some inserts did go in without the lock (stats), so the path
// under test was taken, and that insert_credits = 0 turns it off.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "map_kinds.hpp"
#include "stress_util.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"
#include "watchdog.hpp"

using numamap_test::string_kind;
using numamap_test::u64_kind;

namespace {

/// Every key a range visits, once each; a second visit is an error.
template <class Kind, class Map>
std::set<std::uint64_t> range_keys(Map& m, numamap_test::error_log& errors) {
  std::set<std::uint64_t> seen;
  m.range([&](const typename Kind::key_type& k, const typename Kind::value_type&) {
    if (!seen.insert(Kind::key_id(k)).second) {
      errors.add("range visited key " + std::to_string(Kind::key_id(k)) + " twice");
    }
    return true;
  });
  return seen;
}

template <class Kind>
void run_same_keys(std::size_t insert_credits) {
  using map_t = typename Kind::map_type;
  typename map_t::options o;
  o.shards_per_node = 2;
  o.insert_credits = insert_credits;
  map_t m(o);
  const std::size_t threads = 4;
  const std::uint64_t keys = numamap_test::scaled(20000, 4);
  numamap_test::watchdog dog("claims.same_keys", std::chrono::seconds(240));
  numamap_test::error_log errors;
  // won[k]: how many load_or_store calls inserted key k (must be exactly one).
  std::vector<std::atomic<int>> won(keys);
  std::vector<std::atomic<std::uint64_t>> winner(keys);
  numamap_test::spin_barrier barrier(threads);
  numamap_test::run_threads(threads, [&](std::size_t t) {
    barrier.arrive_and_wait();
    for (std::uint64_t k = 0; k < keys && !errors.failed(); ++k) {
      const auto r = m.load_or_store(Kind::key(k), Kind::value(k * 8 + t));
      if (!r.second) {
        won[k].fetch_add(1);
        winner[k].store(k * 8 + t);
      }
    }
    barrier.arrive_and_wait();
    // Every thread sees the value that the one insert put in.
    for (std::uint64_t k = 0; k < keys && !errors.failed(); ++k) {
      const auto v = m.load(Kind::key(k));
      if (!v || Kind::value_id(*v) != winner[k].load()) {
        errors.add("key " + std::to_string(k) +
                   ": load after the inserts does not give the winner");
      }
    }
    barrier.arrive_and_wait();
    // Then stores of new keys race as well: each key ends with one of the stored values.
    for (std::uint64_t k = keys; k < 2 * keys && !errors.failed(); ++k) {
      m.store(Kind::key(k), Kind::value(k * 8 + t));
    }
  });
  INFO(errors.text());
  REQUIRE(errors.count() == 0);
  for (std::uint64_t k = 0; k < keys; ++k) {
    INFO("key " << k);
    REQUIRE(won[k].load() == 1);
  }
  for (std::uint64_t k = keys; k < 2 * keys; ++k) {
    const auto v = m.load(Kind::key(k));
    REQUIRE(v.has_value());
    REQUIRE(Kind::value_id(*v) / 8 == k);
  }
  const std::set<std::uint64_t> seen = range_keys<Kind>(m, errors);
  INFO(errors.text());
  CHECK(errors.count() == 0);
  CHECK(seen.size() == 2 * keys);
  CHECK(m.size() == 2 * keys);
  if (insert_credits == 0) {
    CHECK(numamap_test::stats_unlocked_inserts(m) == 0);
  } else {
    CHECK(numamap_test::stats_unlocked_inserts(m) > 0);
  }
}

template <class Kind>
void run_churn() {
  using map_t = typename Kind::map_type;
  typename map_t::options o;
  o.shards_per_node = 1;  // one table per node fills, closes and is rebuilt over and over
  map_t m(o);
  const std::size_t threads = 3;
  const std::uint64_t steps = numamap_test::scaled(60000, 4);
  const std::uint64_t window = 600;  // keys each thread keeps live
  numamap_test::watchdog dog("claims.churn", std::chrono::seconds(240));
  numamap_test::error_log errors;
  numamap_test::run_threads(threads, [&](std::size_t t) {
    // Thread t owns keys i * threads + t; it keeps the last `window` of them live.
    std::deque<std::uint64_t> live;
    std::uint64_t next = 0;
    for (std::uint64_t s = 0; s < steps && !errors.failed(); ++s) {
      const std::uint64_t k = (next++) * threads + t;
      if (s % 2 == 0) {
        m.store(Kind::key(k), Kind::value(k));
      } else if (m.load_or_store(Kind::key(k), Kind::value(k)).second) {
        errors.add("key " + std::to_string(k) + " was there before its first insert");
      }
      live.push_back(k);
      if (live.size() > window) {
        const std::uint64_t old = live.front();
        live.pop_front();
        const auto v = m.load_and_delete(Kind::key(old));
        if (!v || Kind::value_id(*v) != old) {
          errors.add("key " + std::to_string(old) + " lost before its erase");
        }
      }
      if (s % 97 == 0 && !live.empty()) {
        const std::uint64_t probe = live[s % live.size()];
        const auto v = m.load(Kind::key(probe));
        if (!v || Kind::value_id(*v) != probe) {
          errors.add("key " + std::to_string(probe) + " not found while live");
        }
      }
    }
    for (const std::uint64_t k : live) {
      const auto v = m.load(Kind::key(k));
      if (!v || Kind::value_id(*v) != k)
        errors.add("key " + std::to_string(k) + " lost at the end");
    }
  });
  INFO(errors.text());
  REQUIRE(errors.count() == 0);
  const std::set<std::uint64_t> seen = range_keys<Kind>(m, errors);
  CHECK(errors.count() == 0);
  CHECK(seen.size() == threads * window);
  CHECK(m.size() == threads * window);
  std::uint64_t rebuilds = 0;
  for (const auto& s : m.stats().shards) rebuilds += s.rebuilds;
  CHECK(rebuilds > 2);
  CHECK(numamap_test::stats_unlocked_inserts(m) > 0);
}

template <class Kind>
void run_clear() {
  using map_t = typename Kind::map_type;
  typename map_t::options o;
  o.shards_per_node = 1;
  map_t m(o);
  const std::size_t threads = 3;
  const std::uint64_t steps = numamap_test::scaled(30000, 4);
  numamap_test::watchdog dog("claims.clear", std::chrono::seconds(240));
  numamap_test::error_log errors;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> unlocked{0};
  // The clearer counts each clear when it starts and when it has returned (seq_cst, one
  // clearer: clears never overlap). A writer that read started == finished before its store
  // and started unchanged after its load had no clear between the two: its key must be there.
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> finished{0};
  std::atomic<std::uint64_t> quiet{0};  // store/load pairs with no clear between them
  numamap_test::run_threads(threads, [&](std::size_t t) {
    if (t == 0) {
      for (std::uint64_t c = 0; !done.load(); ++c) {
        started.fetch_add(1);
        m.clear();
        finished.fetch_add(1);
        if (c % 16 == 15) {
          std::this_thread::sleep_for(std::chrono::microseconds(200));  // quiet windows
        } else {
          std::this_thread::yield();
        }
      }
      return;
    }
    for (std::uint64_t s = 0; s < steps && !errors.failed(); ++s) {
      const std::uint64_t k = s * threads + t;
      const std::uint64_t s0 = started.load();
      const std::uint64_t f0 = finished.load();
      m.store(Kind::key(k), Kind::value(k));
      const auto v = m.load(Kind::key(k));  // a clear may come between: absent, or k
      const bool no_clear_between = s0 == f0 && started.load() == s0;
      if (v && Kind::value_id(*v) != k) errors.add("key " + std::to_string(k) + ": wrong value");
      if (no_clear_between) {
        quiet.fetch_add(1, std::memory_order_relaxed);
        if (!v) errors.add("key " + std::to_string(k) + " lost with no clear since its store");
      }
      if (s % 1000 == 0) unlocked.store(numamap_test::stats_unlocked_inserts(m));
    }
    if (t == 1) done.store(true);
  });
  INFO(errors.text());
  REQUIRE(errors.count() == 0);
  CHECK(quiet.load() > 0);  // the check above ran
  // With the clearer gone, a batch stored now is all there.
  for (std::uint64_t k = 0; k < 2000; ++k) m.store(Kind::key(k), Kind::value(k));
  for (std::uint64_t k = 0; k < 2000; ++k) {
    const auto v = m.load(Kind::key(k));
    if (!v || Kind::value_id(*v) != k) errors.add("key " + std::to_string(k) + " lost after");
  }
  REQUIRE(errors.count() == 0);
  const std::set<std::uint64_t> seen = range_keys<Kind>(m, errors);
  CHECK(errors.count() == 0);
  CHECK(seen.size() == m.size());
  for (const std::uint64_t k : seen) {
    const auto v = m.load(Kind::key(k));
    REQUIRE(v.has_value());
    CHECK(Kind::value_id(*v) == k);
  }
  // Inserts after the last clear went in; some without the lock (a clear resets nothing
  // of the counters, so the count taken during the run stands).
  CHECK(unlocked.load() + numamap_test::stats_unlocked_inserts(m) > 0);
}

}  // namespace

TEST_CASE("claims: racing inserts of the same new keys put each in once", "[stress][claims]") {
  SECTION("uint64, with credits") { run_same_keys<u64_kind>(16); }
  SECTION("string, with credits") { run_same_keys<string_kind>(16); }
  SECTION("uint64, one credit at a time") { run_same_keys<u64_kind>(1); }
  SECTION("uint64, every insert under the lock") { run_same_keys<u64_kind>(0); }
}

TEST_CASE("claims: churn through closed and rebuilt tables loses and doubles no key",
          "[stress][claims]") {
  SECTION("uint64") { run_churn<u64_kind>(); }
  SECTION("string") { run_churn<string_kind>(); }
}

TEST_CASE("claims: a clear racing unlocked inserts leaves a consistent map", "[stress][claims]") {
  SECTION("uint64") { run_clear<u64_kind>(); }
  SECTION("string") { run_clear<string_kind>(); }
}

TEST_CASE("claims: insert_credits past the limit is refused", "[stress][claims]") {
  numamap::concurrent_map<std::uint64_t, std::uint64_t>::options o;
  o.insert_credits = numamap::max_insert_credits + 1;
  CHECK_THROWS_AS((numamap::concurrent_map<std::uint64_t, std::uint64_t>(o)),
                  std::invalid_argument);
  o.insert_credits = numamap::max_insert_credits;
  numamap::concurrent_map<std::uint64_t, std::uint64_t> m(o);
  m.store(1, 2);
  CHECK(m.load(1) == std::optional<std::uint64_t>(2));
}
