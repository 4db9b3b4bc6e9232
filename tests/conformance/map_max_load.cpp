// A read table takes new keys until it is max_load_num / max_load_den (13/16) full; only then
// do new keys go to the dirty map (decisions.md D28). Checked at every store of a fill: the
// table is never fuller than that, and each time a store finds no room (its shard's view
// becomes amended while the table stays), the table was exactly at that load, not below it.
// One shard per node of topology::system(), so the shards' tables grow large.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numamap/numamap.hpp>
#include <vector>

#include "test_catch.hpp"

namespace {

using numamap::detail::map_test_access;
using numamap::detail::max_load_den;
using numamap::detail::max_load_num;

using map_t = numamap::concurrent_map<std::uint64_t, std::uint64_t>;

}  // namespace

TEST_CASE("map: a read table fills to its maximum load before new keys go to the dirty map",
          "[conformance][promotion]") {
  STATIC_REQUIRE(max_load_num * 16 == max_load_den * 13);
  map_t::options o;
  o.shards_per_node = 1;
  map_t m(o);
  constexpr std::uint64_t keys = 40000;
  std::size_t overflows = 0;  // stores that found a large table full
  std::size_t largest = 0;
  for (std::uint64_t k = 0; k < keys; ++k) {
    const std::size_t i = map_test_access::shard_of(m, k);
    const auto before = map_test_access::read_table(m, i);
    m.store(k, k + 1);
    const auto after = map_test_access::read_table(m, i);
    INFO("key " << k << ", shard " << i << ", capacity " << after.capacity << ", used "
                << after.used);
    REQUIRE(after.used * max_load_den <= after.capacity * max_load_num);
    largest = std::max(largest, after.capacity);
    if (before.capacity >= 64 && !before.amended && after.amended && after.table == before.table) {
      ++overflows;
      // No key was erased, so every full slot is a live key: the table had no room left.
      CHECK(before.used * max_load_den == before.capacity * max_load_num);
    }
  }
  CHECK(overflows >= 3);  // the case under test happened, at several sizes
  CHECK(largest >= 4096);
  CHECK(m.size() == keys);
  for (std::uint64_t k = 0; k < keys; k += 97) CHECK(m.load(k) == k + 1);
}

// A full table whose deleted entries outnumber its live ones is rebuilt by the store that
// finds it full, and the new key goes into the new table: no round through the dirty map,
// which would grow by doubling only to be promoted into a rebuild anyway (decisions.md D31).
// The new table is sized for the live keys (capacity_for), and twice that when it would
// have fewer than crowded_double_below slots (decisions.md D52). Keys come and go at a
// steady count per shard, about `per_shard` (one shard per node).
namespace {

struct rebuild_counts {
  std::size_t compacted = 0;  // full tables with more deleted entries than live keys
  std::size_t doubled = 0;    // of those, rebuilt with twice the room
  std::size_t amended = 0;    // full tables with fewer
};

rebuild_counts check_crowded_rebuilds(std::uint64_t per_shard, std::size_t min_capacity) {
  using numamap::detail::capacity_for;
  map_t::options o;
  o.shards_per_node = 1;
  map_t m(o);
  const std::uint64_t live_keys = per_shard * m.shard_count();
  const std::size_t small = numamap::detail::crowded_double_below;
  std::vector<std::size_t> live(m.shard_count(), 0);
  for (std::uint64_t k = 0; k < live_keys; ++k) {
    m.store(k, k + 1);
    ++live[map_test_access::shard_of(m, k)];
  }
  rebuild_counts n;
  for (std::uint64_t k = live_keys; k < 20 * live_keys; ++k) {
    const std::size_t i = map_test_access::shard_of(m, k);
    const auto before = map_test_access::read_table(m, i);
    const std::size_t live_before = live[i];
    m.store(k, k + 1);
    ++live[i];
    const auto after = map_test_access::read_table(m, i);
    const std::uint64_t old = k - live_keys;
    REQUIRE(m.erase(old));
    --live[map_test_access::shard_of(m, old)];
    const bool full = (before.used + 1) * max_load_den > before.capacity * max_load_num;
    if (!full || before.amended || before.capacity < min_capacity) continue;
    INFO("key " << k << ", shard " << i << ", live " << live_before << ", full slots "
                << before.used << " of " << before.capacity << ", now " << after.capacity);
    // Not amended: every live key of the shard is in the table, the other full slots are
    // deleted entries.
    if (before.used > 2 * live_before + 8) {
      ++n.compacted;
      CHECK(after.table != before.table);
      CHECK_FALSE(after.amended);
      CHECK(after.used * 2 <= after.capacity);
      const std::size_t sized = capacity_for(live_before);
      const bool twice = sized < small;
      CHECK(after.capacity == (twice ? 2 * sized : sized));
      if (twice) ++n.doubled;
    } else {
      ++n.amended;
      CHECK(after.table == before.table);
      CHECK(after.amended);
    }
  }
  CHECK(m.size() == live_keys);
  for (std::uint64_t k = 19 * live_keys; k < 20 * live_keys; k += 7) CHECK(m.load(k) == k + 1);
  return n;
}

}  // namespace

TEST_CASE("map: a full table crowded by deleted entries is rebuilt at once, not amended",
          "[conformance][promotion]") {
  SECTION("tables of thousands of slots: sized for the live keys") {
    const rebuild_counts n = check_crowded_rebuilds(3000, 64);  // rebuilt to 8192 slots
    CHECK(n.compacted >= 3);
    CHECK(n.doubled == 0);
    CHECK(n.amended >= 1);
  }
  SECTION("small tables: twice the room") {
    const rebuild_counts n = check_crowded_rebuilds(40, 16);  // rebuilt to 2 x 128 slots
    CHECK(n.compacted >= 3);
    CHECK(n.doubled == n.compacted);
  }
}
