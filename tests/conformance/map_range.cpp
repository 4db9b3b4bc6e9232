// SPEC "The map": range (Range) — f(const Key&, const Value&) returning bool (false stops) or
// void (visits all); no key twice; holds no lock while f runs, so f may call the map.
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "map_kinds.hpp"
#include "test_catch.hpp"

using numamap_test::read_back;
using numamap_test::string_kind;
using numamap_test::u64_kind;

TEMPLATE_TEST_CASE("map.range: a void callback visits every key exactly once with its value",
                   "[conformance][map.range]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  std::map<std::uint64_t, std::uint64_t> model;
  std::size_t calls = 0;
  m.range([&](const typename K::key_type&, const typename K::value_type&) { ++calls; });
  CHECK(calls == 0);

  for (std::uint64_t i = 0; i < 300; ++i) {
    m.store(K::key(i), K::value(i + 7));
    model[i] = i + 7;
  }
  for (std::uint64_t i = 0; i < 300; i += 3) {
    m.erase(K::key(i));
    model.erase(i);
  }
  // Read some keys a lot, so part of the map is promoted and part is only in the dirty map.
  for (int r = 0; r < 10; ++r)
    for (std::uint64_t i = 0; i < 100; ++i) (void)m.load(K::key(i));
  for (std::uint64_t i = 300; i < 350; ++i) {
    m.store(K::key(i), K::value(i + 7));
    model[i] = i + 7;
  }
  std::size_t dup = 0;
  auto seen = read_back<K>(m, &dup);
  CHECK(dup == 0);
  CHECK(seen == model);
}

TEMPLATE_TEST_CASE("map.range: a callback returning false stops the iteration at once",
                   "[conformance][map.range]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  for (std::uint64_t i = 0; i < 100; ++i) m.store(K::key(i), K::value(i));
  std::size_t calls = 0;
  m.range([&](const typename K::key_type&, const typename K::value_type&) {
    ++calls;
    return calls < 3;
  });
  CHECK(calls == 3);
  calls = 0;
  m.range([&](const typename K::key_type&, const typename K::value_type&) {
    ++calls;
    return false;
  });
  CHECK(calls == 1);
  calls = 0;
  m.range([&](const typename K::key_type&, const typename K::value_type&) {
    ++calls;
    return true;
  });
  CHECK(calls == 100);
}

TEMPLATE_TEST_CASE("map.range: f may call any method of the map, including store and erase",
                   "[conformance][map.range]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  for (std::uint64_t i = 0; i < 64; ++i) m.store(K::key(i), K::value(i));
  std::set<std::uint64_t> visited;
  std::size_t dup = 0;
  m.range([&](const typename K::key_type& k, const typename K::value_type& v) {
    const std::uint64_t id = K::key_id(k);
    if (!visited.insert(id).second) ++dup;
    // The value handed to f stays valid while f changes its key.
    // NOLINTNEXTLINE(performance-unnecessary-copy-initialization): v's value before the store
    const auto copy = v;
    m.store(k, K::value(K::value_id(v) + 1000));
    CHECK(v == copy);
    if (id < 10000) {
      CHECK(m.erase(K::key(id + 10000)) == false);
      m.store(K::key(id + 10000), K::value(1));  // new keys may or may not be visited
    }
    CHECK(m.contains(k));
    CHECK(m.size() >= 1);
  });
  CHECK(dup == 0);
  for (std::uint64_t i = 0; i < 64; ++i) {
    CHECK(visited.count(i) == 1);
    CHECK(*m.load(K::key(i)) == K::value(i + 1000));
  }
}

TEMPLATE_TEST_CASE("map.range: an exception from f propagates and leaves the map usable",
                   "[conformance][map.range]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  for (std::uint64_t i = 0; i < 50; ++i) m.store(K::key(i), K::value(i));
  std::size_t calls = 0;
  CHECK_THROWS_AS(m.range([&](const typename K::key_type&, const typename K::value_type&) {
    if (++calls == 5) throw std::runtime_error("stop");
  }),
                  std::runtime_error);
  CHECK(calls == 5);
  // No lock may be left held: every operation still works, on every shard.
  for (std::uint64_t i = 0; i < 50; ++i) {
    m.store(K::key(i), K::value(i + 1));
    REQUIRE(*m.load(K::key(i)) == K::value(i + 1));
  }
  m.clear();
  CHECK(m.empty());
}
