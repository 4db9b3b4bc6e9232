// A key's or value's destructor may call the map it is freed from (decisions.md D44): the
// map frees keys and values only where it holds none of its locks (the end of the outermost
// pin, an unpinned collect, or after a write has released its shard's mutex), and a thread's
// frees are reentrant: a destructor that writes to the map retires into the bag being freed,
// and may start another collect of it. Before D44 such a destructor freed values twice
// (AddressSanitizer: heap-use-after-free) or waited forever on a shard mutex its own thread
// held (a rebuild, a clear or an erase that freed with the mutex held).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numamap/numamap.hpp>

#include "test_catch.hpp"
#include "watchdog.hpp"

namespace {

using numamap::detail::map_test_access;

struct reentrant_value;
using value_map = numamap::concurrent_map<std::uint64_t, reentrant_value>;

value_map* value_target = nullptr;  // the map the destructors below write to
std::atomic<long> values_live{0};
std::atomic<long> value_calls{0};
std::atomic<std::uint64_t> next_fresh{std::uint64_t{1} << 40};

/// What a value's destructor does to value_target.
enum class on_destroy : std::uint8_t { nothing, replace, insert };

/// A value in a node (not trivially copyable) that counts its live copies and, when armed,
/// calls the map from its destructor: `replace` stores over one of 16 fixed keys (the store
/// retires the value it replaces), `insert` stores a fresh key (it takes its shard's mutex
/// unless a credit lets it claim a slot; the maps below grant none).
struct reentrant_value {
  std::uint64_t x = 0;
  on_destroy act = on_destroy::nothing;

  reentrant_value(std::uint64_t v, on_destroy a) noexcept : x(v), act(a) { ++values_live; }
  reentrant_value(const reentrant_value& o) noexcept : x(o.x) { ++values_live; }
  reentrant_value(reentrant_value&& o) noexcept : x(o.x), act(o.act) {
    o.act = on_destroy::nothing;  // the moved-to copy calls the map, once
    ++values_live;
  }
  reentrant_value& operator=(const reentrant_value&) = delete;
  reentrant_value& operator=(reentrant_value&&) = delete;
  ~reentrant_value() {
    --values_live;
    if (act == on_destroy::nothing || value_target == nullptr) return;
    const long n = ++value_calls;
    if (act == on_destroy::replace) {
      value_target->store(1000000 + static_cast<std::uint64_t>(n % 16), {0, on_destroy::nothing});
    } else {
      value_target->store(next_fresh++, {0, on_destroy::nothing});
    }
  }
};

/// Sets value_target for a test and clears it, and the counters, after.
struct target_scope {
  explicit target_scope(value_map& m) {
    value_target = &m;
    value_calls = 0;
  }
  target_scope(const target_scope&) = delete;
  target_scope& operator=(const target_scope&) = delete;
  target_scope(target_scope&&) = delete;
  target_scope& operator=(target_scope&&) = delete;
  ~target_scope() { value_target = nullptr; }
};

value_map::options one_shard_no_credits() {
  value_map::options o;
  o.shards_per_node = 1;
  o.insert_credits = 0;  // every new key takes its shard's mutex
  return o;
}

/// A key kept in a node (16 bytes): its destructor stores into key_target when its id is
/// the armed one.
struct reentrant_key {
  std::uint64_t id = 0;
  std::uint64_t pad = 0;
  reentrant_key(std::uint64_t i, std::uint64_t p) noexcept : id(i), pad(p) {}
  reentrant_key(const reentrant_key&) = default;
  reentrant_key& operator=(const reentrant_key&) = default;
  reentrant_key(reentrant_key&&) = default;
  reentrant_key& operator=(reentrant_key&&) = default;
  bool operator==(const reentrant_key& o) const noexcept { return id == o.id; }
  ~reentrant_key();
};
struct reentrant_key_hash {
  std::size_t operator()(const reentrant_key& k) const noexcept {
    return std::hash<std::uint64_t>{}(k.id);
  }
};
using key_map = numamap::concurrent_map<reentrant_key, std::uint64_t, reentrant_key_hash>;
key_map* key_target = nullptr;
std::uint64_t armed_key = 0;  // 0: none
long key_calls = 0;

reentrant_key::~reentrant_key() {
  if (id == 0 || id != armed_key || key_target == nullptr) return;
  armed_key = 0;
  ++key_calls;
  key_target->store(reentrant_key{std::uint64_t{1} << 50, 0}, 7);  // needs the shard's mutex
}

/// Inserts keys 1, 2, ... into m until one of them lands in its shard's dirty map (the
/// view turns amended at its insert); returns that key's id.
std::uint64_t key_into_dirty_map(key_map& m) {
  for (std::uint64_t id = 1; id < 1000000; ++id) {
    const reentrant_key k{id, 0};
    const std::size_t s = map_test_access::shard_of(m, k);
    const bool before = map_test_access::read_table(m, s).amended;
    m.store(k, id);
    if (!before && map_test_access::read_table(m, s).amended) return id;
  }
  return 0;
}

}  // namespace

TEST_CASE("destructor calls: values whose destructors write to the map are each freed once",
          "[conformance][destructor-calls]") {
  numamap_test::watchdog dog("destructor-calls.replace", std::chrono::seconds(60));
  const long live_before = values_live.load();
  {
    value_map m(one_shard_no_credits());
    const target_scope scope(m);
    for (std::uint64_t i = 0; i < 16; ++i) m.store(1000000 + i, {0, on_destroy::nothing});
    // Each round replaces 2000 armed values: their destructors run in this thread's
    // collects and store over the fixed keys, retiring into the bag being freed.
    for (int round = 0; round < 20; ++round) {
      for (std::uint64_t k = 0; k < 2000; ++k) m.store(k, {k, on_destroy::replace});
    }
    // clear() frees unpinned (collect_unpinned): the destructors' stores then pin and end
    // their own pins, whose collects start again on the bag that clear's collect is freeing.
    m.clear();
    for (std::uint64_t k = 0; k < 2000; ++k) m.store(k, {k, on_destroy::replace});
    m.clear();
    CHECK(value_calls.load() >= 19L * 2000);
    // What is left: the fixed keys that destructors stored after the last clear.
    std::size_t seen = 0;
    m.range([&](const std::uint64_t& k, const reentrant_value& v) {
      CHECK(k >= 1000000);
      CHECK(k < 1000016);
      CHECK(v.x == 0);
      ++seen;
    });
    CHECK(seen == m.size());
  }
  // Every value made was destroyed exactly once (a double free would count twice).
  CHECK(values_live.load() == live_before);
}

TEST_CASE("destructor calls: a value freed while a rebuild retires may insert a new key",
          "[conformance][destructor-calls]") {
  numamap_test::watchdog dog("destructor-calls.rebuild", std::chrono::seconds(60));
  const long live_before = values_live.load();
  {
    value_map m(one_shard_no_credits());
    const target_scope scope(m);
    for (std::uint64_t round = 0; round < 30; ++round) {
      // Replaced in the next round: retired armed values, freed by later collects, some of
      // them in the pins whose inserts rebuild (retire the old table with the mutex held).
      for (std::uint64_t k = 0; k < 50; ++k) m.store(k, {k, on_destroy::insert});
      for (std::uint64_t k = 0; k < 3000; ++k)
        m.store(round * 100000 + 1000 + k, {0, on_destroy::nothing});
    }
    CHECK(value_calls.load() >= 20L * 50);
    CHECK(m.size() == std::size_t{30} * 3000 + 50 + static_cast<std::size_t>(value_calls.load()));
  }
  CHECK(values_live.load() == live_before);
}

TEST_CASE("destructor calls: a value freed by clear may insert a new key",
          "[conformance][destructor-calls]") {
  numamap_test::watchdog dog("destructor-calls.clear", std::chrono::seconds(60));
  const long live_before = values_live.load();
  {
    value_map::options o;
    o.shards_per_node = 64;  // clear retires a table per shard, with every mutex held
    o.insert_credits = 0;
    value_map m(o);
    const target_scope scope(m);
    constexpr int rounds = 200;
    int consistent = 0;
    for (int round = 0; round < rounds; ++round) {
      // Eight armed values, replaced at once: retired, too few to be freed before clear
      // retires its tables (and, before D44, collected with every shard's mutex held).
      for (std::uint64_t k = 0; k < 8; ++k) m.store(k, {k, on_destroy::insert});
      for (std::uint64_t k = 0; k < 8; ++k) m.store(k, {k, on_destroy::nothing});
      const auto more = static_cast<std::uint64_t>(round % 130);  // more retirements
      for (std::uint64_t k = 0; k < more; ++k) m.store(100 + k, {0, on_destroy::nothing});
      for (std::uint64_t k = 0; k < more; ++k) m.store(100 + k, {1, on_destroy::nothing});
      const long calls_before = value_calls.load();
      m.clear();
      // What the destructors inserted during the clear is all the map holds now.
      if (m.size() == static_cast<std::size_t>(value_calls.load() - calls_before)) ++consistent;
    }
    CHECK(consistent == rounds);
    // No other thread pins: each clear's collect freed every value retired before it.
    CHECK(value_calls.load() == 8L * rounds);
  }
  CHECK(values_live.load() == live_before);
}

TEST_CASE("destructor calls: a key dropped from the dirty map may call the map",
          "[conformance][destructor-calls]") {
  numamap_test::watchdog dog("destructor-calls.dirty-key", std::chrono::seconds(60));
  key_map::options o;
  o.shards_per_node = 1;
  o.insert_credits = 0;
  key_map m(o);
  key_target = &m;
  key_calls = 0;
  const reentrant_key fresh{std::uint64_t{1} << 50, 0};

  SECTION("erase") {
    const std::uint64_t id = key_into_dirty_map(m);
    REQUIRE(id != 0);
    const reentrant_key arg{id, 0};
    armed_key = id;  // the node's copy of the key, which erase frees, calls the map
    CHECK(m.erase(arg));
    CHECK(key_calls == 1);
    armed_key = 0;  // before arg dies
    CHECK_FALSE(m.contains(arg));
  }
  SECTION("compare_and_delete") {
    const std::uint64_t id = key_into_dirty_map(m);
    REQUIRE(id != 0);
    const reentrant_key arg{id, 0};
    armed_key = id;
    CHECK(m.compare_and_delete(arg, id));
    CHECK(key_calls == 1);
    armed_key = 0;
    CHECK_FALSE(m.contains(arg));
  }
  armed_key = 0;
  CHECK(m.load(fresh) == 7U);
  key_target = nullptr;
}
