// counting_memory and the NodeMemory requirement (SPEC "Memory placement"; docs/memory.md).
#include <cstddef>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "numamap/memory.hpp"
#include "test_catch.hpp"
#include "test_types.hpp"

using numamap::counting_memory;
using numamap::heap_memory;
using numamap::is_node_memory_v;
using numamap::node_id;
using numamap::numa_memory;
namespace d = numamap::detail;

namespace {

struct no_allocate {
  void deallocate(void* /*p*/, std::size_t /*bytes*/, std::size_t /*align*/,
                  node_id /*node*/) noexcept {}
};
struct throwing_deallocate {
  // NOLINTNEXTLINE(readability-convert-member-functions-to-static): the NodeMemory interface
  void* allocate(std::size_t /*bytes*/, std::size_t /*align*/, node_id /*node*/) { return nullptr; }
  void deallocate(void* /*p*/, std::size_t /*bytes*/, std::size_t /*align*/, node_id /*node*/) {}
};
struct not_copyable {
  not_copyable() = default;
  not_copyable(const not_copyable&) = delete;
  not_copyable& operator=(const not_copyable&) = delete;
  not_copyable(not_copyable&&) = delete;
  not_copyable& operator=(not_copyable&&) = delete;
  ~not_copyable() = default;
  // NOLINTNEXTLINE(readability-convert-member-functions-to-static): the NodeMemory interface
  void* allocate(std::size_t /*bytes*/, std::size_t /*align*/, node_id /*node*/) { return nullptr; }
  void deallocate(void* /*p*/, std::size_t /*bytes*/, std::size_t /*align*/,
                  node_id /*node*/) noexcept {}
};
using minimal = numamap_test::minimal_memory;  // has none of the optional members

}  // namespace

TEST_CASE("is_node_memory_v tells which types meet NodeMemory", "[memory]") {
  STATIC_REQUIRE(is_node_memory_v<heap_memory>);
  STATIC_REQUIRE(is_node_memory_v<numa_memory>);
  STATIC_REQUIRE(is_node_memory_v<numamap::default_memory>);
  STATIC_REQUIRE(is_node_memory_v<counting_memory<>>);
  STATIC_REQUIRE(is_node_memory_v<counting_memory<heap_memory>>);
  STATIC_REQUIRE(is_node_memory_v<minimal>);
  STATIC_REQUIRE_FALSE(is_node_memory_v<int>);
  STATIC_REQUIRE_FALSE(is_node_memory_v<no_allocate>);
  STATIC_REQUIRE_FALSE(is_node_memory_v<throwing_deallocate>);
  STATIC_REQUIRE_FALSE(is_node_memory_v<not_copyable>);
  STATIC_REQUIRE(d::check_node_memory<minimal>::value);
}

TEST_CASE("optional members are detected and defaulted", "[memory]") {
  STATIC_REQUIRE(d::memory_has_name<heap_memory>::value);
  STATIC_REQUIRE_FALSE(d::memory_has_note<heap_memory>::value);
  STATIC_REQUIRE(d::memory_has_verify<numa_memory>::value);
  STATIC_REQUIRE_FALSE(d::memory_has_verify<heap_memory>::value);
  STATIC_REQUIRE(d::memory_has_verify<counting_memory<numa_memory>>::value);
  STATIC_REQUIRE_FALSE(d::memory_has_verify<counting_memory<heap_memory>>::value);
  STATIC_REQUIRE_FALSE(d::memory_has_name<minimal>::value);
  CHECK(d::memory_name(minimal{}) == "user memory resource");
  CHECK(d::memory_note(minimal{}).empty());
  CHECK_FALSE(d::memory_verify(minimal{}, 0).verified);
  CHECK(d::memory_name(heap_memory{}) == "heap_memory");
}

TEST_CASE("counting_memory counts live bytes per node; copies share the counters", "[memory]") {
  counting_memory<heap_memory> a;
  counting_memory<heap_memory> b = a;
  void* p = a.allocate(100, 8, 0);
  void* q = b.allocate(50, 16, 1);
  void* r = a.allocate(7, 1, 1);
  CHECK(a.live_bytes() == 157);
  CHECK(b.live_bytes(0) == 100);
  CHECK(b.live_bytes(1) == 57);
  CHECK(a.live_bytes(2) == 0);
  CHECK(a.live_allocations() == 3);
  CHECK(a.live_allocations(1) == 2);
  b.deallocate(p, 100, 8, 0);  // through the other copy
  CHECK(a.live_bytes(0) == 0);
  a.deallocate(q, 50, 16, 1);
  a.deallocate(r, 7, 1, 1);
  CHECK(a.live_bytes() == 0);
  CHECK(b.live_allocations() == 0);
  CHECK(b.total_allocations() == 3);
  counting_memory<heap_memory> c;  // a fresh one has its own counters
  CHECK(c.total_allocations() == 0);
  CHECK(a.name() == "heap_memory");
  CHECK(a.note().empty());
}

TEST_CASE("counting_memory forwards name, note and verify_placement", "[memory]") {
  counting_memory<numa_memory> c{numa_memory()};
  CHECK(c.name() == c.inner().name());
  CHECK(c.note() == c.inner().note());
  void* p = c.allocate(4096, 4096, 0);
  static_cast<char*>(p)[0] = 1;
  CHECK(c.verify_placement(0).verified == c.inner().verify_placement(0).verified);
  c.deallocate(p, 4096, 4096, 0);
  CHECK(counting_memory<minimal>().name() == "counting_memory");
}

TEST_CASE("counting_memory is exact after concurrent use", "[memory]") {
  counting_memory<> mem;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < 4; ++t) {
    pool.emplace_back([mem, t]() mutable {  // each thread its own copy
      std::vector<void*> v;
      for (std::size_t i = 0; i < 2000; ++i) v.push_back(mem.allocate(8 + i % 200, 8, 0));
      for (std::size_t i = 0; i < 1000; ++i) mem.deallocate(v[i], 8 + i % 200, 8, 0);
      (void)t;
    });
  }
  for (auto& th : pool) th.join();
  CHECK(mem.live_allocations() == 4000);
  std::size_t expect = 0;
  for (std::size_t i = 1000; i < 2000; ++i) expect += 8 + i % 200;
  CHECK(mem.live_bytes() == 4 * expect);
  CHECK(mem.live_bytes(0) == 4 * expect);
}
