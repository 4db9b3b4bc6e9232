// SPEC "Memory placement" and "The map": every allocation of the map goes through its Memory
// resource and is given back with the same size, alignment and node; destroying the map frees
// everything. Issue 2 item 3: trivially copyable values of up to 8 bytes live inline, so
// overwriting an existing key allocates nothing.
#include <cstdint>
#include <string>

#include "map_kinds.hpp"
#include "test_catch.hpp"

using numamap_test::checked_memory;
using numamap_test::counted;

namespace {
template <class V>
using checked_map = numamap::concurrent_map<std::uint64_t, V, std::hash<std::uint64_t>,
                                            std::equal_to<std::uint64_t>, checked_memory>;

template <class V>
typename checked_map<V>::options options_with(const checked_memory& mem) {
  typename checked_map<V>::options o;
  o.memory = mem;
  return o;
}
}  // namespace

TEST_CASE(
    "map values: overwriting an inline (<= 8 byte, trivially copyable) value allocates "
    "nothing",
    "[conformance][map.values][memory]") {
  checked_memory mem;
  checked_map<std::uint64_t> m(options_with<std::uint64_t>(mem));
  for (std::uint64_t i = 0; i < 256; ++i) m.store(i, i);
  for (int r = 0; r < 4; ++r)
    for (std::uint64_t i = 0; i < 128; ++i) REQUIRE(m.load(i).has_value());  // promote 0..127
  // Keys 128..255 may be promoted as well; either way every key exists.
  const std::size_t before = mem.ledger().allocations.load();
  for (std::uint64_t round = 1; round <= 4; ++round) {
    for (std::uint64_t i = 0; i < 256; ++i) m.store(i, i + round * 1000);
    for (std::uint64_t i = 0; i < 256; ++i) REQUIRE(m.exchange(i, i).has_value());
    for (std::uint64_t i = 0; i < 256; ++i) REQUIRE(m.compare_and_swap(i, i, i + 7));
  }
  CHECK(mem.ledger().allocations.load() == before);
  for (std::uint64_t i = 0; i < 256; ++i) REQUIRE(*m.load(i) == i + 7);
}

TEST_CASE("map memory: every block goes back to the resource with its size, alignment, node",
          "[conformance][memory]") {
  checked_memory mem;
  {
    checked_map<std::string> m(options_with<std::string>(mem));
    CHECK(mem.ledger().live_blocks() > 0);  // at least the shards
    for (int round = 0; round < 5; ++round) {
      for (std::uint64_t i = 0; i < 500; ++i) m.store(i, std::string(50, char('a' + round)));
      for (int r = 0; r < 3; ++r)
        for (std::uint64_t i = 0; i < 500; ++i) (void)m.load(i);
      for (std::uint64_t i = 0; i < 500; i += 2) m.erase(i);
      for (std::uint64_t i = 0; i < 500; i += 3) (void)m.exchange(i, std::string(60, 'z'));
      if (round % 2 == 1) m.clear();
    }
    INFO(mem.ledger().error_text());
    CHECK(mem.ledger().errors.load() == 0);
  }
  INFO(mem.ledger().error_text());
  CHECK(mem.ledger().errors.load() == 0);
  CHECK(mem.ledger().live_blocks() == 0);
  CHECK(mem.ledger().live_bytes.load() == 0);
  CHECK(mem.ledger().allocations.load() == mem.ledger().deallocations.load());
}

TEST_CASE("map memory: destroying the map destroys every value it holds or retired",
          "[conformance][memory]") {
  const long base = counted::live().load();
  {
    numamap::concurrent_map<std::uint64_t, counted> m;
    for (std::uint64_t i = 0; i < 300; ++i) m.store(i, counted(i));
    for (int r = 0; r < 3; ++r)
      for (std::uint64_t i = 0; i < 300; ++i) (void)m.load(i);
    for (std::uint64_t i = 0; i < 300; ++i) m.store(i, counted(i + 1));  // retires 300 values
    for (std::uint64_t i = 0; i < 300; i += 2) m.erase(i);
    CHECK(counted::live().load() - base >= 150);  // the live values at least
  }
  CHECK(counted::live().load() == base);
}
