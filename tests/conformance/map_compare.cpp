// SPEC "The map": compare_and_swap (CompareAndSwap) and compare_and_delete (CompareAndDelete).
#include <cstdint>
#include <optional>

#include "map_kinds.hpp"
#include "test_catch.hpp"

using numamap_test::string_kind;
using numamap_test::u64_kind;

TEMPLATE_TEST_CASE("map.compare_and_swap (CompareAndSwap): swaps only an equal present value",
                   "[conformance][map.compare_and_swap]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  // Absent key: no swap, nothing inserted.
  CHECK_FALSE(m.compare_and_swap(K::key(1), K::value(10), K::value(11)));
  CHECK_FALSE(m.contains(K::key(1)));
  CHECK(m.size() == 0);

  m.store(K::key(1), K::value(10));
  CHECK_FALSE(m.compare_and_swap(K::key(1), K::value(99), K::value(11)));
  CHECK(*m.load(K::key(1)) == K::value(10));
  CHECK(m.compare_and_swap(K::key(1), K::value(10), K::value(11)));
  CHECK(*m.load(K::key(1)) == K::value(11));
  // The old expected value no longer matches.
  CHECK_FALSE(m.compare_and_swap(K::key(1), K::value(10), K::value(12)));
  CHECK(*m.load(K::key(1)) == K::value(11));
  CHECK(m.size() == 1);

  // On a promoted key, and on a deleted one.
  for (int i = 0; i < 64; ++i) (void)m.load(K::key(1));
  CHECK(m.compare_and_swap(K::key(1), K::value(11), K::value(13)));
  CHECK(*m.load(K::key(1)) == K::value(13));
  CHECK(m.erase(K::key(1)));
  CHECK_FALSE(m.compare_and_swap(K::key(1), K::value(13), K::value(14)));
  CHECK_FALSE(m.contains(K::key(1)));
  CHECK(m.size() == 0);
}

TEMPLATE_TEST_CASE("map.compare_and_delete (CompareAndDelete): deletes only an equal value",
                   "[conformance][map.compare_and_delete]", u64_kind, string_kind) {
  using K = TestType;
  typename K::map_type m;
  CHECK_FALSE(m.compare_and_delete(K::key(1), K::value(10)));
  m.store(K::key(1), K::value(10));
  m.store(K::key(2), K::value(20));
  CHECK_FALSE(m.compare_and_delete(K::key(1), K::value(20)));
  CHECK(*m.load(K::key(1)) == K::value(10));
  CHECK(m.compare_and_delete(K::key(1), K::value(10)));
  CHECK_FALSE(m.contains(K::key(1)));
  CHECK_FALSE(m.compare_and_delete(K::key(1), K::value(10)));
  CHECK(m.size() == 1);
  CHECK(*m.load(K::key(2)) == K::value(20));
  // Promoted key.
  for (int i = 0; i < 64; ++i) (void)m.load(K::key(2));
  CHECK(m.compare_and_delete(K::key(2), K::value(20)));
  CHECK(m.empty());
  CHECK_FALSE(m.load(K::key(2)).has_value());
}
