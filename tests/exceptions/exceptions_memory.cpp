// SPEC "The map": "An exception from Hash, KeyEqual, a copy, or an allocation leaves the map
// valid, with the operation either done or not done." — here: a Memory resource that throws
// std::bad_alloc on its N-th allocation, for N = 1, 2, ... over a fixed sequence of every
// operation, and during construction. Its ledger checks that every block comes back once,
// with its own size, alignment and node, also on the exception paths.
#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include "exception_harness.hpp"
#include "test_catch.hpp"

using namespace numamap_test;

namespace {

template <class Base, class V>
struct faulty_memory_kind : Base {
  // NOLINTBEGIN(modernize-use-transparent-functors): std::equal_to<Key> keeps key_test_only
  using map_type = numamap::concurrent_map<std::uint64_t, V, std::hash<std::uint64_t>,
                                           std::equal_to<std::uint64_t>, faulty_memory>;
  // NOLINTEND(modernize-use-transparent-functors)
};

struct u64_string_kind {
  using key_type = std::uint64_t;
  using value_type = std::string;
  static key_type key(std::uint64_t i) { return i; }
  static value_type value(std::uint64_t i) { return string_kind::value(i); }
  static std::uint64_t key_id(const key_type& k) { return k; }
  static std::uint64_t value_id(const value_type& v) { return string_kind::value_id(v); }
};

/// String keys (kept in key nodes from the map's memory) and string values.
struct string_memory_kind : string_kind {
  // NOLINTBEGIN(modernize-use-transparent-functors): the map's default KeyEqual for strings
  using map_type = numamap::concurrent_map<std::string, std::string, std::hash<std::string>,
                                           std::equal_to<std::string>, faulty_memory>;
  // NOLINTEND(modernize-use-transparent-functors)
};

template <class Kind>
void memory_faults(const char* what) {
  reset_all_faults();
  faulty_memory mem;
  auto rep = run_exception_sequence<Kind>(
      what,
      [&] {
        typename Kind::map_type::options o;
        o.memory = mem;
        return std::make_unique<typename Kind::map_type>(o);
      },
      [](long n) {
        alloc_faults().clear_fired();
        alloc_faults().arm(n);
      },
      [] { return alloc_faults().fired(); }, [] { alloc_faults().disarm(); });
  reset_all_faults();
  INFO((rep.failures.empty() ? std::string() : rep.failures.front()));
  CHECK(rep.failures.empty());
  CHECK(rep.throws >= 10);  // 29 and 50 of the injected failures reached the caller when written
  CHECK(rep.runs == rep.throws + rep.swallowed + 1);
  INFO(mem.ledger().error_text());
  CHECK(mem.ledger().errors.load() == 0);
  CHECK(mem.ledger().live_blocks() == 0);  // nothing leaked on any exception path
  CHECK(mem.ledger().live_bytes.load() == 0);
}

}  // namespace

TEST_CASE("exceptions: Memory throwing bad_alloc on the N-th allocation (inline values)",
          "[exceptions][memory]") {
  memory_faults<faulty_memory_kind<u64_kind, std::uint64_t>>("throwing memory (uint64)");
}

TEST_CASE("exceptions: Memory throwing bad_alloc on the N-th allocation (out-of-line values)",
          "[exceptions][memory]") {
  memory_faults<faulty_memory_kind<u64_string_kind, std::string>>("throwing memory (string)");
}

TEST_CASE("exceptions: Memory throwing bad_alloc while new keys are claimed without the lock",
          "[exceptions][memory]") {
  // One shard, and enough keys that its table holds credits (decisions.md D37): the next
  // new keys of this thread are claimed without the lock. There a new key's value is made
  // first and its key node next; when the node cannot be had, the value must not leak and
  // the key must not be there.
  reset_all_faults();
  faulty_memory mem;
  {
    string_memory_kind::map_type::options o;
    o.memory = mem;
    o.shards_per_node = 1;
    string_memory_kind::map_type m(o);
    std::uint64_t next = 0;
    auto unlocked = [&] { return stats_unlocked_inserts(m); };
    while (next < 400) {
      m.store(string_kind::key(next), string_kind::value(next));
      ++next;
    }
    REQUIRE(unlocked() > 0);  // the path under test is taken
    std::size_t threw = 0;
    for (int i = 0; i < 40; ++i) {
      const std::uint64_t before = unlocked();
      const std::string key = string_kind::key(next);
      alloc_faults().clear_fired();
      alloc_faults().arm(2);  // the value's node is the first allocation, the key's the second
      bool thrown = false;
      try {
        if (i % 2 == 0) {
          (void)m.load_or_store(key, string_kind::value(next));
        } else {
          m.store(key, string_kind::value(next));
        }
      } catch (const std::bad_alloc&) {
        thrown = true;
      }
      alloc_faults().disarm();
      if (thrown) {
        ++threw;
        CHECK_FALSE(m.contains(key));
      } else {
        CHECK(m.contains(key));
      }
      CHECK(unlocked() >= before);
      // An insert that goes to the lock now and then hands out the next credits.
      m.store(string_kind::key(next + 100000), string_kind::value(next));
      ++next;
    }
    CHECK(threw > 10);
    CHECK(m.size() == 400 + 40 + 40 - threw);
  }
  reset_all_faults();
  INFO(mem.ledger().error_text());
  CHECK(mem.ledger().errors.load() == 0);
  CHECK(mem.ledger().live_blocks() == 0);  // the values made for keys that did not go in
  CHECK(mem.ledger().live_bytes.load() == 0);
}

TEST_CASE("exceptions: a constructor that runs out of memory frees what it took",
          "[exceptions][memory]") {
  using map_t = faulty_memory_kind<u64_kind, std::uint64_t>::map_type;
  reset_all_faults();
  faulty_memory mem;
  map_t::options o;
  o.memory = mem;
  o.shards_per_node = 8;
  long n = 1;
  for (; n < 10000; ++n) {
    alloc_faults().clear_fired();
    alloc_faults().arm(n);
    try {
      map_t m(o);
      alloc_faults().disarm();
      if (!alloc_faults().fired()) break;  // constructed without reaching the N-th allocation
      // The fault fired inside the constructor yet it did not throw: it must still work.
      m.store(1, 1);
      CHECK(*m.load(1) == 1);
    } catch (const std::bad_alloc&) {
      alloc_faults().disarm();
      CHECK(alloc_faults().fired());
    }
    INFO("N=" << n);
    REQUIRE(mem.ledger().live_blocks() == 0);
  }
  reset_all_faults();
  CHECK(n > 8);  // at least one allocation per shard was made to fail
  INFO(mem.ledger().error_text());
  CHECK(mem.ledger().errors.load() == 0);
}
