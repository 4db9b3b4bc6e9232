// An insert with the shard mutex held that finds the read table full and crowded by deleted
// entries rebuilds it first (decisions.md D31). When that rebuild finds no memory, the table
// comes back closed (entry_table::thaw) and the key goes to the dirty map. A lock-free claim
// of the same key may have landed in the table after the insert's probe and before the
// rebuild froze it: the insert must probe the table again, as an insert that closes an open
// table does, or the key ends up twice, in the table and in the dirty map (decisions.md D42).
//
// The interleaving is forced: a KeyEqual that parks thread H inside its first two key
// compares, and the main thread M, which holds claim credits for the table, stores keys that
// share H's key's home slot in those two windows. All the keys go to shard 0.
#include <atomic>
#include <cstdint>
#include <functional>
#include <numamap/numamap.hpp>
#include <thread>
#include <utility>

#include "test_catch.hpp"
#include "test_types.hpp"

namespace {

using numamap::detail::map_test_access;
using numamap_test::alloc_faults;
using numamap_test::faulty_memory;

constexpr std::uint64_t big = std::uint64_t{1} << 40;  // keys from here hash to `collide`
std::atomic<std::uint64_t> collide{0};
thread_local bool parked_thread = false;  // H: its compares park
std::atomic<int> h_compares{0};
std::atomic<int> h_parked{0};
std::atomic<int> h_released{0};

/// Small keys hash to themselves; keys from `big` on all to `collide`.
struct test_hash {
  std::size_t operator()(std::uint64_t k) const noexcept {
    return k >= big ? collide.load() : static_cast<std::size_t>(k);
  }
};
/// Equality; on H, the first two calls wait for M to release them.
struct parking_equal {
  bool operator()(std::uint64_t a, std::uint64_t b) const {
    if (parked_thread) {
      const int n = ++h_compares;
      if (n <= 2) {
        h_parked.store(n);
        while (h_released.load() < n) std::this_thread::yield();
      }
    }
    return a == b;
  }
};

using map_t =
    numamap::concurrent_map<std::uint64_t, std::uint64_t, test_hash, parking_equal, faulty_memory>;

bool in_shard0(const map_t& m, std::uint64_t h) {
  return numamap::detail::hashed{numamap::detail::mix64(h)}.shard(m.shard_count()) == 0;
}

}  // namespace

TEST_CASE("load_or_store: a rebuild that fails for memory does not hide a claim of the key",
          "[conformance][rebuild][claims]") {
  numamap_test::reset_all_faults();
  h_compares = 0;
  h_parked = 0;
  h_released = 0;
  faulty_memory mem;
  {
    map_t::options o;
    o.shards_per_node = 1;
    o.memory = mem;
    map_t m(o);
    // 1. M stores fresh keys until it has just been granted claim credits (the table's
    //    used count jumps past the key by the batch counted ahead) in a table of at least
    //    1024 slots, at most 13/16 full with room for the keys below.
    std::uint64_t next = 1;
    auto before = map_test_access::read_table(m, 0);
    bool granted = false;
    for (; next < 1000000 && !granted; ++next) {
      m.store(next, next);
      const auto now = map_test_access::read_table(m, 0);
      granted = in_shard0(m, next) && now.table == before.table && now.used > before.used + 1 &&
                now.capacity >= 1024 && !now.amended && now.used * 2 >= now.capacity &&
                (now.used + 40) * 16 <= 13 * now.capacity;
      before = now;
    }
    REQUIRE(granted);
    const auto info = map_test_access::read_table(m, 0);
    // 2. Another thread, without credits, fills the table to its maximum load under the mutex.
    std::thread filler([&] {
      while ((map_test_access::read_table(m, 0).used + 1) * 16 <= 13 * info.capacity) {
        m.store(next, next);
        ++next;
      }
    });
    filler.join();
    const auto full = map_test_access::read_table(m, 0);
    REQUIRE(full.table == info.table);
    REQUIRE_FALSE(full.amended);
    // 3. M erases every key (lock-free): the table is now crowded by deleted entries.
    for (std::uint64_t k = 1; k < next; ++k) m.erase(k);
    // 4. A home slot h, empty, with at least two more empty slots after it in its group of
    //    16 tags, and a hash for the colliding keys that lands there in shard 0.
    const auto* t = static_cast<const numamap::detail::entry_table<std::uint64_t>*>(full.table);
    const std::size_t cap = t->capacity();
    std::size_t h = cap;
    for (std::size_t i = 0; i < cap && h == cap; ++i) {
      if (!t->is_empty_slot(i)) continue;
      int empty_after = 0;
      for (std::size_t j = i + 1; j % 16 != 0; ++j) empty_after += t->is_empty_slot(j) ? 1 : 0;
      if (empty_after >= 2) h = i;
    }
    REQUIRE(h < cap);
    std::uint64_t v = std::uint64_t{1} << 50;
    while ((numamap::detail::mix64(v) & (cap - 1)) != h || !in_shard0(m, v)) ++v;
    collide = v;
    const std::uint64_t z = big + 1;
    const std::uint64_t y = big + 2;
    const std::uint64_t k = big + 3;
    m.store(z, 1);  // claimed by M at h, lock-free
    REQUIRE_FALSE(t->is_empty_slot(h));
    REQUIRE(map_test_access::read_table(m, 0).table == t);
    // 5. H: load_or_store(k) parks comparing z in its lock-free probe (M claims y at h + 1),
    //    then again in its probe with the mutex held (M claims k at h + 2, lock-free, past
    //    the stop H's probe is about to report). H then finds the table full and crowded,
    //    and its rebuild's first allocation fails.
    std::pair<std::uint64_t, bool> from_h{};
    std::thread ht([&] {
      parked_thread = true;
      from_h = m.load_or_store(k, 111);
      parked_thread = false;
    });
    while (h_parked.load() < 1) std::this_thread::yield();
    m.store(y, 2);
    h_released = 1;
    while (h_parked.load() < 2) std::this_thread::yield();
    const auto from_m = m.load_or_store(k, 222);
    alloc_faults().arm(1);
    h_released = 2;
    ht.join();
    CHECK(alloc_faults().fired());  // the rebuild was tried, and failed
    alloc_faults().disarm();
    CHECK_FALSE(from_m.second);  // M inserted k first
    CHECK(from_m.first == 222U);
    CHECK(from_h.second);  // so H loaded it
    CHECK(from_h.first == 222U);
    // One entry for k: range visits it once, size() counts z, y and k, and one erase removes
    // it from every view.
    int seen = 0;
    m.range([&](std::uint64_t key, std::uint64_t) {
      seen += key == k ? 1 : 0;
      return true;
    });
    CHECK(seen == 1);
    CHECK(m.size() == 3);
    CHECK(m.erase(k));
    CHECK_FALSE(m.load(k).has_value());
    seen = 0;
    m.range([&](std::uint64_t key, std::uint64_t) {
      seen += key == k ? 1 : 0;
      return true;
    });
    CHECK(seen == 0);
    CHECK(m.load(z) == 1U);
    CHECK(m.load(y) == 2U);
  }
  INFO(mem.ledger().error_text());
  CHECK(mem.ledger().errors.load() == 0);
  CHECK(mem.ledger().live_blocks() == 0);
}
