// topology::from_xml — SPEC "Topology": XML written by `lstopo --of xml` (fixtures in
// tests/data, see tests/data/README.md), distances from the NUMALatency matrix, errors naming
// the path.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "numamap/topology.hpp"
#include "test_catch.hpp"

using numamap::topology;

namespace {

std::string data_path(const std::string& name) {
  const std::string here = __FILE__;
  return here.substr(0, here.rfind("/unit/")) + "/data/" + name;
}

bool message_contains(const std::exception& e, const std::string& part) {
  return std::string(e.what()).find(part) != std::string::npos;
}

}  // namespace

#if NUMAMAP_HAVE_HWLOC

TEST_CASE("XML fixture: 2 packages x 2 nodes with a NUMALatency matrix", "[topology]") {
  const topology t = topology::from_xml(data_path("topo-2pack-4node.xml"));
  CHECK(t.source() == "xml");
  REQUIRE(t.node_count() == 4);
  CHECK(t.package_count() == 2);
  CHECK(t.cpu_count() == 8);
  for (unsigned cpu = 0; cpu < 8; ++cpu) CHECK(t.node_of_cpu(cpu) == cpu / 2);
  // The matrix hwloc-annotate added (tests/data/README.md), not the synthesised defaults.
  CHECK(t.distance(0, 0) == 10);
  CHECK(t.distance(0, 1) == 12);
  CHECK(t.distance(0, 2) == 20);
  CHECK(t.distance(0, 3) == 22);
  CHECK(t.distance(3, 0) == 22);
  CHECK(t.distance(2, 3) == 12);
}

TEST_CASE("XML fixture: a CPU-less node and an asymmetric matrix", "[topology]") {
  const topology t = topology::from_xml(data_path("topo-cpuless-node.xml"));
  REQUIRE(t.node_count() == 3);
  CHECK(t.cpu_count() == 4);
  // Nodes P#0 and P#1 sit in the packages, P#2 (no cpus) hangs from the Machine.
  CHECK(t.nodes()[2].cpus.empty());
  CHECK(t.nodes()[2].package == numamap::no_package);
  CHECK(t.node_of_cpu(0) == 0);
  CHECK(t.node_of_cpu(3) == 1);
  CHECK(t.distance(0, 1) == 21);
  CHECK(t.distance(1, 0) == 21);
  CHECK(t.distance(0, 2) != t.distance(2, 0));  // asymmetric as written
  CHECK(t.distance(2, 2) == 10);
}

TEST_CASE("XML round trip: a synthetic topology and its lstopo XML agree", "[topology]") {
  const topology s = topology::synthetic("pack:2 numa:2 core:2 pu:1");
  const topology x = topology::from_xml(data_path("topo-2pack-4node.xml"));
  REQUIRE(s.node_count() == x.node_count());
  CHECK(s.package_count() == x.package_count());
  CHECK(s.cpu_count() == x.cpu_count());
  for (std::size_t i = 0; i < s.node_count(); ++i) {
    CHECK(s.nodes()[i].id == x.nodes()[i].id);
    CHECK(s.nodes()[i].cpus == x.nodes()[i].cpus);
    CHECK(s.nodes()[i].package == x.nodes()[i].package);
    CHECK(s.nodes()[i].local_memory_bytes == x.nodes()[i].local_memory_bytes);
  }
}

TEST_CASE("a missing XML file throws runtime_error naming the path", "[topology]") {
  const std::string path = data_path("does-not-exist.xml");
  try {
    (void)topology::from_xml(path);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(message_contains(e, path));
  }
}

TEST_CASE("a broken XML file throws invalid_argument naming the path", "[topology]") {
  for (const char* name : {"topo-truncated.xml", "topo-not-xml.xml"}) {
    const std::string path = data_path(name);
    INFO(path);
    try {
      (void)topology::from_xml(path);
      FAIL("no exception");
    } catch (const std::invalid_argument& e) {
      CHECK(message_contains(e, path));
    }
  }
}

TEST_CASE("an XML file that lists a cpu twice throws invalid_argument naming the path and cpu",
          "[topology]") {
  // topo-2pack-4node.xml with its PU os_index 1 renamed 0: one cpu in two places.
  std::string xml;
  {
    std::ifstream in(data_path("topo-2pack-4node.xml"));
    std::ostringstream ss;
    ss << in.rdbuf();
    xml = ss.str();
  }
  const std::string from = R"(type="PU" os_index="1")";
  const std::size_t at = xml.find(from);
  REQUIRE(at != std::string::npos);
  xml.replace(at, from.size(), R"(type="PU" os_index="0")");
  char path[] = "/tmp/numamap-dup-pu-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path, std::ios::trunc) << xml;
  try {
    (void)topology::from_xml(path);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(message_contains(e, path));
    CHECK(message_contains(e, "cpu 0 is listed twice"));
  }
  std::remove(path);
}

#else  // !NUMAMAP_HAVE_HWLOC

TEST_CASE("without hwloc, from_xml() throws runtime_error saying hwloc is missing", "[topology]") {
  const std::string path = data_path("topo-2pack-4node.xml");
  try {
    (void)topology::from_xml(path);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(message_contains(e, "without hwloc"));
    CHECK(message_contains(e, path));
  }
}

#endif
