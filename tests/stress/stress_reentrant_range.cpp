// SPEC "The map": "range holds no lock while f runs: f may call any method of the map,
// including store and erase." Go's TestMapRangeNestedCall (issue 46399) does the same.
//
// The callback calls every method of the same map — including range (nested) and clear — on
// one thread and then on several threads at once. A deadlock would hang: a watchdog turns a
// hang into an abort with a message.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "map_kinds.hpp"
#include "stress_util.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"
#include "watchdog.hpp"

using numamap_test::error_log;
using numamap_test::string_kind;
using numamap_test::u64_kind;

namespace {

// The point operations on this thread's scratch key, results checked as one thread sees them.
template <class Kind>
void point_calls_exact(typename Kind::map_type& m, std::uint64_t scratch, error_log& err) {
  using value_t = typename Kind::value_type;
  const auto sk = Kind::key(scratch);
  const auto sv = Kind::value(scratch);
  m.store(sk, sv);
  if (!m.contains(sk)) err.add("contains after store inside range is false");
  auto l = m.load(sk);
  if (!l || !(*l == sv)) err.add("load after store inside range");
  if (!m.load_or_store(sk, Kind::value(1)).second) err.add("load_or_store inside range");
  auto x = m.exchange(sk, Kind::value(2));
  if (!x || !(*x == sv)) err.add("exchange inside range");
  if (!m.compare_and_swap(sk, Kind::value(2), Kind::value(3))) err.add("cas inside range");
  if (!m.compare_and_delete(sk, Kind::value(3))) err.add("cad inside range");
  if (m.erase(sk)) err.add("erase of a deleted key inside range returned true");
  auto c = m.load_or_compute(sk, [] { return Kind::value(4); });
  if (c.second) err.add("load_or_compute inside range");
  bool visited = false;
  if (!m.visit(sk, [&](const value_t&) { visited = true; }) || !visited)
    err.add("visit inside range");
  auto d = m.load_and_delete(sk);
  if (!d || !(*d == Kind::value(4))) err.add("load_and_delete inside range");
}

// The same calls while other threads clear the map and erase keys their ranges visit, this
// thread's scratch key among them, at any moment. Only this thread stores the key, so each
// result is the one-thread result or what a removal since the previous call explains:
// `last` is the value the key holds unless it was removed meanwhile.
template <class Kind>
void point_calls_racing(typename Kind::map_type& m, std::uint64_t scratch, error_log& err) {
  using value_t = typename Kind::value_type;
  const auto sk = Kind::key(scratch);
  const std::uint64_t sv = scratch;
  auto id = [](const std::optional<value_t>& v) {
    return v ? std::optional<std::uint64_t>(Kind::value_id(*v)) : std::nullopt;
  };
  std::optional<std::uint64_t> last;  // nullopt: absent, whatever else happens
  auto may_be = [&](const std::optional<std::uint64_t>& got, const char* what) {
    if (got && got != last) err.add(std::string(what) + " returned a value never stored");
  };
  m.store(sk, Kind::value(sv));
  last = sv;
  may_be(id(m.load(sk)), "load after store");
  auto los = m.load_or_store(sk, Kind::value(1));
  if (los.second) {
    if (Kind::value_id(los.first) != sv) err.add("load_or_store found a value never stored");
  } else {
    if (Kind::value_id(los.first) != 1) err.add("load_or_store did not return what it stored");
    last = 1;  // removed, then stored again by the call
  }
  may_be(id(m.exchange(sk, Kind::value(2))), "exchange");
  last = 2;
  if (m.compare_and_swap(sk, Kind::value(2), Kind::value(3))) {
    last = 3;
  } else {
    last.reset();  // only a removal fails it: the key is absent from now on
  }
  if (m.compare_and_delete(sk, Kind::value(3))) {
    if (last != std::optional<std::uint64_t>(3)) err.add("cad matched a value never stored");
  }
  last.reset();  // deleted by the call, or removed before it
  if (m.erase(sk)) err.add("erase found a key no one stored since it was removed");
  auto c = m.load_or_compute(sk, [] { return Kind::value(4); });
  if (c.second || Kind::value_id(c.first) != 4) {
    err.add("load_or_compute found a key no one stored since it was removed");
  }
  last = 4;
  std::optional<std::uint64_t> seen;
  if (m.visit(sk, [&](const value_t& v) { seen = Kind::value_id(v); })) {
    may_be(seen, "visit");
    if (!seen) err.add("visit returned true without calling f");
  }
  may_be(id(m.load_and_delete(sk)), "load_and_delete");
}

// Calls every method of `m` from inside a range callback. Keys >= 1'000'000 are scratch keys
// of this thread. With `exact`, no other thread touches the map, and results are checked as
// one thread sees them; else as point_calls_racing says.
template <class Kind>
void every_method(typename Kind::map_type& m, std::uint64_t scratch, error_log& errors, int depth,
                  bool exact) {
  using value_t = typename Kind::value_type;
  if (exact) {
    point_calls_exact<Kind>(m, scratch, errors);
  } else {
    point_calls_racing<Kind>(m, scratch, errors);
  }
  (void)m.erase(Kind::key(scratch + 1));
  (void)m.size();
  (void)m.empty();
  if (m.shard_count() == 0) errors.add("shard_count inside range is 0");
  (void)m.stats();
  if (depth < 2) {
    std::size_t inner = 0;
    m.range([&](const typename Kind::key_type&, const value_t&) {
      every_method<Kind>(m, scratch + 10, errors, depth + 1, exact);
      return ++inner < 3;  // the nested range stops early
    });
  }
}

template <class Kind>
void reentrant_single(const std::string& name) {
  numamap_test::watchdog dog(name, std::chrono::seconds(60));
  typename Kind::map_type m;
  error_log errors;
  for (std::uint64_t i = 0; i < 64; ++i) m.store(Kind::key(i), Kind::value(i));
  std::size_t calls = 0;
  m.range([&](const typename Kind::key_type& k, const typename Kind::value_type& v) {
    ++calls;
    const auto keep = Kind::value_id(v);
    every_method<Kind>(m, 1000000, errors, 0, true);
    // The key being visited can be overwritten and erased; its value stays readable.
    m.store(k, Kind::value(keep + 1));
    if (Kind::value_id(v) != keep) errors.add("the value handed to f changed under it");
    if (calls == 20) {
      m.clear();  // clear from inside range: later calls may or may not come
      if (!m.empty()) errors.add("not empty right after clear inside range (single thread)");
    }
  });
  INFO(errors.text());
  CHECK(errors.count() == 0);
  CHECK(calls >= 20);
  CHECK(calls <= 64 + 64);  // no endless iteration over keys stored during the call
  // Usable afterwards.
  m.store(Kind::key(7), Kind::value(70));
  CHECK(*m.load(Kind::key(7)) == Kind::value(70));
  CHECK(numamap_test::stats_entries(m) == m.size());
  CHECK(numamap_test::read_back<Kind>(m).size() == m.size());
}

template <class Kind>
void reentrant_threads(const std::string& name, std::uint64_t rounds) {
  constexpr std::size_t threads = 4;
  const std::uint64_t seed = numamap_test::test_seed(name);
  INFO("seed " << seed);
  numamap_test::watchdog dog(name, std::chrono::seconds(120));
  typename Kind::map_type m;
  error_log errors;
  numamap_test::run_threads(threads, [&](std::size_t t) {
    std::mt19937_64 rng(seed + t);
    const std::uint64_t scratch = 1000000 + t * 1000;
    for (std::uint64_t r = 0; r < rounds && !errors.failed(); ++r) {
      for (int i = 0; i < 16; ++i) m.store(Kind::key(rng() % 64), Kind::value(i));
      std::size_t calls = 0;
      m.range([&](const typename Kind::key_type& k, const typename Kind::value_type&) {
        every_method<Kind>(m, scratch, errors, 1, false);
        if (rng() % 4 == 0) (void)m.erase(k);
        if (rng() % 32 == 0) m.clear();
        return ++calls < 8;
      });
    }
  });
  INFO(errors.text());
  CHECK(errors.count() == 0);
  m.clear();
  CHECK(m.empty());
  m.store(Kind::key(1), Kind::value(1));
  CHECK(m.size() == 1);
}

}  // namespace

TEST_CASE("map.range reentrancy: f calls every method, nested range and clear (uint64)",
          "[stress][map.range]") {
  reentrant_single<u64_kind>("reentrant.single.u64");
}

TEST_CASE("map.range reentrancy: f calls every method, nested range and clear (string)",
          "[stress][map.range]") {
  reentrant_single<string_kind>("reentrant.single.string");
}

TEST_CASE("map.range reentrancy from 4 threads at once, with watchdog (uint64)",
          "[stress][map.range]") {
  reentrant_threads<u64_kind>("reentrant.threads.u64", numamap_test::scaled(300));
}

TEST_CASE("map.range reentrancy from 4 threads at once, with watchdog (string)",
          "[stress][map.range]") {
  reentrant_threads<string_kind>("reentrant.threads.string", numamap_test::scaled(200));
}
