// SPEC "The map": "Where Hash and KeyEqual both declare is_transparent, load, contains, visit,
// erase and load_and_delete accept any key type they can hash and compare (e.g.
// std::string_view for std::string keys)."
#include <cstdint>
#include <string>
#include <string_view>

#include "map_kinds.hpp"
#include "test_catch.hpp"

using numamap_test::string_equal;
using numamap_test::string_hash;
using numamap_test::tracked_equal;
using numamap_test::tracked_hash;
using numamap_test::tracked_string;

namespace {
using sv_map = numamap::concurrent_map<std::string, std::string, string_hash, string_equal>;

std::string long_key(int i) { return "a-key-long-enough-to-live-on-the-heap-" + std::to_string(i); }
}  // namespace

TEST_CASE("map heterogeneous lookup: std::string keys found by std::string_view",
          "[conformance][map.heterogeneous]") {
  sv_map m;
  for (int i = 0; i < 100; ++i) m.store(long_key(i), "v" + std::to_string(i));
  for (int round = 0; round < 3; ++round) {  // dirty map first, then the promoted snapshot
    for (int i = 0; i < 100; ++i) {
      const std::string k = long_key(i);
      const std::string_view kv(k);
      auto v = m.load(kv);
      REQUIRE(v.has_value());
      REQUIRE(*v == "v" + std::to_string(i));
      REQUIRE(m.contains(kv));
      std::string seen;
      REQUIRE(m.visit(kv, [&](const std::string& s) { seen = s; }));
      REQUIRE(seen == "v" + std::to_string(i));
    }
  }
  const std::string absent = long_key(1000);
  CHECK_FALSE(m.load(std::string_view(absent)).has_value());
  CHECK_FALSE(m.contains(std::string_view(absent)));
  CHECK_FALSE(m.visit(std::string_view(absent), [](const std::string&) {}));
  CHECK_FALSE(m.erase(std::string_view(absent)));
  CHECK_FALSE(m.load_and_delete(std::string_view(absent)).has_value());

  const std::string k3 = long_key(3);
  const std::string k4 = long_key(4);
  CHECK(m.erase(std::string_view(k3)));
  CHECK_FALSE(m.contains(std::string_view(k3)));
  CHECK_FALSE(m.contains(k3));
  auto old = m.load_and_delete(std::string_view(k4));
  REQUIRE(old.has_value());
  CHECK(*old == "v4");
  CHECK_FALSE(m.load(k4).has_value());
  CHECK(m.size() == 98);
  // A view into a buffer that is not a std::string at all.
  const char raw[] = "a-key-long-enough-to-live-on-the-heap-7xyz";
  CHECK(m.load(std::string_view(raw, sizeof(raw) - 4)) == std::optional<std::string>("v7"));
}

TEST_CASE("map heterogeneous lookup builds no Key (load, contains, visit, erase, load_and_delete)",
          "[conformance][map.heterogeneous]") {
  numamap::concurrent_map<tracked_string, std::uint64_t, tracked_hash, tracked_equal> m;
  std::vector<std::string> names;
  names.reserve(64);
  for (int i = 0; i < 64; ++i) names.push_back(long_key(i));
  for (int i = 0; i < 64; ++i) m.store(tracked_string(names[i]), static_cast<std::uint64_t>(i));
  // Promote everything with view lookups.
  for (int round = 0; round < 8; ++round)
    for (int i = 0; i < 64; ++i) REQUIRE(m.load(std::string_view(names[i])).has_value());

  const long before = tracked_string::constructions().load();
  std::uint64_t sum = 0;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 64; ++i) {
      const std::string_view k(names[i]);
      sum += *m.load(k);
      REQUIRE(m.contains(k));
      REQUIRE(m.visit(k, [&](std::uint64_t v) { sum += v; }));
    }
    const std::string missing = long_key(500 + round);
    REQUIRE_FALSE(m.contains(std::string_view(missing)));
  }
  CHECK(m.erase(std::string_view(names[0])));
  CHECK(m.load_and_delete(std::string_view(names[1])) == std::optional<std::uint64_t>(1));
  CHECK_FALSE(m.erase(std::string_view(names[0])));
  CHECK(tracked_string::constructions().load() == before);
  CHECK(sum == std::uint64_t{4} * 2 * (63 * 64 / 2));
  CHECK(m.size() == 62);
}

TEST_CASE("map heterogeneous lookup: string literals and char arrays, inline and boxed values",
          "[conformance][map.heterogeneous]") {
  // A literal deduces K = const char[N]: short ones are small and trivially copyable, which
  // once sent them down a by-value path that decayed the array and did not compile for
  // inline values (int). Both value kinds, short and long literals, every transparent call.
  numamap::concurrent_map<std::string, int, string_hash, string_equal> inline_values;
  numamap::concurrent_map<std::string, std::string, string_hash, string_equal> boxed_values;
  inline_values.store("alpha", 1);
  inline_values.store("a-key-longer-than-sixteen-bytes", 2);
  boxed_values.store("alpha", "one");
  boxed_values.store("a-key-longer-than-sixteen-bytes", "two");
  for (int round = 0; round < 3; ++round) {  // dirty map first, then the promoted snapshot
    CHECK(inline_values.load("alpha") == std::optional<int>(1));
    CHECK(inline_values.load("a-key-longer-than-sixteen-bytes") == std::optional<int>(2));
    CHECK_FALSE(inline_values.load("beta").has_value());
    CHECK(inline_values.contains("alpha"));
    CHECK(boxed_values.load("alpha") == std::optional<std::string>("one"));
    CHECK(boxed_values.load("a-key-longer-than-sixteen-bytes") ==
          std::optional<std::string>("two"));
    CHECK_FALSE(boxed_values.contains("beta"));
    int seen = 0;
    CHECK(inline_values.visit("alpha", [&](int v) { seen = v; }));
    CHECK(seen == 1);
  }
  char buffer[8] = {'a', 'l', 'p', 'h', 'a', '\0', '\0', '\0'};  // a mutable array, not a literal
  CHECK(inline_values.load(buffer) == std::optional<int>(1));
  CHECK(inline_values.contains(buffer));
  CHECK(inline_values.load_and_delete("alpha") == std::optional<int>(1));
  CHECK_FALSE(inline_values.erase("alpha"));
  CHECK(boxed_values.erase("alpha"));
  CHECK(boxed_values.load_and_delete("a-key-longer-than-sixteen-bytes") ==
        std::optional<std::string>("two"));
  CHECK(inline_values.size() == 1);
  CHECK(boxed_values.empty());
}
