// The read path's fast attempt (concurrent_map::try_lookup, decisions.md D30) decides a hit
// or a miss of the read snapshot by itself and hands every other case to the full path:
// this thread's first pin on the map, a pin already held (a call from inside visit's
// callback), the fast slot caching another map, a miss in an amended view. Checked through
// map_test_access::try_lookup, which runs the attempt alone, and through load(), whose answer
// and whose count in stats() must be the same on either route.
// Also: probes that compare keys without the stored hash (key_test_only) find keys whose
// bits look like an empty slot's (0, a null pointer) and walk a chain of colliding keys.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numamap/numamap.hpp>
#include <optional>
#include <string>
#include <thread>

#include "map_kinds.hpp"
#include "test_catch.hpp"

namespace {

using numamap::detail::map_test_access;
using numamap::detail::read_outcome;
using numamap_test::until_fast_hit;

using map_t = numamap::concurrent_map<std::uint64_t, std::uint64_t>;

map_t::options one_shard_per_node() {
  map_t::options o;
  o.shards_per_node = 1;
  return o;
}

template <class Map>
std::uint64_t total_loads(const Map& m) {
  std::uint64_t n = 0;
  for (const auto& s : m.stats().shards) n += s.loads;
  return n;
}

const char* name(read_outcome r) {
  switch (r) {
    case read_outcome::hit:
      return "hit";
    case read_outcome::absent:
      return "absent";
    case read_outcome::undecided:
      return "undecided";
  }
  return "?";
}

enum class colour : std::uint32_t { none = 0, red = 1, blue = 2 };

/// Every key in one bucket of one shard: each probe walks the whole chain.
template <class K>
struct one_bucket_hash {
  std::size_t operator()(const K& /*key*/) const noexcept { return 42; }
};

}  // namespace

TEST_CASE("fast read: decides the read snapshot's hits and misses, hands on the rest",
          "[conformance][hitpath]") {
  map_t m(one_shard_per_node());
  std::uint64_t w = 0;

  // A new key waits in the dirty map: the view is amended, the attempt cannot decide.
  m.store(1, 10);
  CHECK(name(map_test_access::try_lookup(m, std::uint64_t{1}, w)) == std::string("undecided"));
  std::uint64_t before = total_loads(m);
  CHECK(m.load(1) == std::optional<std::uint64_t>(10));
  CHECK(total_loads(m) == before + 1);

  // Promoted: a hit, with the value's word.
  REQUIRE(until_fast_hit(m, std::uint64_t{1}));
  w = 0;
  CHECK(name(map_test_access::try_lookup(m, std::uint64_t{1}, w)) == std::string("hit"));
  CHECK(w == 10);
  before = total_loads(m);
  CHECK(m.load(1) == std::optional<std::uint64_t>(10));
  CHECK(m.contains(1));
  CHECK(total_loads(m) == before + 2);

  // Direct insertion into the read table keeps the view unamended: absent keys are decided
  // absent, new keys are hits at once.
  m.store(2, 20);
  const auto v2 = map_test_access::read_table(m, map_test_access::shard_of(m, std::uint64_t{2}));
  if (!v2.amended) {
    CHECK(name(map_test_access::try_lookup(m, std::uint64_t{2}, w)) == std::string("hit"));
    CHECK(w == 20);
  }
  for (std::uint64_t k = 1000; k < 1010; ++k) {
    const auto v = map_test_access::read_table(m, map_test_access::shard_of(m, k));
    if (v.amended) continue;
    CHECK(name(map_test_access::try_lookup(m, k, w)) == std::string("absent"));
    before = total_loads(m);
    CHECK_FALSE(m.load(k).has_value());
    CHECK(total_loads(m) == before + 1);
  }

  // An erased key's entry stays in the read table as deleted: decided absent.
  REQUIRE(m.erase(1));
  CHECK(name(map_test_access::try_lookup(m, std::uint64_t{1}, w)) == std::string("absent"));
  CHECK_FALSE(m.load(1).has_value());
  m.store(1, 11);  // revived in place
  CHECK(name(map_test_access::try_lookup(m, std::uint64_t{1}, w)) == std::string("hit"));
  CHECK(w == 11);

  // Inside visit's callback the thread is pinned already: the attempt hands on, and load()
  // still answers (nested pin on the full path), counted once.
  REQUIRE(until_fast_hit(m, std::uint64_t{2}));
  read_outcome inner = read_outcome::hit;
  std::optional<std::uint64_t> inner_load;
  std::uint64_t loads_inside = 0;
  CHECK(m.visit(2, [&](const std::uint64_t& v) {
    CHECK(v == 20);
    std::uint64_t iw = 0;
    inner = map_test_access::try_lookup(m, std::uint64_t{1}, iw);
    const std::uint64_t b = total_loads(m);
    inner_load = m.load(1);
    loads_inside = total_loads(m) - b;
  }));
  CHECK(name(inner) == std::string("undecided"));
  CHECK(inner_load == std::optional<std::uint64_t>(11));
  CHECK(loads_inside == 1);
}

TEST_CASE("fast read: a thread's first load and another map in its fast slot go the full way",
          "[conformance][hitpath]") {
  map_t a(one_shard_per_node());
  map_t b(one_shard_per_node());
  a.store(7, 70);
  b.store(7, 71);
  REQUIRE(until_fast_hit(a, std::uint64_t{7}));
  REQUIRE(until_fast_hit(b, std::uint64_t{7}));

  // The last map this thread used was b: a's attempt hands on, a's load answers and caches
  // a's record, and the next attempt on a decides.
  std::uint64_t w = 0;
  CHECK(name(map_test_access::try_lookup(a, std::uint64_t{7}, w)) == std::string("undecided"));
  CHECK(a.load(7) == std::optional<std::uint64_t>(70));
  CHECK(name(map_test_access::try_lookup(a, std::uint64_t{7}, w)) == std::string("hit"));
  CHECK(w == 70);
  CHECK(b.load(7) == std::optional<std::uint64_t>(71));
  CHECK(a.load(7) == std::optional<std::uint64_t>(70));

  // A new thread has no record for a yet.
  std::string first;
  std::string second;
  std::optional<std::uint64_t> loaded;
  std::thread t([&] {
    std::uint64_t tw = 0;
    first = name(map_test_access::try_lookup(a, std::uint64_t{7}, tw));
    loaded = a.load(7);
    second = name(map_test_access::try_lookup(a, std::uint64_t{7}, tw));
  });
  t.join();
  CHECK(first == "undecided");
  CHECK(loaded == std::optional<std::uint64_t>(70));
  CHECK(second == "hit");
}

TEST_CASE("fast read: which key types compare without the stored hash", "[conformance][hitpath]") {
  using str_map = numamap::concurrent_map<std::string, int>;
  using ptr_map = numamap::concurrent_map<const int*, int>;
  using enum_map = numamap::concurrent_map<colour, int>;
  using dbl_map = numamap::concurrent_map<double, int>;
  using own_eq_map =
      numamap::concurrent_map<std::uint64_t, int, std::hash<std::uint64_t>, std::equal_to<>>;
  STATIC_REQUIRE(map_test_access::key_test_only<map_t, std::uint64_t>());
  STATIC_REQUIRE(map_test_access::key_test_only<ptr_map, const int*>());
  STATIC_REQUIRE(map_test_access::key_test_only<enum_map, colour>());
  STATIC_REQUIRE_FALSE(map_test_access::key_test_only<str_map, std::string>());
  STATIC_REQUIRE_FALSE(map_test_access::key_test_only<dbl_map, double>());  // -0.0 == 0.0
  STATIC_REQUIRE_FALSE(map_test_access::key_test_only<own_eq_map, std::uint64_t>());
}

TEST_CASE("fast read: keys that look like an empty slot, and a chain of colliding keys",
          "[conformance][hitpath]") {
  SECTION("uint64, key 0 and value 0, all keys in one bucket") {
    numamap::concurrent_map<std::uint64_t, std::uint64_t, one_bucket_hash<std::uint64_t>> m;
    for (std::uint64_t k = 0; k < 200; ++k) m.store(k, k * 3);
    REQUIRE(until_fast_hit(m, std::uint64_t{0}));
    REQUIRE(until_fast_hit(m, std::uint64_t{199}));
    for (std::uint64_t k = 0; k < 200; ++k) CHECK(m.load(k) == std::optional<std::uint64_t>(k * 3));
    for (std::uint64_t k = 200; k < 260; ++k) CHECK_FALSE(m.load(k).has_value());
    CHECK(m.erase(0));
    CHECK_FALSE(m.load(0).has_value());
    CHECK(m.load(1) == std::optional<std::uint64_t>(3));
  }
  SECTION("uint64 key 0 absent: an empty slot's all-zero bytes are no entry") {
    numamap::concurrent_map<std::uint64_t, std::uint64_t, one_bucket_hash<std::uint64_t>> m;
    for (std::uint64_t k = 1; k < 50; ++k) m.store(k, k);
    REQUIRE(until_fast_hit(m, std::uint64_t{49}));
    std::uint64_t w = 0;
    CHECK(name(map_test_access::try_lookup(m, std::uint64_t{0}, w)) == std::string("absent"));
    CHECK_FALSE(m.load(0).has_value());
    CHECK_FALSE(m.contains(0));
  }
  SECTION("a null pointer key") {
    static const int cells[3] = {1, 2, 3};
    numamap::concurrent_map<const int*, int> m;
    m.store(nullptr, -1);
    for (const int& c : cells) m.store(&c, c);
    REQUIRE(until_fast_hit(m, static_cast<const int*>(nullptr)));
    CHECK(m.load(nullptr) == std::optional<int>(-1));
    for (const int& c : cells) CHECK(m.load(&c) == std::optional<int>(c));
    CHECK_FALSE(m.load(cells + 3).has_value());
  }
  SECTION("an enum key whose value is 0") {
    numamap::concurrent_map<colour, int, one_bucket_hash<colour>> m;
    m.store(colour::none, 0);
    m.store(colour::blue, 2);
    REQUIRE(until_fast_hit(m, colour::none));
    CHECK(m.load(colour::none) == std::optional<int>(0));
    CHECK(m.load(colour::blue) == std::optional<int>(2));
    CHECK_FALSE(m.load(colour::red).has_value());
  }
}
