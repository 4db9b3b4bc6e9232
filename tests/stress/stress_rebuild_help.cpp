// A writer that needs a shard's mutex while a rebuild holds it copies chunks of the rebuild's
// copy instead of sleeping (decisions.md D51): the old table's present entries go into the
// new one from two threads at once, each slot taken with a CAS of its tag. Here two threads
// churn keys of their own in a one-shard map (each keeps a window of live keys: a fresh key
// in, its oldest key out), so the shard rebuilds every few thousand keys and each thread
// finds the other's rebuild in progress. They run until a waiting writer has helped, then
// the map must hold exactly both windows, each key with the value last stored, and no other
// key. Every erase of a key in the window must find it.
// Second case: the live-key count is skewed low (map_test_access::skew_size), so each rebuild
// sizes its new table too small, the copiers overflow it, and the rebuilder copies again
// alone into a larger one: the overflowed copy must leave nothing behind.
// Both key types: uint64 keys in the slots, string keys in nodes whose pointers the copies
// hand over.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "map_kinds.hpp"
#include "stress_util.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"
#include "watchdog.hpp"

using numamap::detail::map_test_access;
using numamap_test::string_kind;
using numamap_test::u64_kind;

namespace {

// Per thread: 3000 live keys, 6000 in the shard, in tables of 16384 slots (chunks of 1024).
constexpr std::uint64_t window = 3000;
constexpr std::uint64_t base_of_thread[2] = {1'000'000'000, 2'000'000'000};

template <class Kind>
void churn_until_helped(bool skewed) {
  using map_t = typename Kind::map_type;
  typename map_t::options o;
  o.shards_per_node = 1;
  map_t m(o);
  numamap_test::watchdog dog("rebuild.help", std::chrono::seconds(240));
  auto key = [](std::uint64_t i) { return Kind::key(i); };
  auto val = [](std::uint64_t v) { return Kind::value(v); };

  // Each thread's first window, stored before the threads start.
  for (const std::uint64_t base : base_of_thread) {
    for (std::uint64_t i = 0; i < window; ++i) m.store(key(base + i), val(i));
  }
  const auto skew = static_cast<std::int64_t>(2 * window);
  if (skewed) map_test_access::skew_size(m, 0, -skew);

  // At least this many fresh keys per thread; at most `most`, or until the deadline.
  const std::uint64_t least = numamap_test::scaled(60000, 4);
  const std::uint64_t most = least * 40;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::atomic<bool> stop{false};
  std::uint64_t last[2] = {window - 1, window - 1};
  numamap_test::error_log errors;
  numamap_test::run_threads(2, [&](std::size_t t) {
    const std::uint64_t base = base_of_thread[t];
    std::uint64_t i = window;
    for (; i < window + most && !stop.load(std::memory_order_relaxed) && !errors.failed(); ++i) {
      m.store(key(base + i), val(i));
      if (!m.erase(key(base + i - window))) {
        errors.add("thread " + std::to_string(t) + ": key " + std::to_string(i - window) +
                   " missing before its erase");
      }
      if ((i & 1023U) == 0 && i >= window + least &&
          (map_test_access::rebuild_help(m, 0) != 0 ||
           std::chrono::steady_clock::now() > deadline)) {
        stop.store(true, std::memory_order_relaxed);
      }
    }
    last[t] = i - 1;
  });
  if (skewed) map_test_access::skew_size(m, 0, skew);
  INFO(Kind::name << (skewed ? ", skewed count" : "") << ": " << errors.text());
  REQUIRE(errors.count() == 0);
  const std::uint64_t helped = map_test_access::rebuild_help(m, 0);
  INFO("helped " << helped << " times; rebuilds " << m.stats().shards.at(0).rebuilds);
  CHECK(helped > 0);
  CHECK(m.size() == 2 * window);
  std::uint64_t wrong = 0;
  for (std::size_t t = 0; t < 2; ++t) {
    const std::uint64_t base = base_of_thread[t];
    for (std::uint64_t i = last[t] + 1 - window; i <= last[t]; ++i) {
      const auto v = m.load(key(base + i));
      if (!v || Kind::value_id(*v) != i) ++wrong;
    }
    // The keys just before the window, erased last.
    for (std::uint64_t i = last[t] + 1 - 2 * window; i <= last[t] - window; ++i) {
      if (m.contains(key(base + i))) ++wrong;
    }
  }
  CHECK(wrong == 0);
  std::uint64_t ranged = 0;
  m.range([&](const auto&, const auto&) {
    ++ranged;
    return true;
  });
  CHECK(ranged == 2 * window);
}

}  // namespace

TEST_CASE("rebuild help: waiting writers copy chunks, nothing lost or doubled",
          "[stress][rebuild][help]") {
  churn_until_helped<u64_kind>(false);
  churn_until_helped<string_kind>(false);
}

TEST_CASE("rebuild help: a copy that overflows its table is redone alone",
          "[stress][rebuild][help]") {
  churn_until_helped<u64_kind>(true);
  churn_until_helped<string_kind>(true);
}
