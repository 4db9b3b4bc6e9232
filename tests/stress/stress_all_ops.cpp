// SPEC "The map", semantics under concurrency: "Every operation on one key is linearizable";
// range "visits no key twice; a key stored or deleted during the call may be seen with any
// value it had during the call, or not at all".
//
// Several threads run every operation at once. Each thread owns a key range and keeps an
// exact model of it (no other thread writes those keys, so every result is predictable, and
// its own keys must appear in its own range() calls exactly as modelled). All threads also
// hammer a few shared hot keys whose values always encode their key, checking that invariant
// on every value they get back. Seeds are printed; sizes scale with NUMAMAP_STRESS_SCALE.
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "map_kinds.hpp"
#include "stress_util.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"
#include "watchdog.hpp"

using numamap_test::error_log;
using numamap_test::string_kind;
using numamap_test::u64_kind;

namespace {

constexpr std::uint64_t hot_keys = 8;
constexpr std::uint64_t own_keys = 48;
constexpr std::uint64_t own_base = 1000;  // thread t owns keys own_base*(t+1) + [0, own_keys)

// A hot key's values: key * 2^20 + n, so every value names the key it was stored for.
std::uint64_t hot_value(std::uint64_t key, std::uint64_t n) { return key << 20 | (n & 0xfffff); }
bool hot_ok(std::uint64_t key, std::uint64_t v) { return (v >> 20) == key; }

template <class Kind>
struct worker {
  using map_t = typename Kind::map_type;
  using value_t = typename Kind::value_type;

  map_t& m;
  error_log& errors;
  std::size_t thread = 0;
  std::uint64_t seed = 0;
  std::map<std::uint64_t, std::uint64_t> model;  // own keys only
  std::uint64_t op_index = 0;

  std::uint64_t own(std::uint64_t i) const { return own_base * (thread + 1) + i; }

  void err(const std::string& what) {
    errors.add("thread " + std::to_string(thread) + " seed " + std::to_string(seed) + " op #" +
               std::to_string(op_index) + ": " + what);
  }

  std::optional<std::uint64_t> id(const std::optional<value_t>& v) {
    if (!v) return std::nullopt;
    return Kind::value_id(*v);
  }
  static std::string s(const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : "nullopt";
  }
  void expect(const std::optional<std::uint64_t>& got, const std::optional<std::uint64_t>& want,
              const char* what, std::uint64_t key) {
    if (got != want)
      err(std::string(what) + " key " + std::to_string(key) + ": got " + s(got) + ", want " +
          s(want));
  }
  void expect(bool got, bool want, const char* what, std::uint64_t key) {
    if (got != want)
      err(std::string(what) + " key " + std::to_string(key) + ": got " +
          std::to_string(static_cast<int>(got)) + ", want " +
          std::to_string(static_cast<int>(want)));
  }

  // One op on an own key, checked exactly.
  void own_op(std::mt19937_64& rng) {
    const std::uint64_t k = own(rng() % own_keys);
    const std::uint64_t v = rng() % 16;
    auto it = model.find(k);
    const std::optional<std::uint64_t> cur =
        it == model.end() ? std::nullopt : std::optional<std::uint64_t>(it->second);
    const auto key = Kind::key(k);
    switch (rng() % 13) {
      case 0:
      case 1:
        expect(id(m.load(key)), cur, "load", k);
        break;
      case 2:
        m.store(key, Kind::value(v));
        model[k] = v;
        break;
      case 3: {
        auto r = m.load_or_store(key, Kind::value(v));
        expect(r.second, cur.has_value(), "load_or_store.loaded", k);
        expect(Kind::value_id(r.first), cur ? *cur : v, "load_or_store.actual", k);
        if (!cur) model[k] = v;
        break;
      }
      case 4:
        expect(id(m.load_and_delete(key)), cur, "load_and_delete", k);
        model.erase(k);
        break;
      case 5:
        expect(m.erase(key), cur.has_value(), "erase", k);
        model.erase(k);
        break;
      case 6:
        expect(id(m.exchange(key, Kind::value(v))), cur, "exchange", k);
        model[k] = v;
        break;
      case 7: {
        const std::uint64_t e = (cur && rng() % 2 != 0) ? *cur : rng() % 16;
        const bool want = cur && *cur == e;
        expect(m.compare_and_swap(key, Kind::value(e), Kind::value(v)), want, "compare_and_swap",
               k);
        if (want) model[k] = v;
        break;
      }
      case 8: {
        const std::uint64_t e = (cur && rng() % 2 != 0) ? *cur : rng() % 16;
        const bool want = cur && *cur == e;
        expect(m.compare_and_delete(key, Kind::value(e)), want, "compare_and_delete", k);
        if (want) model.erase(k);
        break;
      }
      case 9: {
        int calls = 0;
        auto r = m.load_or_compute(key, [&] {
          ++calls;
          return Kind::value(v);
        });
        expect(calls == 1, !cur.has_value(), "load_or_compute: make() ran", k);
        expect(r.second, cur.has_value(), "load_or_compute.loaded", k);
        expect(Kind::value_id(r.first), cur ? *cur : v, "load_or_compute.value", k);
        if (!cur) model[k] = v;
        break;
      }
      case 10: {
        std::optional<std::uint64_t> seen;
        const bool found = m.visit(key, [&](const value_t& x) { seen = Kind::value_id(x); });
        expect(found, cur.has_value(), "visit.found", k);
        expect(seen, cur, "visit.value", k);
        break;
      }
      case 11:
        expect(m.contains(key), cur.has_value(), "contains", k);
        break;
      case 12:
        for (int i = 0; i < 8; ++i) expect(id(m.load(key)), cur, "load (burst)", k);
        break;
    }
  }

  // One op on a hot key: results unpredictable, but every value must encode the key.
  void hot_op(std::mt19937_64& rng) {
    const std::uint64_t k = rng() % hot_keys;
    const auto key = Kind::key(k);
    const value_t v = Kind::value(hot_value(k, rng()));
    auto check = [&](const std::optional<value_t>& got, const char* what) {
      if (got && !hot_ok(k, Kind::value_id(*got)))
        err(std::string(what) + " on hot key " + std::to_string(k) + " returned value " +
            std::to_string(Kind::value_id(*got)) + " which was never stored for it");
    };
    switch (rng() % 10) {
      case 0:
        check(m.load(key), "load");
        break;
      case 1:
        m.store(key, v);
        break;
      case 2:
        check(m.load_or_store(key, v).first, "load_or_store");
        break;
      case 3:
        check(m.load_and_delete(key), "load_and_delete");
        break;
      case 4:
        (void)m.erase(key);
        break;
      case 5:
        check(m.exchange(key, v), "exchange");
        break;
      case 6: {
        auto cur = m.load(key);
        check(cur, "load");
        if (cur) (void)m.compare_and_swap(key, *cur, v);
        break;
      }
      case 7: {
        auto cur = m.load(key);
        check(cur, "load");
        if (cur) (void)m.compare_and_delete(key, *cur);
        break;
      }
      case 8:
        // NOLINTNEXTLINE(performance-no-automatic-move): v is captured by reference, copied
        check(m.load_or_compute(key, [&] { return v; }).first, "load_or_compute");
        break;
      case 9: {
        std::optional<value_t> seen;
        if (m.visit(key, [&](const value_t& x) { seen = x; }) != seen.has_value())
          err("visit's result disagrees with whether f ran");
        check(seen, "visit");
        (void)m.contains(key);
        break;
      }
    }
  }

  // range(): own keys exactly as modelled, hot keys well-formed, nothing twice, no stranger.
  void range_check(std::size_t threads) {
    std::set<std::uint64_t> seen;
    std::map<std::uint64_t, std::uint64_t> mine;
    m.range([&](const typename Kind::key_type& key, const value_t& val) {
      const std::uint64_t k = Kind::key_id(key);
      const std::uint64_t v = Kind::value_id(val);
      if (!seen.insert(k).second) err("range visited key " + std::to_string(k) + " twice");
      if (k < hot_keys) {
        if (!hot_ok(k, v))
          err("range: hot key " + std::to_string(k) + " with foreign value " + std::to_string(v));
      } else if (k >= own(0) && k < own(own_keys)) {
        mine[k] = v;
      } else if (k < own_base || k >= own_base * (threads + 1) || k % own_base >= own_keys) {
        err("range: key " + std::to_string(k) + " that nobody stored");
      }
    });
    if (mine != model)
      err("range: own keys " + numamap_test::to_string(mine) + ", model " +
          numamap_test::to_string(model));
  }

  void run(std::uint64_t ops, std::size_t threads) {
    std::mt19937_64 rng(seed);
    for (op_index = 0; op_index < ops && !errors.failed(); ++op_index) {
      const auto r = rng() % 100;
      if (r < 55) {
        own_op(rng);
      } else if (r < 99) {
        hot_op(rng);
      } else {
        range_check(threads);
      }
    }
  }
};

/// A map whose lock-free lookups probe its read tables as `p` says (decisions.md D33).
template <class Kind>
typename Kind::map_type::options probing(numamap::read_probe p) {
  typename Kind::map_type::options o;
  o.probe = p;
  return o;
}

template <class Kind>
void stress_all_ops(const std::string& name, std::uint64_t ops_per_thread,
                    numamap::read_probe probe) {
  constexpr std::size_t threads = 4;
  const std::uint64_t seed = numamap_test::test_seed(name);
  INFO("seed " << seed << " (NUMAMAP_TEST_SEED=" << numamap_test::base_seed() << ")");
  numamap_test::watchdog dog(name, std::chrono::seconds(120));
  typename Kind::map_type m(probing<Kind>(probe));
  error_log errors;
  std::vector<std::map<std::uint64_t, std::uint64_t>> models(threads);
  numamap_test::run_threads(threads, [&](std::size_t t) {
    worker<Kind> w{m, errors, t, seed + t, {}};
    w.run(ops_per_thread, threads);
    models[t] = std::move(w.model);
  });
  INFO(errors.text());
  REQUIRE(errors.count() == 0);

  // Quiescent now: exact contents, size and stats.
  std::size_t dup = 0;
  auto all = numamap_test::read_back<Kind>(m, &dup);
  CHECK(dup == 0);
  std::size_t expected = 0;
  for (std::size_t t = 0; t < threads; ++t) {
    expected += models[t].size();
    for (const auto& kv : models[t]) {
      auto it = all.find(kv.first);
      REQUIRE(it != all.end());
      CHECK(it->second == kv.second);
    }
  }
  std::size_t hot_present = 0;
  for (const auto& kv : all) {
    if (kv.first < hot_keys) {
      ++hot_present;
      CHECK(hot_ok(kv.first, kv.second));
      CHECK(m.contains(Kind::key(kv.first)));
    }
  }
  CHECK(all.size() == expected + hot_present);
  CHECK(m.size() == all.size());
  CHECK(numamap_test::stats_entries(m) == m.size());
}

template <class Kind>
void stress_clear(const std::string& name, std::uint64_t ops_per_thread,
                  numamap::read_probe probe) {
  // Hot keys only, with one thread clearing now and then: invariants must hold throughout,
  // and the quiescent map afterwards must agree with itself.
  constexpr std::size_t threads = 4;
  const std::uint64_t seed = numamap_test::test_seed(name);
  INFO("seed " << seed << " (NUMAMAP_TEST_SEED=" << numamap_test::base_seed() << ")");
  numamap_test::watchdog dog(name, std::chrono::seconds(120));
  typename Kind::map_type m(probing<Kind>(probe));
  error_log errors;
  numamap_test::run_threads(threads, [&](std::size_t t) {
    worker<Kind> w{m, errors, t, seed + t, {}};
    std::mt19937_64 rng(seed + t);
    for (w.op_index = 0; w.op_index < ops_per_thread && !errors.failed(); ++w.op_index) {
      if (t == 0 && rng() % 64 == 0) {
        m.clear();
      } else if (rng() % 50 == 0) {
        w.range_check(threads);
      } else {
        w.hot_op(rng);
      }
    }
  });
  INFO(errors.text());
  REQUIRE(errors.count() == 0);
  std::size_t dup = 0;
  auto all = numamap_test::read_back<Kind>(m, &dup);
  CHECK(dup == 0);
  CHECK(m.size() == all.size());
  CHECK(numamap_test::stats_entries(m) == all.size());
  for (std::uint64_t k = 0; k < hot_keys; ++k) {
    CHECK(m.contains(Kind::key(k)) == (all.count(k) == 1));
  }
  m.clear();
  CHECK(m.empty());
  CHECK(numamap_test::read_back<Kind>(m).empty());
}

}  // namespace

// The lock-free probe on tags and slot by slot, each under both kinds of value (the
// automatic choice takes slots for maps this small).
TEST_CASE("stress: all operations from 4 threads, own keys exact, hot keys consistent (uint64)",
          "[stress]") {
  stress_all_ops<u64_kind>("stress.all_ops.u64", numamap_test::scaled(20000),
                           numamap::read_probe::tags);
}

TEST_CASE("stress: all operations from 4 threads, own keys exact, hot keys consistent (string)",
          "[stress]") {
  stress_all_ops<string_kind>("stress.all_ops.string", numamap_test::scaled(12000),
                              numamap::read_probe::slots);
}

TEST_CASE("stress: clear racing with every operation on hot keys (uint64)", "[stress]") {
  stress_clear<u64_kind>("stress.clear.u64", numamap_test::scaled(15000),
                         numamap::read_probe::slots);
}

TEST_CASE("stress: clear racing with every operation on hot keys (string)", "[stress]") {
  stress_clear<string_kind>("stress.clear.string", numamap_test::scaled(10000),
                            numamap::read_probe::tags);
}
