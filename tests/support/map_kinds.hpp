// tests/support/map_kinds.hpp — key/value "kinds" the map suites run over, and helpers that
// read a whole map back for comparison with a model.
//
// A kind maps small integers to keys and values and back, so one test body covers inline
// values (std::uint64_t) and out-of-line ones (std::string, long enough to defeat the small
// string optimisation), and a failure can print plain numbers.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <utility>

#include "numamap/numamap.hpp"
#include "test_types.hpp"

namespace numamap_test {

/// uint64 keys and values: values live inline in the entry's atomic slot.
struct u64_kind {
  using key_type = std::uint64_t;
  using value_type = std::uint64_t;
  using map_type = numamap::concurrent_map<key_type, value_type>;
  static constexpr const char* name = "uint64->uint64";
  static key_type key(std::uint64_t i) { return i; }
  static value_type value(std::uint64_t i) { return i; }
  static std::uint64_t key_id(const key_type& k) { return k; }
  static std::uint64_t value_id(const value_type& v) { return v; }
};

/// std::string keys and values: values live out of line and are replaced by new nodes.
struct string_kind {
  using key_type = std::string;
  using value_type = std::string;
  using map_type = numamap::concurrent_map<key_type, value_type>;
  static constexpr const char* name = "string->string";
  static key_type key(std::uint64_t i) { return "key-" + std::to_string(i); }
  static value_type value(std::uint64_t i) {
    return "value-that-is-longer-than-sso-" + std::to_string(i);
  }
  static std::uint64_t key_id(const key_type& k) {
    return std::strtoull(k.c_str() + 4, nullptr, 10);
  }
  static std::uint64_t value_id(const value_type& v) {
    return std::strtoull(v.c_str() + 30, nullptr, 10);
  }
};

/// uint64 keys, live-counted values.
struct counted_kind {
  using key_type = std::uint64_t;
  using value_type = counted;
  using map_type = numamap::concurrent_map<key_type, value_type>;
  static constexpr const char* name = "uint64->counted";
  static key_type key(std::uint64_t i) { return i; }
  static value_type value(std::uint64_t i) { return counted(i); }
  static std::uint64_t key_id(const key_type& k) { return k; }
  static std::uint64_t value_id(const value_type& v) { return v.get(); }
};

/// Reads a quiescent map back through range() into a std::map of ids. `duplicates` counts
/// keys that range() visited more than once (must stay 0).
template <class Kind, class Map>
std::map<std::uint64_t, std::uint64_t> read_back(const Map& m, std::size_t* duplicates = nullptr) {
  std::map<std::uint64_t, std::uint64_t> out;
  std::size_t dup = 0;
  m.range([&](const typename Kind::key_type& k, const typename Kind::value_type& v) {
    if (!out.emplace(Kind::key_id(k), Kind::value_id(v)).second) ++dup;
  });
  if (duplicates != nullptr) *duplicates = dup;
  return out;
}

/// "{1:2, 3:4}" for messages.
inline std::string to_string(const std::map<std::uint64_t, std::uint64_t>& m) {
  std::ostringstream os;
  os << '{';
  bool first = true;
  for (const auto& kv : m) {
    if (!first) os << ", ";
    first = false;
    os << kv.first << ':' << kv.second;
  }
  os << '}';
  return os.str();
}

/// Sum of stats().shards[i].entries.
template <class Map>
std::size_t stats_entries(const Map& m) {
  std::size_t n = 0;
  for (const auto& s : m.stats().shards) n += s.entries;
  return n;
}

/// Sum of stats().shards[i].unlocked_inserts: new keys claimed without the shard's lock.
template <class Map>
std::uint64_t stats_unlocked_inserts(const Map& m) {
  std::uint64_t n = 0;
  for (const auto& s : m.stats().shards) n += s.unlocked_inserts;
  return n;
}

/// Loads k until the read path's fast attempt answers it from the read snapshot (a
/// promotion moved it there); false if that never happens.
template <class Map, class K>
bool until_fast_hit(const Map& m, const K& k) {
  std::uint64_t w = 0;
  for (int i = 0; i < 10000; ++i) {
    if (numamap::detail::map_test_access::try_lookup(m, k, w) == numamap::detail::read_outcome::hit)
      return true;
    (void)m.load(k);
  }
  return false;
}

}  // namespace numamap_test
