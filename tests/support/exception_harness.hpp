// tests/support/exception_harness.hpp — "an exception ... leaves the map valid, with the
// operation either done or not done" (SPEC "The map"), checked by brute force.
//
// A fixed sequence of operations (every operation of the map, with load bursts that promote
// the dirty map, and a clear) runs against the map and a model. For N = 1, 2, ... a fault
// point is armed to throw on its N-th call. When an operation throws, the map must equal the
// model either before or after that operation — checked on every key, through range, load
// and size — and then the rest of the sequence must run with correct results (the map stays
// usable). N grows until the sequence completes without the fault firing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "map_kinds.hpp"
#include "test_types.hpp"

namespace numamap_test {

enum class xop : std::uint8_t {
  load,
  store,
  load_or_store,
  load_and_delete,
  erase,
  exchange,
  compare_and_swap,
  compare_and_delete,
  range,
  clear,
  load_or_compute,
  visit,
  contains,
  size,
  load_burst,
  count_
};

inline const char* xop_name(xop o) {
  static const char* const names[] = {
      "load",     "store",    "load_or_store",    "load_and_delete",
      "erase",    "exchange", "compare_and_swap", "compare_and_delete",
      "range",    "clear",    "load_or_compute",  "visit",
      "contains", "size",     "load x8"};
  return names[static_cast<int>(o)];
}

struct xstep {
  xop what;
  std::uint64_t key, a, b;
};

using xmodel = std::map<std::uint64_t, std::uint64_t>;

/// The fixed op sequence: deterministic, every op, over `keys` keys.
inline std::vector<xstep> exception_sequence(std::size_t n, std::uint64_t keys) {
  std::mt19937_64 rng(12345);
  std::vector<xstep> out;
  xmodel model;
  for (std::size_t i = 0; i < n; ++i) {
    xop o = static_cast<xop>(rng() % static_cast<unsigned>(xop::count_));
    if (o == xop::clear && i != n / 2) o = xop::store;  // exactly one clear, in the middle
    xstep s{o, rng() % keys, rng() % 4, rng() % 4};
    if (i == n / 2) s.what = xop::clear;
    out.push_back(s);
  }
  return out;
}

inline std::string xmodel_str(const xmodel& m) { return to_string(m); }

/// Applies `s` to the model; returns the result the map must give, as text.
inline std::string model_apply(xmodel& m, const xstep& s) {
  auto it = m.find(s.key);
  const bool has = it != m.end();
  const std::uint64_t cur = has ? it->second : 0;
  auto opt = [&] { return has ? std::to_string(cur) : std::string("nullopt"); };
  switch (s.what) {
    case xop::load:
    case xop::visit:
      return opt();
    case xop::load_burst:
      return opt();
    case xop::store:
      m[s.key] = s.a;
      return "";
    case xop::load_or_store: {
      std::string r = has ? std::to_string(cur) + ",true" : std::to_string(s.a) + ",false";
      if (!has) m[s.key] = s.a;
      return r;
    }
    case xop::load_and_delete: {
      std::string r = opt();
      m.erase(s.key);
      return r;
    }
    case xop::erase:
      m.erase(s.key);
      return has ? "true" : "false";
    case xop::exchange: {
      std::string r = opt();
      m[s.key] = s.a;
      return r;
    }
    case xop::compare_and_swap:
      if (has && cur == s.a) {
        m[s.key] = s.b;
        return "true";
      }
      return "false";
    case xop::compare_and_delete:
      if (has && cur == s.a) {
        m.erase(s.key);
        return "true";
      }
      return "false";
    case xop::range:
      return xmodel_str(m);
    case xop::clear:
      m.clear();
      return "";
    case xop::load_or_compute: {
      std::string r = has ? std::to_string(cur) + ",true,0" : std::to_string(s.a) + ",false,1";
      if (!has) m[s.key] = s.a;
      return r;
    }
    case xop::contains:
      return has ? "true" : "false";
    case xop::size:
      return std::to_string(m.size());
    case xop::count_:
      break;
  }
  return "?";
}

/// Runs `s` on the map; returns its result as text (same format as model_apply).
template <class Kind, class Map>
std::string map_apply(Map& m, const xstep& s) {
  using value_t = typename Kind::value_type;
  const auto key = Kind::key(s.key);
  auto opt = [](const std::optional<value_t>& v) {
    return v ? std::to_string(Kind::value_id(*v)) : std::string("nullopt");
  };
  switch (s.what) {
    case xop::load:
      return opt(m.load(key));
    case xop::load_burst: {
      std::string r;
      for (int i = 0; i < 8; ++i) {
        std::string x = opt(m.load(key));
        if (i > 0 && x != r) return "inconsistent burst: " + r + " then " + x;
        r = x;
      }
      return r;
    }
    case xop::visit: {
      std::optional<std::uint64_t> seen;
      const bool found = m.visit(key, [&](const value_t& v) { seen = Kind::value_id(v); });
      if (found != seen.has_value()) return "visit: found/called disagree";
      return seen ? std::to_string(*seen) : std::string("nullopt");
    }
    case xop::store:
      m.store(key, Kind::value(s.a));
      return "";
    case xop::load_or_store: {
      auto r = m.load_or_store(key, Kind::value(s.a));
      return std::to_string(Kind::value_id(r.first)) + (r.second ? ",true" : ",false");
    }
    case xop::load_and_delete:
      return opt(m.load_and_delete(key));
    case xop::erase:
      return m.erase(key) ? "true" : "false";
    case xop::exchange:
      return opt(m.exchange(key, Kind::value(s.a)));
    case xop::compare_and_swap:
      return m.compare_and_swap(key, Kind::value(s.a), Kind::value(s.b)) ? "true" : "false";
    case xop::compare_and_delete:
      return m.compare_and_delete(key, Kind::value(s.a)) ? "true" : "false";
    case xop::range:
      return xmodel_str(read_back<Kind>(m));
    case xop::clear:
      m.clear();
      return "";
    case xop::load_or_compute: {
      int calls = 0;
      auto r = m.load_or_compute(key, [&] {
        ++calls;
        return Kind::value(s.a);
      });
      return std::to_string(Kind::value_id(r.first)) + (r.second ? ",true," : ",false,") +
             std::to_string(calls);
    }
    case xop::contains:
      return m.contains(key) ? "true" : "false";
    case xop::size:
      return std::to_string(m.size());
    case xop::count_:
      break;
  }
  return "?";
}

/// The whole map as the model would print it, read through range, load (every key of the
/// key space), contains and size — with every fault point disarmed.
template <class Kind, class Map>
std::string map_state(const Map& m, std::uint64_t keys) {
  std::size_t dup = 0;
  xmodel by_range = read_back<Kind>(m, &dup);
  xmodel by_load;
  std::string problems;
  for (std::uint64_t k = 0; k < keys; ++k) {
    auto v = m.load(Kind::key(k));
    if (v) by_load[k] = Kind::value_id(*v);
    if (m.contains(Kind::key(k)) != v.has_value())
      problems += " contains/load disagree on key " + std::to_string(k) + ";";
  }
  if (dup != 0) problems += " range visited a key twice;";
  if (by_range != by_load)
    problems +=
        " range gives " + xmodel_str(by_range) + " but load gives " + xmodel_str(by_load) + ";";
  if (m.size() != by_load.size())
    problems +=
        " size() " + std::to_string(m.size()) + " but " + std::to_string(by_load.size()) + " keys;";
  return xmodel_str(by_load) + problems;
}

/// Result of one exception run.
struct exception_report {
  std::size_t runs = 0;       // values of N tried
  std::size_t throws = 0;     // runs in which the fault fired
  std::size_t done = 0;       // ... and the operation was found done
  std::size_t not_done = 0;   // ... and found not done
  std::size_t swallowed = 0;  // runs in which the fault fired but no operation threw
  std::vector<std::string> failures;
};

/// For N = 1, 2, ... : `make_map()` builds a fresh map (faults disarmed), `arm(N)` arms the
/// fault point, the fixed sequence runs; see the file comment. `fired()` says whether the
/// fault point fired; `disarm()` turns it off. `after_run(map)` may check more (e.g. memory).
template <class Kind, class MakeMap, class Arm, class Fired, class Disarm>
exception_report run_exception_sequence(const char* what, MakeMap make_map, Arm arm, Fired fired,
                                        Disarm disarm, std::size_t ops = 90,
                                        std::uint64_t keys = 12, std::size_t max_n = 20000) {
  exception_report rep;
  const std::vector<xstep> seq = exception_sequence(ops, keys);
  for (std::size_t n = 1; n <= max_n; ++n) {
    ++rep.runs;
    bool any_fired = false;
    {
      disarm();
      auto map_ptr = make_map();
      auto& m = *map_ptr;
      xmodel model;
      // A few keys to start with, in the read snapshot.
      for (std::uint64_t k = 0; k < keys; k += 3) {
        m.store(Kind::key(k), Kind::value(k % 4));
        model[k] = k % 4;
      }
      for (int r = 0; r < 3; ++r)
        for (std::uint64_t k = 0; k < keys; ++k) (void)m.load(Kind::key(k));
      arm(static_cast<long>(n));
      for (std::size_t i = 0; i < seq.size(); ++i) {
        const xstep& s = seq[i];
        xmodel after = model;
        const std::string want = model_apply(after, s);
        std::string got;
        bool threw = false;
        std::string exc;
        try {
          got = map_apply<Kind>(m, s);
        } catch (const injected_fault& e) {
          threw = true;
          exc = e.what();
        } catch (const std::bad_alloc&) {
          threw = true;
          exc = "std::bad_alloc";
        } catch (const std::exception& e) {
          rep.failures.push_back(std::string(what) + " N=" + std::to_string(n) + " op #" +
                                 std::to_string(i) + " " + xop_name(s.what) +
                                 ": unexpected exception " + e.what());
          return rep;
        }
        if (threw) {
          disarm();
          if (!fired()) {
            rep.failures.push_back(std::string(what) + " N=" + std::to_string(n) +
                                   ": exception without the fault firing: " + exc);
            return rep;
          }
          any_fired = true;
          ++rep.throws;
          const std::string state = map_state<Kind>(m, keys);
          if (state == xmodel_str(after)) {
            ++rep.done;
            model = after;
          } else if (state == xmodel_str(model)) {
            ++rep.not_done;
          } else {
            std::ostringstream os;
            os << what << " N=" << n << ": op #" << i << ' ' << xop_name(s.what) << " key=" << s.key
               << " a=" << s.a << " b=" << s.b << " threw (" << exc
               << ") and left the map neither done nor not done:\n  map:      " << state
               << "\n  not done: " << xmodel_str(model) << "\n  done:     " << xmodel_str(after);
            rep.failures.push_back(os.str());
            return rep;
          }
        } else {
          if (got != want) {
            std::ostringstream os;
            os << what << " N=" << n << ": op #" << i << ' ' << xop_name(s.what) << " key=" << s.key
               << " a=" << s.a << " b=" << s.b << " gave '" << got << "', model expects '" << want
               << "' (fault fired earlier in this run: " << (any_fired ? "yes" : "no")
               << "); model before: " << xmodel_str(model);
            rep.failures.push_back(os.str());
            return rep;
          }
          model = after;
        }
      }
      disarm();
      if (!any_fired && fired()) {
        // The map caught the fault itself (e.g. a fallback when memory runs out) and went on:
        // fine as long as every result was right, which the loop above checked.
        any_fired = true;
        ++rep.swallowed;
      }
      const std::string final_state = map_state<Kind>(m, keys);
      if (final_state != xmodel_str(model)) {
        rep.failures.push_back(std::string(what) + " N=" + std::to_string(n) + ": final state " +
                               final_state + ", model " + xmodel_str(model));
        return rep;
      }
    }  // the map is destroyed here: leaks show in the resource's ledger / LeakSanitizer
    if (!any_fired) return rep;  // N passed the number of calls the sequence makes
  }
  rep.failures.push_back(std::string(what) + ": N reached its cap without the sequence finishing");
  return rep;
}

}  // namespace numamap_test
