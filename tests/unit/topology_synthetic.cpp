// topology::synthetic — SPEC "Topology": hwloc synthetic descriptions, node/cpu/package counts,
// node_of_cpu as a partition onto the nearest node with memory, synthesised distances, errors.
#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "numamap/topology.hpp"
#include "test_catch.hpp"

using numamap::topology;

namespace {

bool message_contains(const std::exception& e, const std::string& part) {
  return std::string(e.what()).find(part) != std::string::npos;
}

#if NUMAMAP_HAVE_HWLOC
// Every cpu of the topology appears in exactly one node's list, and node_of_cpu agrees.
void check_partition(const topology& t) {
  std::set<unsigned> seen;
  std::size_t total = 0;
  for (const auto& n : t.nodes()) {
    for (unsigned c : n.cpus) {
      CHECK(seen.insert(c).second);
      CHECK(t.node_of_cpu(c) == n.id);
      ++total;
    }
  }
  CHECK(total == t.cpu_count());
}

void check_distances(const topology& t) {
  for (const auto& a : t.nodes()) {
    CHECK(t.distance(a.id, a.id) == 10);
    for (const auto& b : t.nodes()) {
      if (a.id != b.id) CHECK(t.distance(a.id, b.id) > 10);
    }
  }
}
#endif

}  // namespace

#if NUMAMAP_HAVE_HWLOC

TEST_CASE("synthetic pack:2 numa:2 core:2 pu:1 has 4 nodes, 2 packages, 8 cpus", "[topology]") {
  const topology t = topology::synthetic("pack:2 numa:2 core:2 pu:1");
  CHECK(t.source() == "synthetic");
  REQUIRE(t.node_count() == 4);
  CHECK(t.package_count() == 2);
  CHECK(t.cpu_count() == 8);
  for (unsigned cpu = 0; cpu < 8; ++cpu) CHECK(t.node_of_cpu(cpu) == cpu / 2);
  for (unsigned i = 0; i < 4; ++i) {
    const auto& n = t.nodes()[i];
    CHECK(n.id == i);
    CHECK(n.package == i / 2);
    CHECK(n.cpus == std::vector<unsigned>{2 * i, 2 * i + 1});
    CHECK(n.local_memory_bytes == (std::uint64_t{1} << 30));  // hwloc's default per numa:N node
  }
  check_partition(t);
  check_distances(t);
  // Synthesised distances (docs/topology.md): 11 within a package, 20 across.
  CHECK(t.distance(0, 1) == 11);
  CHECK(t.distance(2, 3) == 11);
  CHECK(t.distance(0, 2) == 20);
  CHECK(t.distance(3, 1) == 20);
  for (const auto& a : t.nodes()) {
    for (const auto& b : t.nodes()) CHECK(t.distance(a.id, b.id) == t.distance(b.id, a.id));
  }
}

TEST_CASE("synthetic topology with a non-power-of-two node count", "[topology]") {
  const topology t = topology::synthetic("pack:3 numa:1 core:3 pu:1");
  CHECK(t.node_count() == 3);
  CHECK(t.package_count() == 3);
  CHECK(t.cpu_count() == 9);
  for (unsigned cpu = 0; cpu < 9; ++cpu) CHECK(t.node_of_cpu(cpu) == cpu / 3);
  check_partition(t);
  check_distances(t);

  const topology u = topology::synthetic("pack:1 numa:3 core:1 pu:2");
  CHECK(u.node_count() == 3);
  CHECK(u.package_count() == 1);
  CHECK(u.distance(0, 2) == 11);
}

TEST_CASE("a CPU-less node gets no cpus and never wins node_of_cpu", "[topology]") {
  // NUMA P#2 hangs from the Machine: its hwloc cpuset covers every PU, yet each cpu's nearest
  // memory is its package's node.
  const topology t = topology::synthetic("[numa] pack:2 [numa] core:2 pu:1");
  REQUIRE(t.node_count() == 3);
  CHECK(t.cpu_count() == 4);
  CHECK(t.node_of_cpu(0) == 0);
  CHECK(t.node_of_cpu(1) == 0);
  CHECK(t.node_of_cpu(2) == 1);
  CHECK(t.node_of_cpu(3) == 1);
  CHECK(t.nodes()[2].id == 2);
  CHECK(t.nodes()[2].cpus.empty());
  CHECK(t.nodes()[2].package == numamap::no_package);
  CHECK(t.package_count() == 2);
  CHECK(t.distance(0, 2) == 20);
  check_partition(t);
  CHECK(t.describe().find("node 2 cpus:\n") != std::string::npos);
}

TEST_CASE("two nodes with the same cpuset: the first memory child wins", "[topology]") {
  const topology t = topology::synthetic("pack:2 [numa] [numa] core:2 pu:1");
  REQUIRE(t.node_count() == 4);
  check_partition(t);
  std::size_t with_cpus = 0;
  for (const auto& n : t.nodes()) with_cpus += n.cpus.empty() ? 0 : 1;
  CHECK(with_cpus == 2);
  CHECK(t.node_of_cpu(0) != t.node_of_cpu(2));
}

TEST_CASE("synthetic OS indexes are kept (not logical ones)", "[topology]") {
  const topology t =
      topology::synthetic("pack:2(indexes=1,0) numa:1(indexes=3,1) core:2 pu:1(indexes=4,5,6,7)");
  REQUIRE(t.node_count() == 2);
  CHECK(t.nodes()[0].id == 1);
  CHECK(t.nodes()[1].id == 3);
  // PU P#4,5 are in the first package, whose node is P#3.
  CHECK(t.node_of_cpu(4) == 3);
  CHECK(t.node_of_cpu(5) == 3);
  CHECK(t.node_of_cpu(6) == 1);
  CHECK(t.node_of_cpu(7) == 1);
  CHECK_THROWS_AS(t.node_of_cpu(0), std::out_of_range);
  CHECK_THROWS_AS(t.distance(0, 1), std::out_of_range);
  check_partition(t);
}

TEST_CASE("malformed synthetic descriptions throw invalid_argument naming the input",
          "[topology]") {
  const char* bad[] = {"pack:2 bogus:3 pu:1", "pack:2 core:x pu:1", "pack:2 core:2",
                       "pack:2 numa:2 core:2 pu:1 pu:1", "   "};
  for (const char* d : bad) {
    INFO(d);
    try {
      (void)topology::synthetic(d);
      FAIL("no exception for \"" << d << "\"");
    } catch (const std::invalid_argument& e) {
      CHECK(message_contains(e, std::string("\"") + d + "\""));
    }
  }
  try {
    (void)topology::synthetic("pack:2 bogus:3 pu:1");
  } catch (const std::invalid_argument& e) {
    CHECK(message_contains(e, "'bogus:3'"));
  }
}

TEST_CASE("synthetic descriptions past the id bounds are refused before hwloc builds them",
          "[topology]") {
  // hwloc ran for minutes on the first, and allocated gigabytes for the second.
  const std::pair<const char*, const char*> cases[] = {
      {"pack:99999999 pu:1", "more than 1048576 cpus"},
      {"pack:1024 core:1024 pu:2", "more than 1048576 cpus"},
      {"pack:1 numa:1 pu:2(indexes=0,4000000000)", "has index 4000000000"},
      {"pack:1 numa:1(indexes=99999999999999999999) pu:2", "has index past 2^40"},
  };
  for (const auto& [desc, what] : cases) {
    INFO(desc);
    try {
      (void)topology::synthetic(desc);
      FAIL("no exception");
    } catch (const std::invalid_argument& e) {
      CHECK(message_contains(e, std::string("\"") + desc + "\""));
      CHECK(message_contains(e, what));
    }
  }
  // Within the bounds: 1024 x 1024 cpus are allowed (not built here), indexes up to 1048575.
  const topology t = topology::synthetic("pack:1 numa:1 pu:2(indexes=0,1048575)");
  CHECK(t.node_of_cpu(1048575) == 0U);
}

TEST_CASE("unknown cpus and nodes throw out_of_range naming them", "[topology]") {
  const topology t = topology::synthetic("pack:2 numa:2 core:2 pu:1");
  try {
    (void)t.node_of_cpu(8);
    FAIL("no exception");
  } catch (const std::out_of_range& e) {
    CHECK(message_contains(e, "cpu 8"));
  }
  try {
    (void)t.distance(0, 7);
    FAIL("no exception");
  } catch (const std::out_of_range& e) {
    CHECK(message_contains(e, "node 7"));
  }
  CHECK_THROWS_AS(t.distance(4, 0), std::out_of_range);
  CHECK_THROWS_AS(t.node(4), std::out_of_range);
  CHECK(t.node(3).id == 3);
  CHECK_FALSE(t.has_node(4));
}

TEST_CASE("current_node on a synthetic topology maps the real cpu modulo cpu_count", "[topology]") {
  const topology t = topology::synthetic("pack:2 numa:2 core:2 pu:1");
  numamap::detail::refresh_current_cpu();
  const unsigned cpu = numamap::detail::read_current_cpu();
  const numamap::node_id n = t.current_node();
  CHECK(n < 4);
  // Within the staleness bound the answer is the one for the cpu read above, unless the
  // thread migrated meanwhile; both cpus then map through the same rule.
  const unsigned again = numamap::detail::cached_current_cpu();
  CHECK((n == t.node_of_cpu(cpu % 8) || n == t.node_of_cpu(again % 8)));
}

TEST_CASE("describe() reads like numactl --hardware", "[topology]") {
  const topology t = topology::synthetic("pack:2 numa:2 core:2 pu:1");
  const std::string d = t.describe();
  CHECK(d.find("available: 4 nodes (0,1,2,3)") != std::string::npos);
  CHECK(d.find("node 0 cpus: 0 1") != std::string::npos);
  CHECK(d.find("node 3 cpus: 6 7") != std::string::npos);
  CHECK(d.find("node 1 size: 1024 MB") != std::string::npos);
  CHECK(d.find("node distances:") != std::string::npos);
  CHECK(d.find("source: synthetic") != std::string::npos);
  CHECK(t.note().empty());  // only system() passes backends over
  CHECK(d.find("note:") == std::string::npos);
}

TEST_CASE("topologies are values: copies compare equal in every observable", "[topology]") {
  const topology t = topology::synthetic("pack:2 numa:2 core:2 pu:1");
  const topology c = t;  // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(c.node_count() == t.node_count());
  CHECK(c.describe() == t.describe());
  CHECK(c.node_of_cpu(5) == 2);
}

#else  // !NUMAMAP_HAVE_HWLOC

TEST_CASE("without hwloc, synthetic() throws runtime_error saying hwloc is missing", "[topology]") {
  try {
    (void)topology::synthetic("pack:2 numa:2 core:2 pu:1");
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(message_contains(e, "without hwloc"));
    CHECK(message_contains(e, "pack:2 numa:2 core:2 pu:1"));
  }
}

#endif
