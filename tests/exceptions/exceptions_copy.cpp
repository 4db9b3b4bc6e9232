// SPEC "The map": "An exception from Hash, KeyEqual, a copy, or an allocation leaves the map
// valid, with the operation either done or not done." — here: a value type whose copy
// (construction or assignment) throws on the N-th copy, for N = 1, 2, ... over a fixed
// sequence of every operation. No value may leak on the way (live-instance count).
#include <cstdint>
#include <memory>

#include "exception_harness.hpp"
#include "test_catch.hpp"

using namespace numamap_test;

namespace {
struct faulty_value_kind {
  using key_type = std::uint64_t;
  using value_type = faulty_value;
  using map_type = numamap::concurrent_map<std::uint64_t, faulty_value>;
  static key_type key(std::uint64_t i) { return i; }
  static value_type value(std::uint64_t i) { return faulty_value(i); }
  static std::uint64_t key_id(const key_type& k) { return k; }
  static std::uint64_t value_id(const value_type& v) { return v.get(); }
};
}  // namespace

TEST_CASE("exceptions: a value copy throwing on the N-th copy leaves the map done or not done",
          "[exceptions][copy]") {
  reset_all_faults();
  const long live_before = faulty_value::live().load();
  auto rep = run_exception_sequence<faulty_value_kind>(
      "throwing value copy", [] { return std::make_unique<faulty_value_kind::map_type>(); },
      [](long n) {
        copy_faults().clear_fired();
        copy_faults().arm(n);
      },
      [] { return copy_faults().fired(); }, [] { copy_faults().disarm(); });
  reset_all_faults();
  INFO((rep.failures.empty() ? std::string() : rep.failures.front()));
  CHECK(rep.failures.empty());
  CHECK(rep.throws > 20);
  CHECK(rep.runs == rep.throws + rep.swallowed + 1);
  CHECK(faulty_value::live().load() == live_before);  // no value leaked by a throwing path
}
