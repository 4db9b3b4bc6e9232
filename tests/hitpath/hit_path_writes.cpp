// SPEC "The map": "load, contains and visit on a key present in the read snapshot write no
// shared memory." Issue 2: such a hit performs zero stores and read-modify-writes on shared
// locations, the calling thread's own padded reclamation slot aside.
//
// Built with NUMAMAP_INSTRUMENTED_ATOMICS=1: every store and RMW made through
// numamap::detail::atomic is recorded per thread by detail::atomic_probe. The test fills a
// map, loads every key until stats() shows the keys promoted and no further misses, then
// records a burst of hits and asserts that every recorded write lies inside the calling
// thread's own slot. A store on an existing key must record a write outside it: the probe is
// live, so the test can fail.
#include <cstdint>
#include <exception>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "numamap/numamap.hpp"
#include "test_catch.hpp"
#include "test_types.hpp"

static_assert(NUMAMAP_INSTRUMENTED_ATOMICS, "tests/hitpath must be built with the write probe");

namespace {

using numamap::detail::atomic_probe;
using numamap::detail::map_test_access;

struct totals {
  std::uint64_t misses = 0, promotions = 0, loads = 0;
};

template <class Map>
totals sum_stats(const Map& m) {
  totals t;
  for (const auto& s : m.stats().shards) {
    t.misses += s.misses;
    t.promotions += s.promotions;
    t.loads += s.loads;
  }
  return t;
}

/// Loads every key until a full round adds no miss (all keys answered from the read
/// snapshot); returns whether that happened within the round limit.
template <class Map, class Keys>
bool promote_all(const Map& m, const Keys& keys) {
  for (int round = 0; round < 200; ++round) {
    const totals before = sum_stats(m);
    for (const auto& k : keys) (void)m.load(k);
    const totals after = sum_stats(m);
    if (after.promotions > 0 && after.misses == before.misses && after.loads > before.loads)
      return true;
  }
  return false;
}

struct outside_report {
  std::size_t total = 0;
  std::size_t outside = 0;
  std::string first;
};

outside_report writes_outside(const std::vector<atomic_probe::event>& ev, const void* lo,
                              const void* hi) {
  outside_report r;
  r.total = ev.size();
  const auto* l = static_cast<const char*>(lo);
  const auto* h = static_cast<const char*>(hi);
  for (const auto& e : ev) {
    const auto* a = static_cast<const char*>(e.addr);
    if (a < l || a >= h) {
      if (r.outside < 5) {
        std::ostringstream os;
        os << (e.what == atomic_probe::kind::store ? " store" : " rmw") << " at " << e.addr
           << " (own slot [" << lo << ", " << hi << "))";
        r.first += os.str();
      }
      ++r.outside;
    }
  }
  return r;
}

/// The whole check for one map: fill, promote, burst of hits under the probe, probe liveness.
template <class Map, class Keys, class LookupKeys, class MakeValue, class Id>
void check_hit_path(Map& m, const Keys& keys, const LookupKeys& lookups, MakeValue make, Id id) {
  for (std::size_t i = 0; i < keys.size(); ++i) m.store(keys[i], make(i));
  REQUIRE(promote_all(m, keys));
  (void)m.load(keys[0]);  // this thread's reclamation slot exists now
  const auto slot = map_test_access::own_slot(m);
  REQUIRE(slot.first < slot.second);
  const totals before = sum_stats(m);

  std::size_t found = 0;
  std::size_t visited = 0;
  std::size_t contained = 0;
  std::uint64_t sum = 0;
  atomic_probe::start();
  for (int round = 0; round < 4; ++round) {
    for (std::size_t i = 0; i < lookups.size(); ++i) {
      auto v = m.load(lookups[i]);
      if (v && id(*v) == i) ++found;
      if (m.contains(lookups[i])) ++contained;
      if (m.visit(lookups[i], [&](const auto& x) { sum += id(x); })) ++visited;
    }
  }
  const auto ev = atomic_probe::stop();

  const std::size_t n = 4 * lookups.size();
  CHECK(found == n);  // they were hits, with the right values
  CHECK(contained == n);
  CHECK(visited == n);
  CHECK(sum == 4 * (lookups.size() * (lookups.size() - 1) / 2));
  const totals after = sum_stats(m);
  CHECK(after.misses == before.misses);  // answered from the read snapshot
  const outside_report r = writes_outside(ev, slot.first, slot.second);
  INFO(r.total << " writes recorded, " << r.outside << " outside the own slot:" << r.first);
  CHECK(r.outside == 0);

  // The probe is live: overwriting an existing key writes shared memory, and it is seen.
  atomic_probe::start();
  m.store(keys[1], make(1000));
  const auto ev2 = atomic_probe::stop();
  const outside_report r2 = writes_outside(ev2, slot.first, slot.second);
  CHECK(r2.outside >= 1);
  CHECK(id(*m.load(keys[1])) == 1000);
}

}  // namespace

TEST_CASE("hit path: load/contains/visit hits write nothing shared (uint64, inline values)",
          "[hitpath]") {
  numamap::concurrent_map<std::uint64_t, std::uint64_t> m;
  std::vector<std::uint64_t> keys;
  for (std::uint64_t i = 0; i < 512; ++i) keys.push_back(i * 7919);
  check_hit_path(
      m, keys, keys, [](std::size_t i) { return static_cast<std::uint64_t>(i); },
      [](std::uint64_t v) { return v; });
}

TEST_CASE("hit path: load/contains/visit hits write nothing shared (string, out-of-line values)",
          "[hitpath]") {
  numamap::concurrent_map<std::string, std::string> m;
  std::vector<std::string> keys;
  keys.reserve(256);
  for (int i = 0; i < 256; ++i) keys.push_back("a-key-that-lives-on-the-heap-" + std::to_string(i));
  check_hit_path(
      m, keys, keys,
      [](std::size_t i) { return "a-value-that-lives-on-the-heap-" + std::to_string(i); },
      [](const std::string& v) { return std::stoull(v.substr(31)); });
}

TEST_CASE("hit path: heterogeneous (string_view) hits write nothing shared", "[hitpath]") {
  numamap::concurrent_map<std::string, std::uint64_t, numamap_test::string_hash,
                          numamap_test::string_equal>
      m;
  std::vector<std::string> keys;
  keys.reserve(256);
  for (int i = 0; i < 256; ++i) keys.push_back("a-key-that-lives-on-the-heap-" + std::to_string(i));
  std::vector<std::string_view> views(keys.begin(), keys.end());
  check_hit_path(
      m, keys, views, [](std::size_t i) { return static_cast<std::uint64_t>(i); },
      [](std::uint64_t v) { return v; });
}

TEST_CASE("hit path: a thread other than the writer hits without shared writes", "[hitpath]") {
  numamap::concurrent_map<std::uint64_t, std::uint64_t> m;
  std::vector<std::uint64_t> keys;
  for (std::uint64_t i = 0; i < 300; ++i) keys.push_back(i);
  // Catch2 assertions from this one thread while the main thread only waits; a REQUIRE's
  // exception is carried back to the main thread.
  std::exception_ptr failure;
  std::thread t([&] {
    try {
      check_hit_path(
          m, keys, keys, [](std::size_t i) { return static_cast<std::uint64_t>(i); },
          [](std::uint64_t v) { return v; });
    } catch (...) {
      failure = std::current_exception();
    }
  });
  t.join();
  if (failure) std::rethrow_exception(failure);
  // And back on the main thread, which never used the map before: its own slot differs.
  (void)m.load(keys[0]);
  const auto slot = map_test_access::own_slot(m);
  atomic_probe::start();
  std::uint64_t sum = 0;
  for (auto k : keys) sum += *m.load(k);
  const auto ev = atomic_probe::stop();
  const outside_report r = writes_outside(ev, slot.first, slot.second);
  INFO(r.total << " writes recorded, " << r.outside << " outside the own slot:" << r.first);
  CHECK(r.outside == 0);
  CHECK(sum == 1000 + 299 * 300 / 2 - 1);  // key 1 was overwritten with 1000
}
