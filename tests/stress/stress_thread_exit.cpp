// What a thread does with its epoch records when it exits (detail/epoch.hpp, decisions.md
// D43): it frees what the epoch allows with no lock held, since freeing runs the users'
// destructors, which may destroy other maps; maps used after the thread's thread-local cache
// is gone (from a thread_local destroyed after it) still pin safely, each pin with a record
// of its own that goes back at the unpin; and what an exited thread could not free is freed
// by the threads that go on (adopted leftovers), not only when the map dies.
// tests/exit/at_exit_main.cpp covers the main thread's static objects after exit().
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <numamap/numamap.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_catch.hpp"
#include "watchdog.hpp"

namespace {

using numamap::detail::map_test_access;
using inner_map = numamap::concurrent_map<int, int>;
using outer_map = numamap::concurrent_map<int, std::shared_ptr<inner_map>>;
using plain_map = numamap::concurrent_map<std::uint64_t, std::uint64_t>;
using string_map = numamap::concurrent_map<std::uint64_t, std::string>;  // values in nodes

plain_map* late_target = nullptr;  // the map the thread_local below writes to
std::atomic<bool> late_failed{false};

/// Constructed by a thread before its first use of any map, so destroyed after the thread's
/// thread-local cache of epoch records: its destructor pins with that cache gone.
struct late_writer {
  std::uint64_t key = 0;
  late_writer() = default;
  late_writer(const late_writer&) = delete;
  late_writer& operator=(const late_writer&) = delete;
  late_writer(late_writer&&) = delete;
  late_writer& operator=(late_writer&&) = delete;
  ~late_writer() {
    if (key == 0 || late_target == nullptr) return;
    try {
      late_target->store(key, key * 10);                  // a pin, an insert
      late_target->store(key, key * 10 + 1);              // and a replacement
      (void)late_target->load_or_store(key + 1000, 1);    // another pin
      const auto v = late_target->load(key);              // and a read
      if (v != key * 10 + 1) late_target->store(0, key);  // recorded as a failure below
    } catch (...) {
      late_failed = true;
    }
  }
};
thread_local late_writer tl_writer;

}  // namespace

TEST_CASE("thread exit: a freed value whose destructor destroys a map does not deadlock",
          "[stress][thread-exit]") {
  numamap_test::watchdog dog("thread-exit.nested-map", std::chrono::seconds(60));
  outer_map outer;
  std::weak_ptr<inner_map> watch;
  std::thread([&] {
    auto inner = std::make_shared<inner_map>();
    inner->store(1, 1);  // the exiting thread holds a record of the inner map too
    watch = inner;
    outer.store(1, std::move(inner));
    outer.erase(1);  // retires the node with the last reference; too few to collect yet
  }).join();
  // Nobody else was pinned: the thread's exit advanced the epoch and freed the node, whose
  // destructor destroyed the inner map (drain, which takes the registry lock).
  CHECK(watch.expired());
  CHECK(map_test_access::reclamation_pending(outer) == 0);
}

TEST_CASE("thread exit: a thread_local destroyed after the thread's record cache uses a map",
          "[stress][thread-exit]") {
  numamap_test::watchdog dog("thread-exit.late-thread-local", std::chrono::seconds(60));
  plain_map m;
  late_target = &m;
  constexpr std::uint64_t threads = 16;
  for (std::uint64_t t = 1; t <= threads; ++t) {
    std::thread([&m, t] {
      tl_writer.key = t;  // constructs tl_writer before the thread's first pin
      m.store(t + 100, t);
    }).join();
  }
  late_target = nullptr;
  for (std::uint64_t t = 1; t <= threads; ++t) {
    CHECK(m.load(t) == t * 10 + 1);
    CHECK(m.load(t + 1000) == 1U);
    CHECK(m.load(t + 100) == t);
  }
  CHECK_FALSE(m.load(0).has_value());  // no late reader saw a wrong value
  CHECK_FALSE(late_failed.load());     // and no late operation threw
  // Every record went back: the exited threads' cached ones at their exit, the late pins'
  // at their unpins; so the records were reused, not one added per late pin.
  const auto records = map_test_access::thread_records(m);
  CHECK(records.second == 1);  // the main thread's
  CHECK(records.first <= 3);
}

TEST_CASE("thread exit: what an exited thread could not free is freed by the threads that go on",
          "[stress][thread-exit]") {
  numamap_test::watchdog dog("thread-exit.leftovers", std::chrono::seconds(60));
  string_map m;
  m.store(0, "0");  // the main thread's record
  // The main thread stays pinned (a range callback) while the other thread retires and
  // exits: the epoch cannot pass the main thread, so the exiting thread frees nothing and
  // leaves its bag in its record.
  std::size_t left = 0;
  m.range([&](const std::uint64_t&, const std::string&) {
    std::thread([&m] {
      for (std::uint64_t i = 0; i < 100; ++i) m.store(1, std::to_string(i));  // 99 replaced nodes
    }).join();
    left = map_test_access::reclamation_pending(m);
    return false;
  });
  CHECK(left >= 90);
  // The main thread goes on writing, unpinned between operations: its collects adopt the
  // given-back record's leftovers.
  for (std::uint64_t i = 0; i < 400; ++i) m.store(2, std::to_string(i));
  CHECK(map_test_access::reclamation_pending(m) < 128);
  CHECK(m.load(1) == std::string("99"));
}
