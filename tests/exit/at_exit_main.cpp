// A map used from static objects' destructors on the main thread, after exit() destroyed the
// main thread's thread_locals, among them its cache of epoch records (detail/epoch.hpp,
// decisions.md D43): each pin then claims a record of its own and gives it back at its
// unpin. Not a Catch2 test, since the checks run after main returns. main returns 3, so the
// process fails unless the destructor below ran its checks and ended it with status 0; a
// failed check exits with 1, and AddressSanitizer reports a use of the destroyed cache.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numamap/numamap.hpp>
#include <string>

namespace {

using map_t = numamap::concurrent_map<std::uint64_t, std::string>;

map_t& the_map() {
  static map_t m;  // constructed at main's first call, before `user`: destroyed after it
  return m;
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "at_exit_main: %s\n", what);
  std::fflush(stderr);
  std::_Exit(1);
}

/// Uses the map from its destructor, after the main thread's thread_locals are gone.
struct at_exit_user {
  at_exit_user() = default;
  at_exit_user(const at_exit_user&) = delete;
  at_exit_user& operator=(const at_exit_user&) = delete;
  at_exit_user(at_exit_user&&) = delete;
  at_exit_user& operator=(at_exit_user&&) = delete;
  ~at_exit_user() {
    try {
      check();
    } catch (...) {
      fail("an operation after exit() threw");
    }
    std::puts("at_exit_main: the map worked from a static destructor");
    std::fflush(stdout);
    std::_Exit(0);  // the only way to status 0 (main returns 3)
  }

  static void check() {
    map_t& m = the_map();
    if (m.load(1) != std::string("one")) fail("the value stored in main is lost");
    for (std::uint64_t i = 0; i < 1000; ++i) m.store(i % 10 + 2, std::to_string(i));
    if (m.load(5) != std::string("993")) fail("a store after exit() is lost");
    if (!m.erase(1) || m.load(1).has_value()) fail("an erase after exit() did not take");
    std::size_t n = 0;
    m.range([&](const std::uint64_t&, const std::string&) { ++n; });
    if (n != 10) fail("range after exit() saw the wrong count");
  }
};

}  // namespace

int main() {
  try {
    the_map().store(1, "one");  // constructs the map, and this thread's record cache
  } catch (...) {
    fail("the first store threw");
  }
  // Constructed after the map, so destroyed before it; both after the thread_locals.
  static at_exit_user user;
  (void)user;
  return 3;
}
