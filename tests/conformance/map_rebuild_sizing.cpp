// A rebuild sizes its new table from the shard's live-key count, which lags the writers in
// flight (decisions.md D26). When more entries survive than the count says, the copy grows
// the new, unpublished table; when that growth finds no memory, the promotion is abandoned
// and the old table stays current. Either way no key is lost and no block leaks. Here the
// count is made to lag on purpose (map_test_access::skew_size): it says the first `n` keys
// are gone while they are all still there. One shard per node (of topology::system(): a
// synthetic one needs hwloc, which the no-dependency build lacks).
#include <cstdint>
#include <functional>
#include <new>
#include <numamap/numamap.hpp>
#include <vector>

#include "test_catch.hpp"
#include "test_types.hpp"

namespace {

using numamap::detail::map_test_access;
using numamap_test::alloc_faults;
using numamap_test::faulty_memory;

// NOLINTBEGIN(modernize-use-transparent-functors): std::equal_to<Key> keeps key_test_only
using map_t = numamap::concurrent_map<std::uint64_t, std::uint64_t, std::hash<std::uint64_t>,
                                      std::equal_to<std::uint64_t>, faulty_memory>;
// NOLINTEND(modernize-use-transparent-functors)

// The fill leaves the table little room (3000 keys in 4096 slots, full at 3328), so the
// rebuild comes after a few hundred fresh keys, and a table sized for those must grow.
constexpr std::uint64_t n = 3000;

std::uint64_t value_of(std::uint64_t k) { return k * 3 + 1; }

map_t::options one_shard(const faulty_memory& mem) {
  map_t::options o;
  o.shards_per_node = 1;
  o.memory = mem;
  return o;
}

/// Rebuilds, all shards together.
std::uint64_t rebuilds(const map_t& m) {
  std::uint64_t r = 0;
  for (const auto& s : m.stats().shards) r += s.rebuilds;
  return r;
}

/// n keys, then counts that say they are gone; returns what was taken from each shard.
std::vector<std::int64_t> fill_and_skew(map_t& m) {
  for (std::uint64_t k = 0; k < n; ++k) m.store(k, value_of(k));
  std::vector<std::int64_t> taken;
  for (const auto& s : m.stats().shards) taken.push_back(static_cast<std::int64_t>(s.entries));
  for (std::size_t i = 0; i < taken.size(); ++i) map_test_access::skew_size(m, i, -taken[i]);
  return taken;
}

/// Gives back what fill_and_skew took.
void unskew(map_t& m, const std::vector<std::int64_t>& taken) {
  for (std::size_t i = 0; i < taken.size(); ++i) map_test_access::skew_size(m, i, taken[i]);
}

/// Keys [0, end) that load with their value.
std::uint64_t keys_intact(const map_t& m, std::uint64_t end) {
  std::uint64_t ok = 0;
  for (std::uint64_t k = 0; k < end; ++k) ok += m.load(k) == value_of(k) ? 1 : 0;
  return ok;
}

/// Fresh keys from `next` until a store rebuilds the table (at most 10 n); returns the key
/// whose store did, and the allocations counted before that store in `allocs_before`.
std::uint64_t store_until_rebuild(map_t& m, std::uint64_t next, long& allocs_before) {
  const std::uint64_t r0 = rebuilds(m);
  for (; next < 10 * n; ++next) {
    allocs_before = alloc_faults().calls();
    m.store(next, value_of(next));
    if (rebuilds(m) != r0) return next;
  }
  return next;
}

}  // namespace

TEST_CASE("rebuild: a live count below the surviving entries grows the new table as it copies",
          "[conformance][rebuild]") {
  numamap_test::reset_all_faults();
  faulty_memory mem;
  {
    map_t m(one_shard(mem));
    const auto taken = fill_and_skew(m);
    CHECK(m.size() == 0);  // what the rebuild will believe
    long ignored = 0;
    const std::uint64_t k = store_until_rebuild(m, n, ignored);
    REQUIRE(k < 10 * n);
    // The table it sized for the count held a fraction of the survivors: the copy grew it
    // (the next test makes that growth fail, and fails itself if the rebuild does not grow).
    unskew(m, taken);
    CHECK(m.size() == k + 1);
    CHECK(keys_intact(m, k + 1) == k + 1);
  }
  INFO(mem.ledger().error_text());
  CHECK(mem.ledger().errors.load() == 0);
  CHECK(mem.ledger().live_blocks() == 0);
}

TEST_CASE("rebuild: no memory to grow the new table abandons the promotion and loses nothing",
          "[conformance][rebuild]") {
  numamap_test::reset_all_faults();
  faulty_memory mem;
  // A first run finds which store rebuilds, and how many allocations come before it.
  long allocs_before = 0;
  std::uint64_t k = 0;
  long start = 0;
  {
    map_t m(one_shard(mem));
    (void)fill_and_skew(m);
    start = alloc_faults().calls();
    k = store_until_rebuild(m, n, allocs_before);
    REQUIRE(k < 10 * n);
  }
  const long offset = allocs_before - start;
  // The same run again, with the rebuild's second allocation (its first growth: the first is
  // the new table) failing.
  numamap_test::reset_all_faults();
  {
    map_t m(one_shard(mem));
    const auto taken = fill_and_skew(m);
    const std::uint64_t r0 = rebuilds(m);
    for (std::uint64_t i = n; i < k; ++i) m.store(i, value_of(i));
    REQUIRE(alloc_faults().calls() - start == offset);  // the same sequence so far
    alloc_faults().arm(2);
    m.store(k, value_of(k));  // the promotion is an optimisation: its failure is not the store's
    CHECK(alloc_faults().fired());
    alloc_faults().disarm();
    CHECK(rebuilds(m) == r0);  // abandoned: the old table is still the read table
    CHECK(keys_intact(m, k + 1) == k + 1);
    // With memory again, a later store promotes, and still nothing is lost.
    long ignored = 0;
    const std::uint64_t k2 = store_until_rebuild(m, k + 1, ignored);
    REQUIRE(k2 < 10 * n);
    unskew(m, taken);
    CHECK(m.size() == k2 + 1);
    CHECK(keys_intact(m, k2 + 1) == k2 + 1);
  }
  numamap_test::reset_all_faults();
  INFO(mem.ledger().error_text());
  CHECK(mem.ledger().errors.load() == 0);
  CHECK(mem.ledger().live_blocks() == 0);
}
