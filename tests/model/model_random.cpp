// SPEC "The map", all operations: thousands of seeded random op sequences over a small key
// space, and a few long ones that grow maps to thousands of keys and shrink them again, every
// result compared with a trivially correct model (std::map). On a mismatch the
// test prints the seed, the op that failed and the whole trace of its sequence; replay with
// NUMAMAP_TEST_SEED=<printed base seed>.
//
// Sequences include bursts of loads (which promote the dirty map into the read snapshot),
// deletes of promoted keys (expunged entries), re-stores of expunged keys, and clears.
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "map_kinds.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"

using numamap_test::counted;
using numamap_test::counted_kind;
using numamap_test::string_kind;
using numamap_test::u64_kind;

namespace {

enum class op : std::uint8_t {
  load,
  store,
  load_or_store,
  load_and_delete,
  erase,
  exchange,
  compare_and_swap,
  compare_and_delete,
  range_all,
  range_stop,
  clear,
  load_or_compute,
  visit,
  contains,
  size,
  load_burst,
  load_all,
  stats,
  count_
};

const char* op_name(op o) {
  switch (o) {
    case op::load:
      return "load";
    case op::store:
      return "store";
    case op::load_or_store:
      return "load_or_store";
    case op::load_and_delete:
      return "load_and_delete";
    case op::erase:
      return "erase";
    case op::exchange:
      return "exchange";
    case op::compare_and_swap:
      return "compare_and_swap";
    case op::compare_and_delete:
      return "compare_and_delete";
    case op::range_all:
      return "range(all)";
    case op::range_stop:
      return "range(stop after a)";
    case op::clear:
      return "clear";
    case op::load_or_compute:
      return "load_or_compute";
    case op::visit:
      return "visit";
    case op::contains:
      return "contains";
    case op::size:
      return "size/empty";
    case op::load_burst:
      return "load x20";
    case op::load_all:
      return "load all keys x3";
    case op::stats:
      return "stats";
    case op::count_:
      break;
  }
  return "?";
}

struct step {
  op what;
  std::uint64_t key;
  std::uint64_t a;  // value / expected / stop count
  std::uint64_t b;  // desired
};

std::string opt_str(const std::optional<std::uint64_t>& v) {
  return v ? std::to_string(*v) : std::string("nullopt");
}

template <class Kind>
class model_run {
 public:
  using map_t = typename Kind::map_type;
  using value_t = typename Kind::value_type;

  model_run(std::uint64_t seed, std::size_t key_space) : seed_(seed), keys_(key_space) {}

  /// Weights of the ops (one per op, in enum order), one set per phase: run() goes through
  /// the phases in turn, `phase_ops` ops each. For large maps, which the default weights
  /// (a clear every ~80 ops) never let grow. Also stops keeping the model's state before
  /// each op for the report (a copy of the whole model per op), and shortens the report's
  /// trace to its last steps.
  void set_phases(std::vector<std::vector<double>> phases, std::size_t phase_ops) {
    phases_ = std::move(phases);
    phase_ops_ = phase_ops;
    keep_before_ = false;
  }

  /// Runs `n` random ops on `m`; returns false (with report()) at the first mismatch.
  bool run(map_t& m, std::size_t n) {
    std::mt19937_64 rng(seed_);
    // Weighted choice: point operations are frequent, whole-map ones rarer, clear rarest.
    static const std::vector<double> weights = {12, 10, 6, 4, 5, 5, 6, 4, 2,
                                                2,  1,  4, 4, 4, 2, 2, 2, 1};
    std::vector<std::discrete_distribution<unsigned>> picks;
    for (const std::vector<double>& w :
         phases_.empty() ? std::vector<std::vector<double>>{weights} : phases_) {
      REQUIRE(w.size() == static_cast<std::size_t>(op::count_));  // one weight per op
      picks.emplace_back(w.begin(), w.end());
    }
    for (std::size_t i = 0; i < n; ++i) {
      auto& pick = picks[(i / phase_ops_) % picks.size()];
      step s{static_cast<op>(pick(rng)), rng() % keys_, rng() % 8, rng() % 8};
      if (s.what == op::compare_and_swap || s.what == op::compare_and_delete) {
        auto it = model_.find(s.key);
        if (it != model_.end() && rng() % 3 != 0) s.a = it->second;  // usually the current one
      }
      if (s.what == op::range_stop) s.a = 1 + rng() % 6;
      trace_.push_back(s);
      if (!apply(m, s)) return false;
      largest_ = std::max(largest_, model_.size());  // the map's too, while they agree
    }
    return true;
  }

  /// The most keys the model (and so the map) held during run().
  std::size_t largest() const { return largest_; }

  /// Replays fixed steps (a trace, possibly shortened) on `m`; false at the first mismatch.
  bool replay(map_t& m, const std::vector<step>& steps) {
    for (const step& s : steps) {
      trace_.push_back(s);
      if (!apply(m, s)) return false;
    }
    return true;
  }

  const std::vector<step>& trace() const { return trace_; }
  std::size_t checks() const { return checks_; }

  std::string report() const {
    std::ostringstream os;
    os << "model mismatch (" << Kind::name << "), sequence seed " << seed_ << ", op #"
       << trace_.size() - 1 << ": " << failure_ << "\ntrace:\n";
    const std::size_t shown =
        keep_before_ ? trace_.size() : std::min<std::size_t>(trace_.size(), 60);
    if (shown < trace_.size())
      os << "  (the last " << shown << " of " << trace_.size() << " ops)\n";
    for (std::size_t i = trace_.size() - shown; i < trace_.size(); ++i) {
      const step& s = trace_[i];
      os << "  #" << i << ' ' << op_name(s.what) << " key=" << s.key << " a=" << s.a << " b=" << s.b
         << '\n';
    }
    return os.str();
  }

 private:
  bool fail(const std::string& why) {
    failure_ = why;
    return false;
  }

  template <class A, class E>
  bool expect_eq(const A& actual, const E& expected, const char* what) {
    ++checks_;
    if (actual == expected) return true;
    std::ostringstream os;
    os << what << ": map gave " << actual << ", model expects " << expected << "; model before: "
       << (keep_before_ ? numamap_test::to_string(before_) : std::string("(not kept)"));
    return fail(os.str());
  }

  std::optional<std::uint64_t> ids(const std::optional<value_t>& v) {
    if (!v) return std::nullopt;
    return Kind::value_id(*v);
  }

  std::optional<std::uint64_t> model_get(std::uint64_t k) const {
    auto it = model_.find(k);
    if (it == model_.end()) return std::nullopt;
    return it->second;
  }

  bool apply(map_t& m, const step& s) {
    if (keep_before_) before_ = model_;
    const auto key = Kind::key(s.key);
    const auto cur = model_get(s.key);
    switch (s.what) {
      case op::load:
        return expect_eq(opt_str(ids(m.load(key))), opt_str(cur), "load");
      case op::store:
        m.store(key, Kind::value(s.a));
        model_[s.key] = s.a;
        return true;
      case op::load_or_store: {
        auto r = m.load_or_store(key, Kind::value(s.a));
        if (!expect_eq(r.second, cur.has_value(), "load_or_store.loaded")) return false;
        if (!expect_eq(Kind::value_id(r.first), cur ? *cur : s.a, "load_or_store.actual"))
          return false;
        if (!cur) model_[s.key] = s.a;
        return true;
      }
      case op::load_and_delete:
        model_.erase(s.key);
        return expect_eq(opt_str(ids(m.load_and_delete(key))), opt_str(cur), "load_and_delete");
      case op::erase:
        model_.erase(s.key);
        return expect_eq(m.erase(key), cur.has_value(), "erase");
      case op::exchange:
        model_[s.key] = s.a;
        return expect_eq(opt_str(ids(m.exchange(key, Kind::value(s.a)))), opt_str(cur), "exchange");
      case op::compare_and_swap: {
        const bool want = cur && *cur == s.a;
        if (want) model_[s.key] = s.b;
        return expect_eq(m.compare_and_swap(key, Kind::value(s.a), Kind::value(s.b)), want,
                         "compare_and_swap");
      }
      case op::compare_and_delete: {
        const bool want = cur && *cur == s.a;
        if (want) model_.erase(s.key);
        return expect_eq(m.compare_and_delete(key, Kind::value(s.a)), want, "compare_and_delete");
      }
      case op::range_all: {
        std::size_t dup = 0;
        auto seen = numamap_test::read_back<Kind>(m, &dup);
        if (!expect_eq(dup, std::size_t{0}, "range: keys visited twice")) return false;
        return expect_eq(numamap_test::to_string(seen), numamap_test::to_string(model_),
                         "range contents");
      }
      case op::range_stop: {
        std::size_t calls = 0;
        std::set<std::uint64_t> seen;
        std::string bad;
        m.range([&](const typename Kind::key_type& k, const value_t& v) {
          ++calls;
          const auto id = Kind::key_id(k);
          auto want = model_get(id);
          if (!seen.insert(id).second) bad = "key " + std::to_string(id) + " visited twice";
          if (!want || *want != Kind::value_id(v))
            bad = "key " + std::to_string(id) + " visited with value " +
                  std::to_string(Kind::value_id(v)) + ", model has " + opt_str(want);
          return calls < s.a;
        });
        if (!expect_eq(bad, std::string(), "range(bool) visit")) return false;
        return expect_eq(calls, std::min<std::size_t>(s.a, model_.size()),
                         "range(bool) number of calls");
      }
      case op::clear:
        m.clear();
        model_.clear();
        return expect_eq(m.size(), std::size_t{0}, "size after clear");
      case op::load_or_compute: {
        int calls = 0;
        auto r = m.load_or_compute(key, [&] {
          ++calls;
          return Kind::value(s.a);
        });
        if (!expect_eq(calls, cur ? 0 : 1, "load_or_compute: make() calls")) return false;
        if (!expect_eq(r.second, cur.has_value(), "load_or_compute.loaded")) return false;
        if (!expect_eq(Kind::value_id(r.first), cur ? *cur : s.a, "load_or_compute.value"))
          return false;
        if (!cur) model_[s.key] = s.a;
        return true;
      }
      case op::visit: {
        std::optional<std::uint64_t> seen;
        int calls = 0;
        const bool found = m.visit(key, [&](const value_t& v) {
          ++calls;
          seen = Kind::value_id(v);
        });
        if (!expect_eq(found, cur.has_value(), "visit: found")) return false;
        if (!expect_eq(calls, cur ? 1 : 0, "visit: calls of f")) return false;
        return expect_eq(opt_str(seen), opt_str(cur), "visit: value");
      }
      case op::contains:
        return expect_eq(m.contains(key), cur.has_value(), "contains");
      case op::size:
        if (!expect_eq(m.size(), model_.size(), "size")) return false;
        return expect_eq(m.empty(), model_.empty(), "empty");
      case op::load_burst:
        for (int i = 0; i < 20; ++i)
          if (!expect_eq(opt_str(ids(m.load(key))), opt_str(cur), "load (burst)")) return false;
        return true;
      case op::load_all:
        for (int r = 0; r < 3; ++r)
          for (std::uint64_t k = 0; k < keys_; ++k)
            if (!expect_eq(opt_str(ids(m.load(Kind::key(k)))), opt_str(model_get(k)),
                           "load (all keys)"))
              return false;
        return true;
      case op::stats:
        return expect_eq(numamap_test::stats_entries(m), model_.size(),
                         "sum of stats().shards[].entries");
      case op::count_:
        break;
    }
    return fail("unknown op");
  }

  std::uint64_t seed_;
  std::uint64_t keys_;
  std::map<std::uint64_t, std::uint64_t> model_;
  std::map<std::uint64_t, std::uint64_t> before_;
  std::vector<step> trace_;
  std::string failure_;
  std::size_t checks_ = 0;
  std::vector<std::vector<double>> phases_;
  std::size_t phase_ops_ = 1;
  bool keep_before_ = true;
  std::size_t largest_ = 0;
};

constexpr numamap::read_probe probes[] = {numamap::read_probe::tags, numamap::read_probe::slots,
                                          numamap::read_probe::automatic};

/// The layout of sequence i, six in turn: one shard per node (which concentrates keys: more
/// promotions and rebuilds per shard) or the default shards, and the read probe (tags, slots,
/// automatic).
template <class Kind>
typename Kind::map_type::options layout_of(std::uint64_t i) {
  typename Kind::map_type::options o;
  o.shards_per_node = (i % 2 == 0) ? 1 : 0;
  o.probe = probes[i % 3];
  return o;
}

template <class Kind>
void run_sequences(const std::string& name) {
  const std::uint64_t base = numamap_test::test_seed(name);
  const std::uint64_t sequences = numamap_test::scaled(1500, 3);
  INFO("base seed " << base << " (NUMAMAP_TEST_SEED=" << numamap_test::base_seed() << ")");
  std::mt19937_64 seeds(base);
  std::size_t checks = 0;
  for (std::uint64_t i = 0; i < sequences; ++i) {
    const std::uint64_t seed = seeds();
    // Key spaces of 4 and 16 keys; `automatic` probes the slots for tables this small.
    const typename Kind::map_type::options o = layout_of<Kind>(i);
    typename Kind::map_type m(o);
    model_run<Kind> run(seed, (i % 3 == 0) ? 4 : 16);
    const bool ok = run.run(m, 150);
    checks += run.checks();
    if (!ok) {
      // Shrink the trace (drop steps while it still fails) so the report is short.
      std::vector<step> steps = run.trace();
      std::string shortest = run.report();
      for (bool changed = true; changed;) {
        changed = false;
        for (std::size_t j = steps.size(); j-- > 0;) {
          std::vector<step> shorter = steps;
          shorter.erase(shorter.begin() + static_cast<std::ptrdiff_t>(j));
          typename Kind::map_type m2(o);
          model_run<Kind> again(seed, 16);
          if (!again.replay(m2, shorter)) {
            steps = again.trace();
            shortest = again.report();
            changed = true;
          }
        }
      }
      INFO("shrunk to " << steps.size() << " ops (shards_per_node " << o.shards_per_node
                        << ", probe " << static_cast<int>(o.probe) << "):\n"
                        << shortest);
      FAIL(run.report());
    }
  }
  CHECK(checks > sequences * 50);
}

/// Large maps: thousands of keys in one shard (its table grows from 16 to 4096 or 8192 slots
/// through several rebuilds, with the tag probe on the large tables) or spread over the default
/// shards, in phases that grow the map (mostly inserts) and shrink it (mostly deletes, whose
/// rebuilds compact), so growth, compaction and the dirty map's moves are compared with the
/// model, which the small sequences above (at most 16 keys) never reach.
template <class Kind>
void run_large_sequences(const std::string& name) {
  const std::uint64_t base = numamap_test::test_seed(name);
  const std::uint64_t sequences = numamap_test::scaled(4, 2);
  INFO("base seed " << base << " (NUMAMAP_TEST_SEED=" << numamap_test::base_seed() << ")");
  // Weights in enum order: load, store, load_or_store, load_and_delete, erase, exchange,
  // compare_and_swap, compare_and_delete, range_all, range_stop, clear, load_or_compute,
  // visit, contains, size, load_burst, load_all, stats. Whole-map ops stay rare (each is
  // O(size)); clear only while shrinking, about once per 2700 ops.
  const std::vector<double> grow = {12,  14, 8, 1, 1, 5,   4, 1,    0.01,
                                    0.2, 0,  4, 4, 4, 0.2, 2, 0.01, 0.05};
  const std::vector<double> shrink = {12,  2,    2, 8, 8, 1,   4, 6,    0.01,
                                      0.2, 0.02, 1, 4, 4, 0.2, 2, 0.01, 0.05};
  std::mt19937_64 seeds(base);
  std::size_t checks = 0;
  std::size_t largest = 0;
  for (std::uint64_t i = 0; i < sequences; ++i) {
    const std::uint64_t seed = seeds();
    const typename Kind::map_type::options o = layout_of<Kind>(i);
    typename Kind::map_type m(o);
    model_run<Kind> run(seed, 8000);
    run.set_phases({grow, shrink}, 5000);
    const bool ok = run.run(m, 8 * 5000);  // four grow and four shrink phases
    largest = std::max(largest, run.largest());
    checks += run.checks();
    INFO("shards_per_node " << o.shards_per_node << ", probe " << static_cast<int>(o.probe));
    if (!ok) FAIL(run.report());
  }
  CHECK(checks > sequences * 30000);
  CHECK(largest > 1500);  // the first grow phase alone leaves about 2100 keys (2364-4807 seen)
}

}  // namespace

TEST_CASE("model: random op sequences on uint64 keys and inline values match std::map", "[model]") {
  run_sequences<u64_kind>("model.u64");
}

TEST_CASE("model: random op sequences on std::string keys and values match std::map", "[model]") {
  run_sequences<string_kind>("model.string");
}

TEST_CASE("model: large maps growing and shrinking, uint64 keys and inline values", "[model]") {
  run_large_sequences<u64_kind>("model.large.u64");
}

TEST_CASE("model: large maps growing and shrinking, std::string keys and values", "[model]") {
  run_large_sequences<string_kind>("model.large.string");
}

TEST_CASE("model: random op sequences on counted values; no value outlives its map",
          "[model][memory]") {
  const long base = counted::live().load();
  run_sequences<counted_kind>("model.counted");
  CHECK(counted::live().load() == base);
}
