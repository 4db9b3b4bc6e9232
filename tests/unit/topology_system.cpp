// topology::system() and the discovery paths (SPEC "Topology"): hwloc / sysfs / fallback agree
// with /sys, the sysfs backend on a fixture tree, current_node() of pinned threads, and the
// environment switches documented in docs/topology.md.
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "numamap/topology.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"

using numamap::topology;
using numamap::detail::topology_access;

using numamap_test::scoped_env;

namespace {

std::string data_path(const std::string& name) {
  const std::string here = __FILE__;
  return here.substr(0, here.rfind("/unit/")) + "/data/" + name;
}

std::vector<unsigned> read_list(const std::string& path) {
  std::string text;
  std::vector<unsigned> ids;
  REQUIRE(numamap::detail::read_text_file(path, text));
  REQUIRE(numamap::detail::parse_id_list(text, ids));
  return ids;
}

std::vector<unsigned> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  std::vector<unsigned> cpus;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

bool pin_to(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

}  // namespace

TEST_CASE("parse_id_list reads Linux cpu and node lists", "[topology]") {
  std::vector<unsigned> ids;
  CHECK(numamap::detail::parse_id_list("0-3,8,10-11\n", ids));
  CHECK(ids == std::vector<unsigned>{0, 1, 2, 3, 8, 10, 11});
  CHECK(numamap::detail::parse_id_list("\n", ids));
  CHECK(ids.empty());
  CHECK(numamap::detail::parse_id_list("5", ids));
  CHECK(ids == std::vector<unsigned>{5});
  CHECK_FALSE(numamap::detail::parse_id_list("1,,2", ids));
  CHECK_FALSE(numamap::detail::parse_id_list("3-1", ids));
  CHECK_FALSE(numamap::detail::parse_id_list("a-b", ids));
}

TEST_CASE("parse_id_list rejects what it would misread", "[topology]") {
  std::vector<unsigned> ids;
  // Whitespace around the list only: "1 2" was read as cpu 12.
  CHECK(numamap::detail::parse_id_list(" 0-2 \n", ids));
  CHECK(ids == std::vector<unsigned>{0, 1, 2});
  CHECK_FALSE(numamap::detail::parse_id_list("1 2", ids));
  CHECK_FALSE(numamap::detail::parse_id_list("0, 1", ids));
  // Ids past 2^32 - 2 were truncated: "4294967296" was cpu 0.
  CHECK(numamap::detail::parse_id_list("4294967294", ids));
  CHECK(ids == std::vector<unsigned>{4294967294U});
  CHECK_FALSE(numamap::detail::parse_id_list("4294967295", ids));
  CHECK_FALSE(numamap::detail::parse_id_list("4294967296", ids));
  CHECK_FALSE(numamap::detail::parse_id_list("99999999999", ids));
  // Signs, stray characters, open and reversed ranges.
  for (const char* bad : {"+3", "3-+5", "-1", "0-", "0,", ",0", "0x10", "0-3x", "2-1", "0--3"}) {
    CAPTURE(bad);
    CHECK_FALSE(numamap::detail::parse_id_list(bad, ids));
  }
}

TEST_CASE("parse_distances reads a node's distance row and rejects the rest", "[topology]") {
  std::vector<unsigned> d;
  CHECK(numamap::detail::parse_distances("10 21 255\n", d));
  CHECK(d == std::vector<unsigned>{10, 21, 255});
  for (const char* bad : {"10 -5", "10 +5", "10 9", "10 256", "10 1e3", "10 x"}) {
    CAPTURE(bad);
    CHECK_FALSE(numamap::detail::parse_distances(bad, d));
  }
}

TEST_CASE("system() is discovered once and agrees with /sys/devices/system/node", "[topology]") {
  const topology& t = topology::system();
  CHECK(&t == &topology::system());
  REQUIRE(t.node_count() >= 1);
  REQUIRE(t.cpu_count() >= 1);
  CHECK(t.package_count() >= 1);
  // No thread of this test writes the environment.
  const char* synthetic_env = std::getenv("HWLOC_SYNTHETIC");  // NOLINT(concurrency-mt-unsafe)
  const char* xml_env = std::getenv("HWLOC_XMLFILE");          // NOLINT(concurrency-mt-unsafe)
  const bool env_substituted = synthetic_env != nullptr || xml_env != nullptr;
  if (!env_substituted && !numamap::detail::env_flag("NUMAMAP_DISABLE_HWLOC")) {
    CHECK(t.source() == (NUMAMAP_HAVE_HWLOC ? "hwloc" : "sysfs"));
  }
  if (t.source() == "hwloc" || t.source() == "sysfs") {
    const std::vector<unsigned> online = read_list("/sys/devices/system/node/online");
    for (const auto& n : t.nodes()) {
      INFO("node " << n.id);
      CHECK(std::find(online.begin(), online.end(), n.id) != online.end());
      const std::vector<unsigned> listed =
          read_list("/sys/devices/system/node/node" + std::to_string(n.id) + "/cpulist");
      for (unsigned c : n.cpus) CHECK(std::find(listed.begin(), listed.end(), c) != listed.end());
      CHECK(n.local_memory_bytes > 0);
      CHECK(t.distance(n.id, n.id) == 10);
    }
    // Every cpu this thread may run on is in the topology.
    for (unsigned c : allowed_cpus()) CHECK_NOTHROW(t.node_of_cpu(c));
  }
}

TEST_CASE("the sysfs and fallback paths can be forced and agree with system()", "[topology]") {
  const topology sys = topology_access::discover(false, true);
  CHECK(sys.source() == "sysfs");
  const topology fb = topology_access::discover(false, false);
  CHECK(fb.source() == "fallback");
  REQUIRE(fb.node_count() == 1);
  CHECK(fb.nodes()[0].id == 0);
  CHECK(fb.cpu_count() == static_cast<std::size_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  CHECK(fb.distance(0, 0) == 10);
  CHECK(fb.current_node() == 0);

  // note() names each backend passed over, in order, and describe() shows it.
#if NUMAMAP_HAVE_HWLOC
  const std::string hwloc_note = "hwloc: not tried (NUMAMAP_DISABLE_HWLOC)";
#else
  const std::string hwloc_note = "hwloc: numamap was built without hwloc (NUMAMAP_HAVE_HWLOC=0)";
#endif
  CHECK(sys.note() == hwloc_note);
  CHECK(fb.note() == hwloc_note + "; sysfs: not tried (NUMAMAP_DISABLE_SYSFS)");
  CHECK(fb.describe().find("\nnote: " + fb.note() + "\n") != std::string::npos);

  const topology& t = topology::system();
  if (t.source() == "hwloc") {
    CHECK(t.note().empty());  // the first backend: nothing passed over
    CHECK(t.describe().find("note:") == std::string::npos);
    REQUIRE(sys.node_count() == t.node_count());
    for (std::size_t i = 0; i < t.node_count(); ++i) {
      CHECK(sys.nodes()[i].id == t.nodes()[i].id);
      CHECK(sys.nodes()[i].cpus == t.nodes()[i].cpus);
      for (std::size_t j = 0; j < t.node_count(); ++j) {
        CHECK(sys.distance(t.nodes()[i].id, t.nodes()[j].id) ==
              t.distance(t.nodes()[i].id, t.nodes()[j].id));
      }
    }
  }
}

TEST_CASE("NUMAMAP_DISABLE_HWLOC / NUMAMAP_DISABLE_SYSFS select the discovery path", "[topology]") {
  // topology::system() reads these once per process; discover() shows what they select.
  scoped_env a("NUMAMAP_DISABLE_HWLOC", "1");
  CHECK(numamap::detail::env_flag("NUMAMAP_DISABLE_HWLOC"));
  scoped_env b("NUMAMAP_DISABLE_SYSFS", "0");
  CHECK_FALSE(numamap::detail::env_flag("NUMAMAP_DISABLE_SYSFS"));
}

// Run by the CTest entries unit/topology_disable_hwloc (NUMAMAP_DISABLE_HWLOC=1) and
// unit/topology_disable_both (and NUMAMAP_DISABLE_SYSFS=1), each in a process of its own:
// system() reads the switches at its first call. Hidden ([.]) from plain runs.
TEST_CASE("NUMAMAP_DISABLE_HWLOC and NUMAMAP_DISABLE_SYSFS choose system()'s backend",
          "[.][discovery-env]") {
  if (!numamap::detail::env_flag("NUMAMAP_DISABLE_HWLOC")) {
    SUCCEED("NUMAMAP_DISABLE_HWLOC is not set: run through CTest");
    return;
  }
  const topology& t = topology::system();
  INFO(t.describe());
#if NUMAMAP_HAVE_HWLOC
  const std::string hwloc_note = "hwloc: not tried (NUMAMAP_DISABLE_HWLOC)";
#else
  const std::string hwloc_note = "hwloc: numamap was built without hwloc (NUMAMAP_HAVE_HWLOC=0)";
#endif
  if (numamap::detail::env_flag("NUMAMAP_DISABLE_SYSFS")) {
    CHECK(t.source() == "fallback");
    CHECK(t.note() == hwloc_note + "; sysfs: not tried (NUMAMAP_DISABLE_SYSFS)");
    REQUIRE(t.node_count() == 1);
    CHECK(t.cpu_count() == static_cast<std::size_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  } else {
    CHECK(t.source() == "sysfs");
    CHECK(t.note() == hwloc_note);
    const std::vector<unsigned> online = read_list("/sys/devices/system/node/online");
    for (const auto& n : t.nodes()) {
      CHECK(std::find(online.begin(), online.end(), n.id) != online.end());
    }
  }
  CHECK(&t == &topology::system());
}

#if NUMAMAP_HAVE_HWLOC
TEST_CASE("HWLOC_SYNTHETIC and HWLOC_XMLFILE are reported by source()", "[topology]") {
  {
    scoped_env e("HWLOC_SYNTHETIC", "pack:2 numa:2 core:1 pu:1");
    const topology t = topology_access::discover(true, true);
    CHECK(t.source() == "synthetic");
    CHECK(t.node_count() == 4);
    CHECK(t.current_node() < 4);
  }
  {
    scoped_env e("HWLOC_XMLFILE", data_path("topo-2pack-4node.xml"));
    const topology t = topology_access::discover(true, true);
    CHECK(t.source() == "xml");
    CHECK(t.node_count() == 4);
    CHECK(t.distance(0, 3) == 22);
  }
}
#endif

TEST_CASE("sysfs backend on a fixture tree: gaps, memory-less node, packages, distances",
          "[topology]") {
  const topology t = topology_access::from_sysfs(data_path("sysfs-3node"));
  CHECK(t.source() == "sysfs");
  REQUIRE(t.node_count() == 2);  // node 3 has no memory
  CHECK(t.nodes()[0].id == 0);
  CHECK(t.nodes()[1].id == 2);
  CHECK_FALSE(t.has_node(3));
  CHECK(t.nodes()[0].cpus == std::vector<unsigned>{0, 1, 4, 5});  // 4,5 from node 3 (15 < 25)
  CHECK(t.nodes()[1].cpus == std::vector<unsigned>{2, 3});
  CHECK(t.nodes()[0].local_memory_bytes == (std::uint64_t{1} << 30));
  CHECK(t.nodes()[1].local_memory_bytes == (std::uint64_t{2} << 30));
  CHECK(t.package_count() == 2);
  CHECK(t.nodes()[0].package == 0);
  CHECK(t.nodes()[1].package == 1);
  CHECK(t.distance(0, 2) == 20);
  CHECK(t.distance(2, 0) == 20);
  CHECK(t.distance(2, 2) == 10);
  CHECK(t.cpu_count() == 6);
  CHECK(t.node_of_cpu(5) == 0);
  CHECK_THROWS_AS(t.node_of_cpu(6), std::out_of_range);
}

TEST_CASE("sysfs backend on a missing tree throws naming the path", "[topology]") {
  const std::string root = data_path("no-such-sysfs");
  try {
    (void)topology_access::from_sysfs(root);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(root) != std::string::npos);
  }
}

namespace {
/// A copy of the sysfs-3node fixture in a fresh directory, with one file replaced.
class edited_fixture {
 public:
  edited_fixture(const std::string& file, const std::string& text) {
    char tmpl[] = "/tmp/numamap-sysfs-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root_ = tmpl;
    std::filesystem::copy(data_path("sysfs-3node"), root_,
                          std::filesystem::copy_options::recursive);
    std::ofstream(root_ + "/" + file, std::ios::trunc) << text;
  }
  edited_fixture(const edited_fixture&) = delete;
  edited_fixture& operator=(const edited_fixture&) = delete;
  edited_fixture(edited_fixture&&) = delete;
  edited_fixture& operator=(edited_fixture&&) = delete;
  ~edited_fixture() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  const std::string& root() const noexcept { return root_; }

 private:
  std::string root_;
};
}  // namespace

TEST_CASE("sysfs backend: a cpu in two nodes, a bad distance row, a huge MemTotal", "[topology]") {
  SECTION("a cpu listed by two nodes is rejected, naming it") {
    const edited_fixture f("node/node2/cpulist", "1-3\n");  // cpu 1 is node 0's too
    try {
      (void)topology_access::from_sysfs(f.root());
      FAIL("no exception");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find("cpu 1 is listed twice") != std::string::npos);
    }
  }
  SECTION("a malformed distance row is dropped, not misread") {
    const edited_fixture f("node/node0/distance", "10 -5 15\n");  // "-5" was 4294967291
    const topology t = topology_access::from_sysfs(f.root());
    CHECK(t.distance(0, 2) == 20);  // the default for nodes of two packages
    CHECK(t.distance(2, 0) == 20);  // node 2's own row, as in the file
    CHECK(t.nodes()[0].cpus == std::vector<unsigned>{0, 1, 4, 5});  // node 3's cpus: nearest
  }
  SECTION("a MemTotal past 2^54 kB saturates instead of wrapping to 0") {
    const edited_fixture f("node/node2/meminfo", "Node 2 MemTotal: 18014398509481984 kB\n");
    const topology t = topology_access::from_sysfs(f.root());
    REQUIRE(t.has_node(2));  // a node with 0 bytes would have been dropped
    CHECK(t.nodes()[1].local_memory_bytes == ~std::uint64_t{0});
  }
  SECTION("a malformed cpulist names the file") {
    const edited_fixture f("node/node2/cpulist", "2 3\n");
    try {
      (void)topology_access::from_sysfs(f.root());
      FAIL("no exception");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()).find("node2/cpulist") != std::string::npos);
    }
  }
}

TEST_CASE("ids no machine has are rejected before the lookup tables are sized by them",
          "[topology]") {
  // A node id of 4e9 sized a table of 4e9 entries (16 GiB) before.
  numamap::detail::raw_topology raw;
  raw.nodes.push_back({4000000000U, 0, 1});
  raw.cpus.emplace_back(0, 4000000000U);
  try {
    (void)topology_access::from_raw(raw);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("node id 4000000000") != std::string::npos);
  }
  raw.nodes = {{0, 0, 1}};
  raw.cpus = {{4000000000U, 0}};
  try {
    (void)topology_access::from_raw(raw);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("cpu id 4000000000") != std::string::npos);
  }
  // The largest ids allowed still work.
  raw.nodes = {{65535, 0, 1}};
  raw.cpus = {{1048575, 65535}};
  const topology t = topology_access::from_raw(raw);
  CHECK(t.node_of_cpu(1048575) == 65535U);
  // A cpu listed twice, even for the same node.
  raw.nodes = {{0, 0, 1}};
  raw.cpus = {{3, 0}, {3, 0}};
  CHECK_THROWS_AS(topology_access::from_raw(raw), std::invalid_argument);
}

TEST_CASE("inconsistent raw topologies are rejected", "[topology]") {
  numamap::detail::raw_topology raw;
  raw.nodes.push_back({0, 0, 1});
  raw.cpus.emplace_back(0, 5);  // node 5 does not exist
  CHECK_THROWS_AS(topology_access::from_raw(raw), std::invalid_argument);
  raw.cpus.clear();
  raw.nodes.push_back({0, 0, 1});  // twice
  CHECK_THROWS_AS(topology_access::from_raw(raw), std::invalid_argument);
  raw.nodes.clear();
  CHECK_THROWS_AS(topology_access::from_raw(raw), std::invalid_argument);
}

TEST_CASE("current_node() is the node of the cpu a pinned thread runs on", "[topology]") {
  const topology& t = topology::system();
  const std::vector<unsigned> cpus = allowed_cpus();
  REQUIRE(!cpus.empty());
  for (unsigned cpu : cpus) {
    if (cpu >= t.cpu_count() && t.source() == "fallback") continue;  // fallback: 0..n-1 only
    INFO("cpu " << cpu);
    bool pinned = false;
    unsigned seen_cpu = ~0U;
    numamap::node_id seen_node = ~0U;
    std::thread th([&] {
      pinned = pin_to(cpu);
      numamap::detail::refresh_current_cpu();
      seen_cpu = numamap::detail::read_current_cpu();
      // Every answer within and beyond one refresh interval is the pinned cpu's node.
      seen_node = t.current_node();
      for (unsigned i = 0; i < 2 * numamap::detail::current_cpu_refresh_interval; ++i) {
        if (t.current_node() != seen_node) seen_node = ~0U;
      }
    });
    th.join();
    REQUIRE(pinned);
    CHECK(seen_cpu == cpu);
    CHECK(seen_node == t.node_of_cpu(cpu));
  }
}

TEST_CASE("the cached cpu is stale for at most the refresh interval", "[topology]") {
  const std::vector<unsigned> cpus = allowed_cpus();
  const unsigned first = cpus.front();
  const unsigned last = cpus.back();
  unsigned calls_until_fresh = ~0U;
  bool pinned = false;
  std::thread th([&] {
    pinned = pin_to(first);
    numamap::detail::refresh_current_cpu();
    (void)numamap::detail::cached_current_cpu();  // caches `first`
    pinned = pinned && pin_to(last);
    for (unsigned i = 1; i <= numamap::detail::current_cpu_refresh_interval + 1; ++i) {
      if (numamap::detail::cached_current_cpu() == last) {
        calls_until_fresh = i;
        break;
      }
    }
  });
  th.join();
  REQUIRE(pinned);
  CHECK(calls_until_fresh <= numamap::detail::current_cpu_refresh_interval);
}

TEST_CASE("a memory-less node is dropped; its cpus go to the nearest node with memory",
          "[topology]") {
  // The layout of the numa-vm "odd-nodes" guest, where hwloc 2.9 reports node 1 with
  // local_memory 0: node 0 {0,1}, node 1 {2} without memory, node 2 {3}, node 3 no cpus.
  numamap::detail::raw_topology raw;
  raw.source = "test";
  raw.nodes = {{0, 0, 512}, {1, 1, 0}, {2, 1, 384}, {3, numamap::no_package, 256}};
  raw.cpus = {{0, 0}, {1, 0}, {2, 1}, {3, 2}};
  const unsigned m[4][4] = {{10, 21, 21, 31}, {21, 10, 11, 31}, {21, 11, 10, 31}, {31, 31, 31, 10}};
  for (unsigned i = 0; i < 4; ++i) {
    for (unsigned j = 0; j < 4; ++j) raw.distances.push_back({i, j, m[i][j]});
  }
  const topology t = topology_access::from_raw(raw);
  REQUIRE(t.node_count() == 3);
  CHECK_FALSE(t.has_node(1));
  CHECK_THROWS_AS(t.distance(1, 0), std::out_of_range);
  CHECK(t.node_of_cpu(2) == 2);  // distance 11 to node 2, 21 to node 0
  CHECK(t.node(2).cpus == std::vector<unsigned>{2, 3});
  CHECK(t.node(3).cpus.empty());
  CHECK(t.distance(0, 3) == 31);

  // Without distances: the node of the same package wins, else the lowest id.
  raw.distances.clear();
  const topology u = topology_access::from_raw(raw);
  CHECK(u.node_of_cpu(2) == 2);
  raw.nodes[1].package = 7;
  CHECK(topology_access::from_raw(raw).node_of_cpu(2) == 0);

  // When no node reports memory (sizes unknown), nothing is dropped.
  for (auto& n : raw.nodes) n.memory = 0;
  CHECK(topology_access::from_raw(raw).node_count() == 4);
}
