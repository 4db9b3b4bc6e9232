// SPEC "The map": "Every operation on one key is linearizable" — a load racing with the
// promotion of the key's dirty map.
//
// A load probes the read table without a lock and, on a miss under an amended view, looks
// in the dirty map under the shard's mutex. If a promotion runs between the two steps, it
// moves the key from the dirty map into a table and publishes an unamended view. The miss
// path must go by the view it probed (amended: look under the mutex), not by a fresh load of
// the view (unamended: "absent"), or a key present throughout is reported absent. The race
// is put in place deterministically with map_test_access::lookup_split; range() promotes an
// amended shard before it walks it.
#include <cstdint>
#include <string>

#include "numamap/numamap.hpp"
#include "test_catch.hpp"

namespace {
using u64_map = numamap::concurrent_map<std::uint64_t, std::uint64_t>;
using str_map = numamap::concurrent_map<std::string, std::string>;
}  // namespace

TEST_CASE("map.load: a promotion between the probe and the miss path loses no key",
          "[conformance][map.load]") {
  u64_map::options o;
  o.shards_per_node = 1;
  u64_map m(o);
  for (std::uint64_t k = 0; k < 10; ++k) m.store(k, k);  // a new shard: all in the dirty map
  std::uint64_t promoted_before = 0;
  for (const auto& s : m.stats().shards) promoted_before += s.promotions;
  bool ran = false;
  const bool found = numamap::detail::map_test_access::lookup_split(m, std::uint64_t{3}, [&] {
    m.range([](const std::uint64_t&, const std::uint64_t&) {});  // promotes the dirty map
    ran = true;
  });
  REQUIRE(ran);  // the probe missed (the key was in the dirty map), so the race happened
  std::uint64_t promoted_after = 0;
  for (const auto& s : m.stats().shards) promoted_after += s.promotions;
  CHECK(promoted_after > promoted_before);
  CHECK(found);
  CHECK(m.load(3) == 3U);
}

TEST_CASE("map.contains: the same race with string keys (kept in key nodes)",
          "[conformance][map.load]") {
  str_map::options o;
  o.shards_per_node = 1;
  str_map m(o);
  for (int k = 0; k < 10; ++k) m.store("key-" + std::to_string(k), "v");
  bool ran = false;
  const bool found = numamap::detail::map_test_access::lookup_split(m, std::string("key-7"), [&] {
    m.range([](const std::string&, const std::string&) {});
    ran = true;
  });
  REQUIRE(ran);
  CHECK(found);
  // And a key that really is absent stays absent through the same race.
  bool ran2 = false;
  CHECK_FALSE(numamap::detail::map_test_access::lookup_split(m, std::string("key-99"), [&] {
    m.store("key-10", "v");
    ran2 = true;
  }));
  CHECK(ran2);
}
