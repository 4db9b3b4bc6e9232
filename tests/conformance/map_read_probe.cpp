// options.probe and options.probe_cache_bytes (decisions.md D33, D54): lock-free lookups probe a
// read table on its tag bytes or slot by slot, chosen per table when its view is published.
// Checked through map_test_access::read_table (which probe each shard's current view names)
// and through the fast attempt alone (map_test_access::try_lookup), which must answer every
// key the same whichever probe the view names: hits with their words, absent keys absent.
#include <cstddef>
#include <cstdint>
#include <numamap/numamap.hpp>
#include <set>
#include <stdexcept>
#include <string>

#include "map_kinds.hpp"
#include "test_catch.hpp"

namespace {

using numamap::read_probe;
using numamap::detail::map_test_access;
using numamap::detail::read_outcome;

using map_t = numamap::concurrent_map<std::uint64_t, std::uint64_t>;

map_t::options options_with(read_probe p, std::size_t cache_bytes = 0) {
  map_t::options o;
  o.shards_per_node = 1;
  o.probe = p;
  o.probe_cache_bytes = cache_bytes;
  return o;
}

std::size_t shard_count(const map_t& m) { return m.stats().shards.size(); }

/// Loads every key of [0, n) until the fast attempt answers it from the read snapshot
/// (promotions move the dirty maps there); false if some key never gets there.
bool all_in_read_tables(const map_t& m, std::uint64_t n) {
  for (std::uint64_t k = 0; k < n; ++k) {
    if (!numamap_test::until_fast_hit(m, k)) return false;
  }
  return true;
}

/// Through the fast attempt alone: keys [0, n) hit with their words (k * 3 + 1), keys past
/// them that no store touched are absent or, in a view still amended, handed on.
void check_answers(const map_t& m, std::uint64_t n) {
  std::size_t wrong = 0;
  for (std::uint64_t k = 0; k < n; ++k) {
    std::uint64_t w = 0;
    if (map_test_access::try_lookup(m, k, w) != read_outcome::hit || w != k * 3 + 1) ++wrong;
  }
  CHECK(wrong == 0);
  std::size_t absent = 0;
  for (std::uint64_t k = n + 1; k < n + 2001; ++k) {
    std::uint64_t w = 0;
    const read_outcome r = map_test_access::try_lookup(m, k, w);
    CHECK(r != read_outcome::hit);
    if (r == read_outcome::absent) ++absent;
    CHECK_FALSE(m.load(k).has_value());
  }
  CHECK(absent > 0);
}

}  // namespace

TEST_CASE("read probe: forced tags or slots name every read table's probe; answers agree",
          "[conformance][probe]") {
  for (const read_probe p : {read_probe::tags, read_probe::slots}) {
    INFO("probe " << (p == read_probe::tags ? "tags" : "slots"));
    map_t m(options_with(p));
    constexpr std::uint64_t n = 20000;
    std::set<std::size_t> capacities;
    for (std::uint64_t k = 0; k < n; ++k) {
      m.store(k, k * 3 + 1);
      if ((k & (k + 1)) == 0 || k + 1 == n) {  // at 1, 2, 4, ... keys and at the end
        REQUIRE(all_in_read_tables(m, k + 1));
        for (std::size_t i = 0; i < shard_count(m); ++i) {
          const auto t = map_test_access::read_table(m, i);
          CHECK(t.tags == (p == read_probe::tags));
          capacities.insert(t.capacity);
        }
      }
    }
    CHECK(capacities.size() >= 5);  // the read tables grew through several sizes
    check_answers(m, n);
  }
}

TEST_CASE("read probe: automatic probes on tags exactly the tables in the cache window",
          "[conformance][probe]") {
  // A cache of four times 4096 tag bytes per shard: tables of up to 4096 slots are probed
  // on their tags, from the smallest on (decisions.md D54), those of 8192 or more slot by
  // slot.
  const std::size_t shards = shard_count(map_t(options_with(read_probe::slots)));
  const std::size_t cache = shards * 4096 * 4;
  map_t m(options_with(read_probe::automatic, cache));
  auto expected = [&](std::size_t capacity) { return capacity * shards <= cache / 4; };
  std::set<std::size_t> with_tags;
  std::set<std::size_t> above;
  const std::uint64_t n = 40000 * shards;  // past the window: 65536-slot tables
  for (std::uint64_t k = 0; k < n; ++k) {
    m.store(k, k * 3 + 1);
    if ((k & (k + 1)) == 0 || k + 1 == n || k % 4096 == 0) {
      REQUIRE(all_in_read_tables(m, k + 1));
      for (std::size_t i = 0; i < shards; ++i) {
        const auto t = map_test_access::read_table(m, i);
        INFO("shard " << i << ", capacity " << t.capacity);
        CHECK(t.tags == expected(t.capacity));
        (t.tags ? with_tags : above).insert(t.capacity);
      }
    }
  }
  // Both sides of the window were seen, and the smallest tables were in it.
  REQUIRE_FALSE(with_tags.empty());
  CHECK(*with_tags.begin() <= 64);
  CHECK(*with_tags.rbegin() == 4096);
  CHECK_FALSE(above.empty());
  check_answers(m, n);
}

TEST_CASE("read probe: a cache too small for any tags, and the machine's own cache",
          "[conformance][probe]") {
  for (const std::size_t cache : {std::size_t{1}, std::size_t{0}}) {
    INFO("probe_cache_bytes " << cache);
    map_t m(options_with(read_probe::automatic, cache));
    constexpr std::uint64_t n = 5000;
    for (std::uint64_t k = 0; k < n; ++k) m.store(k, k * 3 + 1);
    REQUIRE(all_in_read_tables(m, n));
    if (cache == 1) {
      for (std::size_t i = 0; i < shard_count(m); ++i) {
        CHECK_FALSE(map_test_access::read_table(m, i).tags);
      }
    }
    check_answers(m, n);
  }
}

TEST_CASE("read probe: a value that is no read_probe is refused", "[conformance][probe]") {
  map_t::options o;
  o.probe = static_cast<read_probe>(7);
  CHECK_THROWS_AS(map_t(o), std::invalid_argument);
  std::string what;
  try {
    map_t m(o);
  } catch (const std::invalid_argument& e) {
    what = e.what();
  }
  CHECK(what.find("options.probe = 7") != std::string::npos);
}
