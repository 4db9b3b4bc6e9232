// entry_table's probe decides on the tags, 16 slots at a time (decisions.md D32). Checked
// against the table's own control words: for random inserts and erases (the dirty map's
// backward shift moves and clears slots, and their tags with them), every probe finds what
// a slot-by-slot walk over ctl finds, and stops where that walk stops. The bucket bits are
// chosen so that homes crowd the table's last group (probes wrap around), and keys share
// their tag (top 7 bucket bits) or their whole bucket bits with others.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <numamap/numamap.hpp>
#include <random>

#include "test_catch.hpp"
#include "test_env.hpp"

namespace {

using table_t = numamap::detail::entry_table<std::uint64_t>;
using entry_t = table_t::entry_t;

struct table_box {
  explicit table_box(std::size_t capacity)
      : mem(static_cast<unsigned char*>(
            ::operator new (table_t::bytes_for(capacity), std::align_val_t{alignof(table_t)}))),
        t(table_t::create_at(mem, capacity, 1)) {}
  ~table_box() {
    t->~table_t();
    ::operator delete (mem, std::align_val_t{alignof(table_t)});
  }
  table_box(const table_box&) = delete;
  table_box& operator=(const table_box&) = delete;
  table_box(table_box&&) = delete;
  table_box& operator=(table_box&&) = delete;
  unsigned char* mem;
  table_t* t;
};

numamap::detail::key_slot<std::uint64_t> slot_of(std::uint64_t k) {
  numamap::detail::key_slot<std::uint64_t> s{};
  new (s.bytes) std::uint64_t(k);
  return s;
}

/// The readers' probe over the slots (find_linear, decisions.md D33), testing the stored
/// hash first or the key alone (key_test), as the map's two kinds of key do.
template <bool HashFirst, class Eq>
const entry_t* find_linear(table_t& t, std::uint32_t bucket_bits, Eq eq, std::uint32_t& c) {
  const numamap::detail::key_test<Eq, HashFirst> test{eq};
  return table_t::find_linear(&t, t.capacity() - 1, bucket_bits, test, c);
}

/// A probe's key test for the entry that holds `key`.
auto key_is(std::uint64_t key) {
  return [key](const entry_t& x) { return x.key() == key; };
}

/// find_linear with the key test chosen at run time: the stored hash first, or the key alone.
template <class Eq>
const entry_t* find_linear_by(bool hash_first, table_t& t, std::uint32_t bucket_bits, Eq eq,
                              std::uint32_t& c) {
  return hash_first ? find_linear<true>(t, bucket_bits, eq, c)
                    : find_linear<false>(t, bucket_bits, eq, c);
}

/// The first empty slot from the home of these bucket bits, walking slot by slot over ctl.
std::size_t first_empty(const table_t& t, std::uint32_t bucket_bits) {
  const std::size_t mask = t.capacity() - 1;
  std::size_t i = bucket_bits & mask;
  while (!t.is_empty_slot(i)) i = (i + 1) & mask;
  return i;
}

}  // namespace

TEST_CASE("table: the tag match compiled is the one the build asks for", "[unit][table]") {
  // numamap_swar_tests builds this file with NUMAMAP_TAGS_SWAR (tests/CMakeLists.txt): its
  // cases then test the SWAR match, which targets without SSE2 run, only if the header
  // honours the request.
#if defined(NUMAMAP_TAGS_SWAR)
  STATIC_REQUIRE(NUMAMAP_TAGS_SSE2 == 0);
  STATIC_REQUIRE(NUMAMAP_TAG_LOAD_ASM == 0);
#elif defined(__SSE2__)
  STATIC_REQUIRE(NUMAMAP_TAGS_SSE2 == 1);
#else
  STATIC_REQUIRE(NUMAMAP_TAGS_SSE2 == 0);
#endif
}

TEST_CASE("table: probes on tags and over the slots agree with a walk over the control words",
          "[unit][table]") {
  const std::uint64_t seed = numamap_test::test_seed("table.tags");
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (const std::size_t capacity : {std::size_t{16}, std::size_t{64}}) {
    table_box box(capacity);
    table_t& t = *box.t;
    std::map<std::uint64_t, std::uint32_t> present;  // key -> bucket bits
    std::uint64_t next_key = 1;
    auto bucket_for = [&](std::uint64_t) {
      // Homes in the last group's upper half or anywhere; tags from 2 values or all 128.
      const std::uint32_t home = (rng() % 2 == 0)
                                     ? static_cast<std::uint32_t>(capacity - 1 - rng() % 8)
                                     : static_cast<std::uint32_t>(rng() % capacity);
      const std::uint32_t top = (rng() % 2 == 0) ? static_cast<std::uint32_t>(rng() % 2)
                                                 : static_cast<std::uint32_t>(rng() % 128);
      const std::uint32_t mid = static_cast<std::uint32_t>(rng() % 4) << 8;  // unused by both
      return (top << 25) | mid | home;
    };
    std::size_t checks = 0;
    for (int step = 0; step < 20000; ++step) {
      const bool insert = present.empty() || (t.fits(1) && rng() % 2 == 0);
      if (insert) {
        const std::uint64_t k = next_key++;
        const std::uint32_t b = bucket_for(k);
        std::size_t stop = 0;
        REQUIRE(t.find_or_stop(
                    b, [&](const entry_t& e) { return e.key() == k; }, stop) == nullptr);
        REQUIRE(stop == first_empty(t, b));
        REQUIRE(t.claim(stop, b));
        t.count_claimed(1);
        t.fill(stop, b, slot_of(k), k * 7);
        present.emplace(k, b);
      } else {
        auto it = present.begin();
        std::advance(it, static_cast<long>(rng() % present.size()));
        const std::uint64_t k = it->first;
        const entry_t* e = t.find(it->second, [&](const entry_t& x) { return x.key() == k; });
        REQUIRE(e != nullptr);
        REQUIRE(t.erase(e));
        present.erase(it);
      }
      // Every present key is found, with its word; keys gone or never stored are not, and
      // their probes stop at the first empty slot of a walk over ctl.
      for (const auto& [k, b] : present) {
        std::size_t stop = 0;
        const entry_t* e = t.find_or_stop(
            b, [&, key = k](const entry_t& x) { return x.key() == key; }, stop);
        REQUIRE(e != nullptr);
        CHECK(e->key() == k);
        CHECK(e->word.load(std::memory_order_relaxed) == k * 7);
        CHECK(e->hash == b);
        // The probe over the slots finds the same entry, and hands back its ctl.
        for (const bool hash_first : {true, false}) {
          auto eq = [key = k](const entry_t& x) { return x.key() == key; };
          std::uint32_t c = 0;
          const entry_t* l = find_linear_by(hash_first, t, b, eq, c);
          CHECK(l == e);
          CHECK(c == e->ctl.load(std::memory_order_relaxed));
        }
        ++checks;
      }
      const std::uint64_t absent = next_key + 1000;
      const std::uint32_t b = bucket_for(absent);
      std::size_t stop = 0;
      CHECK(t.find_or_stop(
                b, [&](const entry_t& x) { return x.key() == absent; }, stop) == nullptr);
      CHECK(stop == first_empty(t, b));
      auto eq = [&](const entry_t& x) { return x.key() == absent; };
      std::uint32_t c = 1;
      CHECK(find_linear<true>(t, b, eq, c) == nullptr);
      CHECK(c == 0);  // it ended on an empty slot
      CHECK(find_linear<false>(t, b, eq, c) == nullptr);
    }
    CHECK(checks > 10000);
    CHECK(t.used() == present.size());
  }
}

TEST_CASE("table: the tag window by cache size and shard count", "[unit][table]") {
  using numamap::detail::tag_window;
  // 1 MiB, 16 shards: 16 x 16384 tags are a quarter of it; every smaller table is in the
  // window too, whether its entries fit the cache (2048 slots: 768 KiB of 24-byte entries)
  // or not (decisions.md D54).
  const tag_window w = tag_window::sized(std::size_t{1} << 20U, 16);
  CHECK(w.contains(numamap::detail::table_min_capacity));  // no lower end: the smallest table
  CHECK(w.max_capacity == 16384);
  CHECK(w.contains(16));
  CHECK(w.contains(2048));
  CHECK(w.contains(4096));
  CHECK(w.contains(16384));
  CHECK_FALSE(w.contains(32768));
  // Not a power of two: the last capacity whose tags fit (3 MiB / 4 / 16 = 49152 -> 32768).
  CHECK(tag_window::sized(std::size_t{3} << 20U, 16).max_capacity == 32768);
  // One shard: 16 times the capacity.
  const tag_window one = tag_window::sized(std::size_t{1} << 20U, 1);
  CHECK(one.max_capacity == 262144);
  CHECK(one.contains(16));
  // A cache too small for any table's tags: a window below the smallest table, or empty.
  const tag_window tiny = tag_window::sized(64, 16);
  CHECK(tiny.max_capacity == 1);
  CHECK(tag_window::sized(16, 16).max_capacity == 0);
  CHECK_FALSE(tiny.contains(16));
  CHECK_FALSE(tiny.contains(std::size_t{1} << 20U));
  CHECK_FALSE(tag_window::sized(16, 16).contains(16));
  // A huge cache: every table.
  const tag_window huge = tag_window::sized(~std::size_t{0}, 1);
  CHECK(huge.contains(16));
  CHECK(huge.contains(std::size_t{1} << 40U));
  CHECK(tag_window::all().contains(16));
  CHECK_FALSE(tag_window::none().contains(16));
  CHECK(numamap::detail::l2_cache_bytes() > 0);
}

TEST_CASE(
    "table: a claimed slot is passed by every probe until filled, and an abandoned one for good",
    "[unit][table]") {
  // Four keys with one home and one tag: a claim of the first empty slot is the only way a
  // slot is taken here, as a lock-free insert takes it (shard.hpp, claim_new).
  table_box box(64);
  table_t& t = *box.t;
  const std::uint32_t b = (5U << 25) | 40U;  // home 40, tag 0x85
  std::size_t stop = 0;
  REQUIRE(t.find_or_stop(b, key_is(1), stop) == nullptr);
  REQUIRE(stop == 40);
  REQUIRE(t.claim(40, b));
  CHECK_FALSE(t.claim(40, b));  // one claim per slot
  CHECK_FALSE(t.is_empty_slot(40));
  // A second writer with another key and tag passes the claim in flight (its ctl is 0)
  // and claims the next slot; it fills first.
  const std::uint32_t other = (9U << 25) | 40U;
  REQUIRE(t.find_or_stop(other, key_is(2), stop) == nullptr);
  CHECK(stop == 41);
  REQUIRE(t.claim(41, other));
  t.fill(41, other, slot_of(2), 20);
  // Readers find key 2 beyond the claim in flight, on the tags and over the slots (which
  // must not end at the claim's ctl of 0: its tag is set).
  const entry_t* f = t.find(other, key_is(2));
  REQUIRE(f != nullptr);
  CHECK(f->word.load(std::memory_order_relaxed) == 20);
  for (const bool hash_first : {true, false}) {
    std::uint32_t c = 0;
    const entry_t* l = find_linear_by(hash_first, t, other, key_is(2), c);
    REQUIRE(l != nullptr);
    CHECK(l->key() == 2);
    // Key 1, claimed and not filled, is not there yet.
    CHECK(find_linear_by(hash_first, t, b, key_is(1), c) == nullptr);
  }
  std::uint32_t c = 0;
  CHECK(table_t::find_masked(&t, 63, b, key_is(1), c) == nullptr);
  std::size_t walked = 0;
  t.for_each([&](entry_t&) { ++walked; });
  CHECK(walked == 1);  // the claim in flight is not an entry yet
  // Filled: found by every probe, and by a writer's probe that waits on claims of its tag.
  t.fill(40, b, slot_of(1), 10);
  REQUIRE(t.find_or_stop(b, key_is(1), stop) != nullptr);
  CHECK(t.find_or_stop(b, key_is(1), stop)->word.load(std::memory_order_relaxed) == 10);
  // An abandoned claim: slot 42 taken for key 3, then given up. Probes pass it, walks skip
  // it, and it is never empty again; key 4 goes beyond it.
  REQUIRE(t.find_or_stop(b, key_is(3), stop) == nullptr);
  REQUIRE(stop == 42);
  REQUIRE(t.claim(42, b));
  t.abandon(42);
  CHECK_FALSE(t.is_empty_slot(42));
  REQUIRE(t.find_or_stop(b, key_is(4), stop) == nullptr);
  CHECK(stop == 43);
  REQUIRE(t.claim(43, b));
  t.fill(43, b, slot_of(4), 40);
  for (const bool hash_first : {true, false}) {
    const entry_t* l = find_linear_by(hash_first, t, b, key_is(4), c);
    REQUIRE(l != nullptr);
    CHECK(l->word.load(std::memory_order_relaxed) == 40);
  }
  CHECK(table_t::find_masked(&t, 63, b, key_is(4), c) != nullptr);
  CHECK(t.find_or_stop(b, key_is(3), stop) == nullptr);
  CHECK(stop == 44);
  walked = 0;
  t.for_each([&](entry_t&) { ++walked; });
  CHECK(walked == 3);
  walked = 0;
  t.for_each_settled([&](entry_t&) { ++walked; });
  CHECK(walked == 3);
  // The claim state: open, then closed (claims may no longer publish), then frozen.
  CHECK(t.claims_open());
  t.close();
  CHECK_FALSE(t.claims_open());
  CHECK_FALSE(t.is_frozen());
  t.freeze();
  CHECK(t.is_frozen());
  t.thaw();
  CHECK_FALSE(t.is_frozen());
  CHECK_FALSE(t.claims_open());  // a thawed table stays closed
}

TEST_CASE("table: the tag probe reads a matching lane past its group's first empty one",
          "[unit][table]") {
  // Key 1's slot (22) lies past an empty slot of its path (20, its home): a state no table
  // readers probe is in, but one a reader can see, when the group's two halves are read at
  // moments between which an earlier slot's claim and then this one were made (table.hpp,
  // probe; decisions.md D39). The tag probe tests every matching lane of the group that
  // holds the first empty tag, and so finds the key; it still reports the first empty slot
  // as where a probe for another key stops. The probe over the slots ends at slot 20.
  table_box box(64);
  table_t& t = *box.t;
  const std::uint32_t b = (7U << 25) | 20U;  // home 20, tag 0x87
  REQUIRE(t.claim(22, b));
  t.count_claimed(1);
  t.fill(22, b, slot_of(1), 10);
  REQUIRE(t.is_empty_slot(20));
  REQUIRE(t.is_empty_slot(21));
  std::uint32_t c = 0;
  const entry_t* e = table_t::find_masked(&t, 63, b, key_is(1), c);
  REQUIRE(e != nullptr);
  CHECK(e->word.load(std::memory_order_relaxed) == 10);
  CHECK(c == e->ctl.load(std::memory_order_relaxed));
  std::size_t stop = 0;
  CHECK(t.find_or_stop(b, key_is(1), stop) == e);
  // Another key with the same home and tag: not found, and the stop is the first empty
  // slot, as a walk over ctl finds it.
  CHECK(t.find_or_stop(b, key_is(2), stop) == nullptr);
  CHECK(stop == 20);
  CHECK(stop == first_empty(t, b));
  for (const bool hash_first : {true, false}) {
    c = 1;
    CHECK(find_linear_by(hash_first, t, b, key_is(1), c) == nullptr);
    CHECK(c == 0);
  }
  // A key whose path starts past the empty slots is found by both probes.
  const std::uint32_t b23 = (7U << 25) | 22U;
  REQUIRE(t.claim(23, b23));
  t.count_claimed(1);
  t.fill(23, b23, slot_of(3), 30);
  CHECK(table_t::find_masked(&t, 63, b23, key_is(3), c) != nullptr);
  CHECK(find_linear<true>(t, b23, key_is(3), c) != nullptr);
}
