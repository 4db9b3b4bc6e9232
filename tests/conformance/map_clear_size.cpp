// SPEC "The map": clear (Clear), size ("exact when no writer runs concurrently"), empty.
#include <cstdint>

#include "map_kinds.hpp"
#include "test_catch.hpp"

using numamap_test::read_back;
using numamap_test::stats_entries;
using numamap_test::string_kind;
using numamap_test::u64_kind;

TEMPLATE_TEST_CASE("map.size / map.empty: exact count of live keys when quiescent",
                   "[conformance][map.size][map.empty]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  CHECK(m.size() == 0);
  CHECK(m.empty());
  m.store(K::key(1), K::value(1));
  CHECK(m.size() == 1);
  CHECK_FALSE(m.empty());
  m.store(K::key(1), K::value(2));  // overwrite: no new key
  (void)m.load_or_store(K::key(1), K::value(3));
  (void)m.exchange(K::key(1), K::value(4));
  (void)m.compare_and_swap(K::key(1), K::value(4), K::value(5));
  CHECK(m.size() == 1);
  (void)m.load_or_store(K::key(2), K::value(1));
  (void)m.exchange(K::key(3), K::value(1));
  (void)m.load_or_compute(K::key(4), [] { return K::value(1); });
  CHECK(m.size() == 4);
  CHECK_FALSE(m.erase(K::key(99)));
  CHECK_FALSE(m.load_and_delete(K::key(99)).has_value());
  CHECK_FALSE(m.compare_and_delete(K::key(1), K::value(99)));
  CHECK(m.size() == 4);
  CHECK(m.erase(K::key(1)));
  CHECK(m.load_and_delete(K::key(2)).has_value());
  CHECK(m.compare_and_delete(K::key(3), K::value(1)));
  CHECK(m.size() == 1);
  CHECK(m.erase(K::key(4)));
  CHECK(m.size() == 0);
  CHECK(m.empty());

  for (std::uint64_t i = 0; i < 1000; ++i) m.store(K::key(i), K::value(i));
  CHECK(m.size() == 1000);
  for (int r = 0; r < 4; ++r)
    for (std::uint64_t i = 0; i < 1000; ++i) (void)m.load(K::key(i));
  for (std::uint64_t i = 0; i < 1000; i += 4) m.erase(K::key(i));
  CHECK(m.size() == 750);
  CHECK(stats_entries(m) == 750);
}

TEMPLATE_TEST_CASE("map.clear (Clear): removes every key; the map stays usable",
                   "[conformance][map.clear]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  m.clear();  // on an empty map
  CHECK(m.empty());
  for (int round = 0; round < 3; ++round) {
    for (std::uint64_t i = 0; i < 400; ++i) m.store(K::key(i), K::value(i + round));
    // Promote part of it so clear has to drop both the read snapshot and the dirty map.
    for (int r = 0; r < 3; ++r)
      for (std::uint64_t i = 0; i < 200; ++i) (void)m.load(K::key(i));
    for (std::uint64_t i = 400; i < 450; ++i) m.store(K::key(i), K::value(i));
    m.clear();
    CHECK(m.size() == 0);
    CHECK(m.empty());
    CHECK(stats_entries(m) == 0);
    for (std::uint64_t i = 0; i < 450; ++i) {
      REQUIRE_FALSE(m.load(K::key(i)).has_value());
      REQUIRE_FALSE(m.contains(K::key(i)));
    }
    CHECK(read_back<K>(m).empty());
    // Usable after clear: stores, load_or_store reports "stored", deletes report absence.
    auto r = m.load_or_store(K::key(5), K::value(55));
    CHECK_FALSE(r.second);
    CHECK(*m.load(K::key(5)) == K::value(55));
    CHECK_FALSE(m.erase(K::key(6)));
    CHECK(m.size() == 1);
    m.clear();
  }
}
