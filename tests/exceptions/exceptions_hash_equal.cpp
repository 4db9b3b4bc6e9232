// SPEC "The map": "An exception from Hash, KeyEqual, a copy, or an allocation leaves the map
// valid, with the operation either done or not done." — here: Hash and KeyEqual that throw
// on their N-th call, for N = 1, 2, ... over a fixed sequence of every operation.
#include <cstdint>
#include <string>

#include "exception_harness.hpp"
#include "test_catch.hpp"

using namespace numamap_test;

namespace {

struct faulty_hash_u64 : u64_kind {
  using map_type =
      numamap::concurrent_map<std::uint64_t, std::uint64_t, faulty_hash<std::uint64_t>>;
};
struct faulty_hash_string : string_kind {
  using map_type = numamap::concurrent_map<std::string, std::string, faulty_hash<std::string>>;
};
struct faulty_equal_string : string_kind {
  using map_type = numamap::concurrent_map<std::string, std::string, std::hash<std::string>,
                                           faulty_equal<std::string>>;
};

template <class Kind>
exception_report run_with(fault_point& fp, const char* what) {
  reset_all_faults();
  auto rep = run_exception_sequence<Kind>(
      what, [] { return std::make_unique<typename Kind::map_type>(); },
      [&](long n) {
        fp.clear_fired();
        fp.arm(n);
      },
      [&] { return fp.fired(); }, [&] { fp.disarm(); });
  reset_all_faults();
  return rep;
}

void check(const exception_report& rep) {
  INFO((rep.failures.empty() ? std::string() : rep.failures.front()));
  CHECK(rep.failures.empty());
  CHECK(rep.throws > 50);  // the fault really fired, many times, in many places
  CHECK(rep.runs == rep.throws + rep.swallowed + 1);
}

}  // namespace

TEST_CASE(
    "exceptions: a Hash throwing on its N-th call leaves the map done or not done "
    "(uint64)",
    "[exceptions][hash]") {
  check(run_with<faulty_hash_u64>(hash_faults(), "throwing hash (uint64)"));
}

TEST_CASE(
    "exceptions: a Hash throwing on its N-th call leaves the map done or not done "
    "(string)",
    "[exceptions][hash]") {
  check(run_with<faulty_hash_string>(hash_faults(), "throwing hash (string)"));
}

TEST_CASE("exceptions: a KeyEqual throwing on its N-th call leaves the map done or not done",
          "[exceptions][equal]") {
  auto rep = run_with<faulty_equal_string>(equal_faults(), "throwing equal (string)");
  INFO((rep.failures.empty() ? std::string() : rep.failures.front()));
  CHECK(rep.failures.empty());
  CHECK(rep.throws > 10);
  CHECK(rep.runs == rep.throws + rep.swallowed + 1);
}
