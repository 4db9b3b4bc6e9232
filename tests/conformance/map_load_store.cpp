// SPEC "The map": load, store, load_or_store, load_and_delete, erase, exchange — the Go
// sync.Map operations that read or write one key, checked sequentially for inline values
// (uint64) and out-of-line values (std::string).
#include <cstdint>
#include <optional>
#include <string>

#include "map_kinds.hpp"
#include "test_catch.hpp"

using numamap_test::string_kind;
using numamap_test::u64_kind;

TEMPLATE_TEST_CASE("map.load (Load): absent gives nullopt, present gives the stored value",
                   "[conformance][map.load]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  CHECK_FALSE(m.load(K::key(1)).has_value());
  m.store(K::key(1), K::value(10));
  auto v = m.load(K::key(1));
  REQUIRE(v.has_value());
  CHECK(*v == K::value(10));
  CHECK_FALSE(m.load(K::key(2)).has_value());
  // A load does not insert.
  CHECK(m.size() == 1);
}

TEMPLATE_TEST_CASE("map.store (Store): inserts, then overwrites the value of an existing key",
                   "[conformance][map.store]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  m.store(K::key(1), K::value(10));
  CHECK(m.size() == 1);
  m.store(K::key(1), K::value(11));
  CHECK(m.size() == 1);
  CHECK(m.load(K::key(1)) == std::optional<typename K::value_type>(K::value(11)));
  m.store(K::key(2), K::value(20));
  CHECK(m.size() == 2);
  CHECK(m.load(K::key(1)) == std::optional<typename K::value_type>(K::value(11)));
  CHECK(m.load(K::key(2)) == std::optional<typename K::value_type>(K::value(20)));
  // Many keys, each overwritten, each read back after being promoted by repeated loads.
  for (std::uint64_t i = 0; i < 500; ++i) m.store(K::key(i), K::value(i));
  for (std::uint64_t i = 0; i < 500; ++i) m.store(K::key(i), K::value(i + 1000));
  for (int round = 0; round < 3; ++round) {
    for (std::uint64_t i = 0; i < 500; ++i) {
      auto v = m.load(K::key(i));
      REQUIRE(v.has_value());
      REQUIRE(*v == K::value(i + 1000));
    }
  }
  CHECK(m.size() == 500);
  // Overwrite again after the promotion: the read snapshot must not serve the old value.
  for (std::uint64_t i = 0; i < 500; ++i) m.store(K::key(i), K::value(i + 2000));
  for (std::uint64_t i = 0; i < 500; ++i) REQUIRE(*m.load(K::key(i)) == K::value(i + 2000));
}

TEMPLATE_TEST_CASE("map.load_or_store (LoadOrStore): (actual, loaded)",
                   "[conformance][map.load_or_store]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  auto r1 = m.load_or_store(K::key(1), K::value(10));
  CHECK(r1.first == K::value(10));
  CHECK_FALSE(r1.second);
  auto r2 = m.load_or_store(K::key(1), K::value(11));
  CHECK(r2.first == K::value(10));
  CHECK(r2.second);
  CHECK(*m.load(K::key(1)) == K::value(10));
  CHECK(m.size() == 1);
  // After a delete the key is absent again: the next load_or_store stores.
  CHECK(m.erase(K::key(1)));
  auto r3 = m.load_or_store(K::key(1), K::value(12));
  CHECK(r3.first == K::value(12));
  CHECK_FALSE(r3.second);
  CHECK(*m.load(K::key(1)) == K::value(12));
  // Also on a key that sits in the read snapshot (loaded often) after its deletion.
  for (int i = 0; i < 64; ++i) (void)m.load(K::key(1));
  CHECK(m.erase(K::key(1)));
  for (int i = 0; i < 64; ++i) CHECK_FALSE(m.load(K::key(1)).has_value());
  auto r4 = m.load_or_store(K::key(1), K::value(13));
  CHECK(r4.first == K::value(13));
  CHECK_FALSE(r4.second);
  CHECK(*m.load(K::key(1)) == K::value(13));
}

TEMPLATE_TEST_CASE("map.load_and_delete (LoadAndDelete): the removed value, or nullopt",
                   "[conformance][map.load_and_delete]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  CHECK_FALSE(m.load_and_delete(K::key(1)).has_value());
  m.store(K::key(1), K::value(10));
  m.store(K::key(2), K::value(20));
  auto v = m.load_and_delete(K::key(1));
  REQUIRE(v.has_value());
  CHECK(*v == K::value(10));
  CHECK_FALSE(m.load(K::key(1)).has_value());
  CHECK_FALSE(m.contains(K::key(1)));
  CHECK_FALSE(m.load_and_delete(K::key(1)).has_value());
  CHECK(m.size() == 1);
  CHECK(*m.load(K::key(2)) == K::value(20));
  // Promoted key, then deleted twice.
  for (int i = 0; i < 64; ++i) (void)m.load(K::key(2));
  CHECK(*m.load_and_delete(K::key(2)) == K::value(20));
  CHECK_FALSE(m.load_and_delete(K::key(2)).has_value());
  CHECK(m.empty());
}

TEMPLATE_TEST_CASE("map.erase (Delete): true if a value was there", "[conformance][map.erase]",
                   u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  CHECK_FALSE(m.erase(K::key(1)));
  m.store(K::key(1), K::value(10));
  CHECK(m.erase(K::key(1)));
  CHECK_FALSE(m.erase(K::key(1)));
  CHECK_FALSE(m.load(K::key(1)).has_value());
  CHECK(m.size() == 0);
  CHECK(m.empty());
  // Store after erase brings the key back; erase of a promoted key; store again.
  m.store(K::key(1), K::value(11));
  for (int i = 0; i < 64; ++i) REQUIRE(*m.load(K::key(1)) == K::value(11));
  CHECK(m.erase(K::key(1)));
  CHECK_FALSE(m.contains(K::key(1)));
  m.store(K::key(1), K::value(12));
  CHECK(*m.load(K::key(1)) == K::value(12));
  CHECK(m.size() == 1);
}

TEMPLATE_TEST_CASE("map.exchange (Swap): stores and returns the previous value, if any",
                   "[conformance][map.exchange]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  CHECK_FALSE(m.exchange(K::key(1), K::value(10)).has_value());
  CHECK(*m.load(K::key(1)) == K::value(10));
  auto prev = m.exchange(K::key(1), K::value(11));
  REQUIRE(prev.has_value());
  CHECK(*prev == K::value(10));
  CHECK(*m.load(K::key(1)) == K::value(11));
  CHECK(m.size() == 1);
  CHECK(m.erase(K::key(1)));
  CHECK_FALSE(m.exchange(K::key(1), K::value(12)).has_value());
  CHECK(*m.load(K::key(1)) == K::value(12));
  CHECK(m.size() == 1);
}

TEMPLATE_TEST_CASE("map: every key keeps its own value across many keys and deletions",
                   "[conformance][map.store][map.erase]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  constexpr std::uint64_t n = 2000;
  for (std::uint64_t i = 0; i < n; ++i) m.store(K::key(i), K::value(i * 3));
  for (std::uint64_t i = 0; i < n; i += 2) REQUIRE(m.erase(K::key(i)));
  CHECK(m.size() == n / 2);
  for (int round = 0; round < 2; ++round) {
    for (std::uint64_t i = 0; i < n; ++i) {
      auto v = m.load(K::key(i));
      if (i % 2 == 0) {
        REQUIRE_FALSE(v.has_value());
      } else {
        REQUIRE(v.has_value());
        REQUIRE(*v == K::value(i * 3));
      }
    }
  }
}
