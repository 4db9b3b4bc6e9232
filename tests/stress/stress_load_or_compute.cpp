// SPEC "The map": load_or_compute — "make() runs at most once per insertion, only when
// absent" — with every thread racing on one key; and per-key linearizability ("Every
// operation on one key is linearizable"): values never go backwards for a reader, and a
// store that has returned is seen by every load that starts after it.
#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "map_kinds.hpp"
#include "stress_util.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"
#include "watchdog.hpp"

using numamap_test::error_log;
using numamap_test::string_kind;
using numamap_test::u64_kind;

namespace {

template <class Kind>
void load_or_compute_race(const std::string& name, std::uint64_t rounds) {
  constexpr std::size_t threads = 4;
  numamap_test::watchdog dog(name, std::chrono::seconds(120));
  typename Kind::map_type m;
  // Other keys around, so the key's shard has a read snapshot and a dirty map to race in.
  for (std::uint64_t i = 100; i < 200; ++i) m.store(Kind::key(i), Kind::value(i));
  std::atomic<std::uint64_t> made{0};
  std::vector<std::uint64_t> inserted(threads, 0);
  std::vector<std::vector<std::uint64_t>> results(threads);
  error_log errors;
  numamap_test::spin_barrier barrier(threads);
  numamap_test::run_threads(threads, [&](std::size_t t) {
    for (std::uint64_t r = 0; r < rounds; ++r) {
      barrier.arrive_and_wait();  // all threads race on the absent key 7
      auto res = m.load_or_compute(Kind::key(7), [&] {
        made.fetch_add(1);
        return Kind::value(r * 16 + t);
      });
      if (!res.second) ++inserted[t];
      results[t].push_back(Kind::value_id(res.first));
      barrier.arrive_and_wait();  // everyone has its answer
      if (t == 0) {
        // Alternate deletion paths between rounds; promote the key sometimes first.
        if (r % 3 == 0)
          for (int i = 0; i < 8; ++i) (void)m.load(Kind::key(7));
        bool erased =
            (r % 2 == 0) ? m.erase(Kind::key(7)) : m.load_and_delete(Kind::key(7)).has_value();
        if (!erased) errors.add("round " + std::to_string(r) + ": key 7 was not there to erase");
      }
      barrier.arrive_and_wait();
    }
  });
  INFO(errors.text());
  CHECK(errors.count() == 0);
  std::uint64_t total_inserted = 0;
  for (auto n : inserted) total_inserted += n;
  CHECK(total_inserted == rounds);  // exactly one insertion per round
  CHECK(made.load() == rounds);     // make() ran exactly once per insertion
  for (std::uint64_t r = 0; r < rounds; ++r) {
    // Every thread got the same value in a round, made in that round.
    const std::uint64_t v = results[0][r];
    CHECK(v / 16 == r);
    for (std::size_t t = 1; t < threads; ++t) REQUIRE(results[t][r] == v);
  }
}

template <class Kind>
void load_or_compute_with_erasers(const std::string& name, std::uint64_t ops) {
  // Threads call load_or_compute and erase on a few keys at random: make() must run exactly
  // as often as load_or_compute reports an insertion (loaded == false).
  constexpr std::size_t threads = 4;
  const std::uint64_t seed = numamap_test::test_seed(name);
  INFO("seed " << seed);
  numamap_test::watchdog dog(name, std::chrono::seconds(120));
  typename Kind::map_type m;
  std::atomic<std::uint64_t> made{0};
  std::atomic<std::uint64_t> inserted{0};
  error_log errors;
  numamap_test::run_threads(threads, [&](std::size_t t) {
    std::mt19937_64 rng(seed + t);
    for (std::uint64_t i = 0; i < ops; ++i) {
      const std::uint64_t k = rng() % 4;
      if (rng() % 3 == 0) {
        (void)(rng() % 2 ? m.erase(Kind::key(k)) : m.load_and_delete(Kind::key(k)).has_value());
      } else {
        bool ran = false;
        auto r = m.load_or_compute(Kind::key(k), [&] {
          if (ran) errors.add("make() called twice in one load_or_compute");
          ran = true;
          made.fetch_add(1);
          return Kind::value(k * 1000 + t);
        });
        if (!r.second) inserted.fetch_add(1);
        if (ran == r.second)
          errors.add("make() ran but loaded==true, or did not run but loaded==false");
        if (Kind::value_id(r.first) / 1000 != k)
          errors.add("load_or_compute returned another key's value");
      }
    }
  });
  INFO(errors.text());
  CHECK(errors.count() == 0);
  CHECK(made.load() == inserted.load());
  CHECK(inserted.load() > 0);
}

template <class Kind>
void monotonic_per_key(const std::string& name, std::uint64_t writes) {
  // One writer per key stores increasing values; after each store returns it publishes the
  // value. Readers (load, visit, range) must never see a key's value go backwards, and must
  // never see less than what was published before their read began.
  constexpr std::size_t keys = 4;
  constexpr std::size_t readers = 2;
  const std::uint64_t seed = numamap_test::test_seed(name);
  INFO("seed " << seed);
  numamap_test::watchdog dog(name, std::chrono::seconds(120));
  typename Kind::map_type m;
  for (std::uint64_t k = 0; k < keys; ++k) m.store(Kind::key(k), Kind::value(0));
  std::vector<std::atomic<std::uint64_t>> published(keys);
  for (auto& p : published) p.store(0);
  std::atomic<std::size_t> writers_done{0};
  error_log errors;
  numamap_test::run_threads(keys + readers, [&](std::size_t t) {
    if (t < keys) {
      const std::uint64_t k = t;
      for (std::uint64_t v = 1; v <= writes && !errors.failed(); ++v) {
        if (v % 2 == 0) {
          m.store(Kind::key(k), Kind::value(v));
        } else {
          auto prev = m.exchange(Kind::key(k), Kind::value(v));
          // The single writer of k knows exactly what it replaces.
          if (!prev || Kind::value_id(*prev) != v - 1)
            errors.add("exchange on key " + std::to_string(k) + " returned " +
                       (prev ? std::to_string(Kind::value_id(*prev)) : "nullopt") + ", expected " +
                       std::to_string(v - 1));
        }
        published[k].store(v);  // seq_cst: after the store returned
      }
      writers_done.fetch_add(1);
      return;
    }
    std::mt19937_64 rng(seed + t);
    std::vector<std::uint64_t> last(keys, 0);
    auto observe = [&](std::uint64_t k, std::uint64_t v, std::uint64_t floor, const char* how) {
      if (v < last[k])
        errors.add(std::string(how) + ": key " + std::to_string(k) + " went back from " +
                   std::to_string(last[k]) + " to " + std::to_string(v));
      if (v < floor)
        errors.add(std::string(how) + ": key " + std::to_string(k) + " read " + std::to_string(v) +
                   " after " + std::to_string(floor) + " had been stored and returned");
      last[k] = v;
    };
    while (writers_done.load() < keys && !errors.failed()) {
      const std::uint64_t k = rng() % keys;
      const std::uint64_t floor = published[k].load();
      switch (rng() % 3) {
        case 0: {
          auto v = m.load(Kind::key(k));
          if (!v)
            errors.add("load: key " + std::to_string(k) + " vanished");
          else
            observe(k, Kind::value_id(*v), floor, "load");
          break;
        }
        case 1: {
          if (!m.visit(Kind::key(k), [&](const typename Kind::value_type& v) {
                observe(k, Kind::value_id(v), floor, "visit");
              }))
            errors.add("visit: key " + std::to_string(k) + " vanished");
          break;
        }
        case 2: {
          std::vector<std::uint64_t> floors(keys);
          for (std::uint64_t i = 0; i < keys; ++i) floors[i] = published[i].load();
          std::size_t n = 0;
          m.range([&](const typename Kind::key_type& key, const typename Kind::value_type& v) {
            const auto kk = Kind::key_id(key);
            ++n;
            observe(kk, Kind::value_id(v), floors[kk], "range");
          });
          if (n != keys) errors.add("range saw " + std::to_string(n) + " keys, expected 4");
          break;
        }
      }
    }
  });
  INFO(errors.text());
  CHECK(errors.count() == 0);
  for (std::uint64_t k = 0; k < keys; ++k) CHECK(Kind::value_id(*m.load(Kind::key(k))) == writes);
}

}  // namespace

TEST_CASE("map.load_or_compute: all threads racing on one absent key insert once, make once",
          "[stress][map.load_or_compute]") {
  load_or_compute_race<u64_kind>("loc.race.u64", numamap_test::scaled(400));
  load_or_compute_race<string_kind>("loc.race.string", numamap_test::scaled(400));
}

TEST_CASE("map.load_or_compute racing with erase: make() runs once per insertion",
          "[stress][map.load_or_compute]") {
  load_or_compute_with_erasers<u64_kind>("loc.erasers.u64", numamap_test::scaled(20000));
  load_or_compute_with_erasers<string_kind>("loc.erasers.string", numamap_test::scaled(10000));
}

TEST_CASE("map linearizability smoke: per key, values never go backwards and stores are seen",
          "[stress][linearizability]") {
  monotonic_per_key<u64_kind>("lin.u64", numamap_test::scaled(30000));
  monotonic_per_key<string_kind>("lin.string", numamap_test::scaled(15000));
}
