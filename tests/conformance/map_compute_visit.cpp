// SPEC "The map", C++ conveniences: load_or_compute ("make() runs at most once per insertion,
// only when absent"), visit ("f(const Value&), no copy; true if found"), contains.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "map_kinds.hpp"
#include "test_catch.hpp"

using numamap_test::copy_counted;
using numamap_test::string_kind;
using numamap_test::u64_kind;

TEMPLATE_TEST_CASE("map.load_or_compute: make runs only when absent, once per insertion",
                   "[conformance][map.load_or_compute]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  int calls = 0;
  auto make = [&] {
    ++calls;
    return K::value(100 + static_cast<std::uint64_t>(calls));
  };
  auto r1 = m.load_or_compute(K::key(1), make);
  CHECK(calls == 1);
  CHECK(r1.first == K::value(101));
  CHECK_FALSE(r1.second);
  auto r2 = m.load_or_compute(K::key(1), make);
  CHECK(calls == 1);  // present: make does not run
  CHECK(r2.first == K::value(101));
  CHECK(r2.second);
  CHECK(*m.load(K::key(1)) == K::value(101));
  // Present after a plain store, and in the read snapshot.
  m.store(K::key(2), K::value(7));
  for (int i = 0; i < 64; ++i) (void)m.load(K::key(2));
  auto r3 = m.load_or_compute(K::key(2), make);
  CHECK(calls == 1);
  CHECK(r3.first == K::value(7));
  CHECK(r3.second);
  // After erase: absent again, make runs again.
  CHECK(m.erase(K::key(1)));
  auto r4 = m.load_or_compute(K::key(1), make);
  CHECK(calls == 2);
  CHECK(r4.first == K::value(102));
  CHECK_FALSE(r4.second);
  CHECK(m.size() == 2);
}

TEMPLATE_TEST_CASE("map.load_or_compute: an exception from make propagates, nothing inserted",
                   "[conformance][map.load_or_compute]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  CHECK_THROWS_AS(m.load_or_compute(K::key(1),
                                    []() -> typename K::value_type {
                                      throw std::runtime_error("factory failed");
                                    }),
                  std::runtime_error);
  CHECK_FALSE(m.contains(K::key(1)));
  CHECK(m.size() == 0);
  // The shard is not left locked: the same key and others work.
  auto r = m.load_or_compute(K::key(1), [] { return K::value(5); });
  CHECK_FALSE(r.second);
  CHECK(*m.load(K::key(1)) == K::value(5));
  for (std::uint64_t i = 0; i < 100; ++i) m.store(K::key(i + 10), K::value(i));
  CHECK(m.size() == 101);
}

TEMPLATE_TEST_CASE("map.visit: f sees the value in place; true if found",
                   "[conformance][map.visit]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  int calls = 0;
  CHECK_FALSE(m.visit(K::key(1), [&](const typename K::value_type&) { ++calls; }));
  CHECK(calls == 0);
  m.store(K::key(1), K::value(10));
  typename K::value_type seen = K::value(0);
  CHECK(m.visit(K::key(1), [&](const typename K::value_type& v) {
    ++calls;
    seen = v;
  }));
  CHECK(calls == 1);
  CHECK(seen == K::value(10));
  // From the read snapshot too.
  for (int i = 0; i < 64; ++i) (void)m.load(K::key(1));
  CHECK(m.visit(K::key(1), [&](const typename K::value_type& v) { seen = v; }));
  CHECK(seen == K::value(10));
  CHECK(m.erase(K::key(1)));
  CHECK_FALSE(m.visit(K::key(1), [&](const typename K::value_type&) { ++calls; }));
  CHECK(calls == 1);
}

TEST_CASE("map.visit: no copy of the value is made (\"f(const Value&), no copy\")",
          "[conformance][map.visit]") {
  numamap::concurrent_map<std::uint64_t, copy_counted> m;
  for (std::uint64_t i = 0; i < 20; ++i) m.store(i, copy_counted("v" + std::to_string(i)));
  for (int r = 0; r < 64; ++r)
    for (std::uint64_t i = 0; i < 20; ++i) (void)m.contains(i);
  const long before = copy_counted::copies().load();
  std::string got;
  for (std::uint64_t i = 0; i < 20; ++i) {
    REQUIRE(m.visit(i, [&](const copy_counted& v) { got = v.get(); }));
    REQUIRE(got == "v" + std::to_string(i));
  }
  m.store(99, copy_counted("fresh"));  // only in the dirty map
  REQUIRE(m.visit(std::uint64_t{99}, [&](const copy_counted& v) { got = v.get(); }));
  CHECK(got == "fresh");
  CHECK(copy_counted::copies().load() == before);
}

TEMPLATE_TEST_CASE("map.contains: true exactly for present keys", "[conformance][map.contains]",
                   u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  CHECK_FALSE(m.contains(K::key(1)));
  for (std::uint64_t i = 0; i < 200; i += 2) m.store(K::key(i), K::value(i));
  for (int r = 0; r < 3; ++r)
    for (std::uint64_t i = 0; i < 200; ++i) REQUIRE(m.contains(K::key(i)) == (i % 2 == 0));
  CHECK(m.erase(K::key(0)));
  CHECK_FALSE(m.contains(K::key(0)));
  CHECK(m.load_and_delete(K::key(2)).has_value());
  CHECK_FALSE(m.contains(K::key(2)));
}

TEMPLATE_TEST_CASE("map.visit: an exception from f propagates and leaves the map usable",
                   "[conformance][map.visit]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  m.store(K::key(1), K::value(1));
  CHECK_THROWS_AS(
      m.visit(K::key(1), [](const typename K::value_type&) { throw std::runtime_error("x"); }),
      std::runtime_error);
  m.store(K::key(1), K::value(2));
  CHECK(*m.load(K::key(1)) == K::value(2));
  CHECK(m.erase(K::key(1)));
  CHECK(m.empty());
}
