// hwloc and libnuma at run time (SPEC "What it is": optional at build time and at run time).
// numamap opens libhwloc.so.15 and libnuma.so.1 with dlopen (detail/hwloc.hpp,
// detail/libnuma.hpp): a library that cannot be opened is reported naming the file and
// dlerror(), discovery falls back, numa_memory falls back to heap memory. The loaders are
// tested on explicit paths; the process-wide path (NUMAMAP_HWLOC_LIBRARY /
// NUMAMAP_LIBNUMA_LIBRARY read once) is checked by the CTest entry
// unit/runtime_libraries_missing, which runs the hidden test below in a process of its own
// with both variables naming missing files. Also: source() when HWLOC_XMLFILE could not be
// used, and NUMALatency values that do not fit numamap's distances.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "numamap/concurrent_map.hpp"
#include "numamap/memory.hpp"
#include "numamap/topology.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"

namespace {

// A path that exists nowhere: dlopen fails with "No such file or directory".
const std::string missing_library = "/nonexistent/numamap-test/libmissing.so.1";

[[maybe_unused]] bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

[[maybe_unused]] std::string data_path(const std::string& name) {
  const std::string here = __FILE__;
  return here.substr(0, here.rfind("/unit/")) + "/data/" + name;
}

[[maybe_unused]] bool env_set(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): no thread writes it
  return v != nullptr && *v != '\0';
}

#if NUMAMAP_HAVE_HWLOC
// A temporary copy of an XML fixture with one text replaced; removed at scope end.
struct temp_xml {
  std::string path;
  temp_xml(const std::string& fixture, const std::string& from, const std::string& to) {
    std::ifstream in(data_path(fixture));
    REQUIRE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    const std::size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    char name[] = "/tmp/numamap-runtime-libraries-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
    std::ofstream out(path);
    out << text;
    REQUIRE(out.good());
  }
  temp_xml(const temp_xml&) = delete;
  temp_xml& operator=(const temp_xml&) = delete;
  temp_xml(temp_xml&&) = delete;
  temp_xml& operator=(temp_xml&&) = delete;
  ~temp_xml() { std::remove(path.c_str()); }
};
#endif

}  // namespace

#if NUMAMAP_HAVE_HWLOC

TEST_CASE("hwloc: a library file that cannot be opened is reported with its path", "[runtime]") {
  using namespace numamap::detail;
  const hwloc_api api = hwloc_load(missing_library);
  INFO(api.error);
  CHECK_FALSE(api.usable());
  CHECK(api.library == missing_library);
  CHECK(contains(api.error, missing_library));
  CHECK(contains(api.error, "No such file"));  // dlerror()'s text

  // The system topology fails with that reason (topology::system() then tries sysfs).
  raw_topology raw;
  std::string why;
  CHECK_FALSE(hwloc_discover(hwloc_input::system, std::string(), raw, why, api));
  CHECK(why == api.error);

  // Named inputs need hwloc: std::runtime_error naming the library.
  try {
    (void)hwloc_discover(hwloc_input::synthetic, "pack:2 pu:1", raw, why, api);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(contains(e.what(), missing_library));
    CHECK(contains(e.what(), "numamap::topology::synthetic"));
    CHECK(contains(e.what(), hwloc_library_env));
  }
  try {
    (void)hwloc_discover(hwloc_input::xml, data_path("topo-2pack-4node.xml"), raw, why, api);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(contains(e.what(), missing_library));
    CHECK(contains(e.what(), "numamap::topology::from_xml"));
  }
  CHECK_FALSE(hwloc_synthetic_accepted("pack:2 pu:1", api));
}

TEST_CASE("hwloc: a library without hwloc's functions is rejected naming the function",
          "[runtime]") {
  // libc is loaded in every process: dlopen succeeds, dlsym does not.
  const numamap::detail::hwloc_api api = numamap::detail::hwloc_load("libc.so.6");
  INFO(api.error);
  CHECK_FALSE(api.usable());
  CHECK(contains(api.error, "libc.so.6"));
  CHECK(contains(api.error, "hwloc_get_api_version"));
}

TEST_CASE("hwloc: the installed libhwloc.so.15 loads and discovers this machine", "[runtime]") {
  using namespace numamap::detail;
  const hwloc_api api = hwloc_load(hwloc_default_library);
  INFO(api.error);
  REQUIRE(api.usable());
  CHECK(api.distances_get_by_name != nullptr);  // hwloc >= 2.1
  raw_topology raw;
  std::string why;
  REQUIRE(hwloc_discover(hwloc_input::system, std::string(), raw, why, api));
  CHECK_FALSE(raw.nodes.empty());
  CHECK_FALSE(raw.cpus.empty());
  if (!env_set("HWLOC_XMLFILE") && !env_set("HWLOC_SYNTHETIC")) {
    CHECK(std::string(raw.source) == "hwloc");
    CHECK_FALSE(raw.foreign);
  }
  CHECK(hwloc_synthetic_accepted("pack:2 numa:2 pu:1", api));
  CHECK_FALSE(hwloc_synthetic_accepted("pack:2 bogus:3 pu:1", api));
  // The process's library is this one unless the environment names another.
  if (!env_set(hwloc_library_env)) {
    CHECK(hwloc_lib().usable());
    CHECK(hwloc_lib().library == hwloc_default_library);
  }
}

TEST_CASE("HWLOC_XMLFILE that hwloc could not use leaves the machine: source() is hwloc",
          "[runtime]") {
  using namespace numamap::detail;
  if (env_set("HWLOC_SYNTHETIC")) {  // would replace the machine itself
    SUCCEED("HWLOC_SYNTHETIC is set: skipped");
    return;
  }
  const hwloc_api& api = hwloc_lib();
  if (!api.usable()) {  // NUMAMAP_HWLOC_LIBRARY names a missing file: nothing to discover
    SUCCEED(api.error);
    return;
  }
  raw_topology raw;
  std::string why;
  {
    // A missing file: hwloc silently loads this machine (Backend "Linux", thissystem 1).
    numamap_test::scoped_env e("HWLOC_XMLFILE", "/nonexistent.xml");
    REQUIRE(hwloc_discover(hwloc_input::system, std::string(), raw, why, api));
    CHECK(std::string(raw.source) == "hwloc");
    CHECK_FALSE(raw.foreign);
  }
  for (const std::string& file : {data_path("topo-not-xml.xml"), data_path("topo-truncated.xml")}) {
    // A malformed file: with hwloc's built-in XML parser (the libxml2 plugin cannot load into
    // a libhwloc opened RTLD_LOCAL) the load fails and system() goes on to sysfs; with the
    // plugin (a program that links libhwloc itself) hwloc loads this machine. Never "xml".
    INFO("HWLOC_XMLFILE=" << file);
    numamap_test::scoped_env e("HWLOC_XMLFILE", file);
    if (hwloc_discover(hwloc_input::system, std::string(), raw, why, api)) {
      CHECK(std::string(raw.source) == "hwloc");
      CHECK_FALSE(raw.foreign);
    } else {
      CHECK(contains(why, "hwloc_topology_load failed (HWLOC_XMLFILE=\"" + file + "\")"));
      // What system() would do: sysfs, saying why hwloc was passed over.
      const numamap::topology t = topology_access::discover(true, true);
      INFO(t.note());
      CHECK(t.source() == "sysfs");
      CHECK(t.note() == "hwloc: " + why);
    }
  }
  {
    numamap_test::scoped_env e("HWLOC_XMLFILE", data_path("topo-2pack-4node.xml"));
    REQUIRE(hwloc_discover(hwloc_input::system, std::string(), raw, why, api));
    CHECK(std::string(raw.source) == "xml");  // exported from a synthetic topology: still xml
    CHECK(raw.foreign);
    CHECK(raw.nodes.size() == 4);
  }
}

TEST_CASE("NUMALatency values that do not fit an unsigned are not truncated", "[runtime]") {
  using namespace numamap::detail;
  if (!hwloc_lib().usable()) {  // NUMAMAP_HWLOC_LIBRARY names a missing file
    SUCCEED(hwloc_lib().error);
    return;
  }
  // 4294967306 = 2^32 + 10: truncated it would read as 10, a remote node looking local.
  // (hwloc's XML gives each value chunk's length in characters.)
  const temp_xml xml("topo-2pack-4node.xml",
                     "<u64values length=\"30\">10 12 20 22 12 10 22 20 20 22 </u64values>",
                     "<u64values length=\"38\">10 12 20 4294967306 12 10 22 20 20 22 </u64values>");
  // A named input is rejected, naming the file.
  try {
    (void)numamap::topology::from_xml(xml.path);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    INFO(e.what());
    CHECK(contains(e.what(), xml.path));
    CHECK(contains(e.what(), "4294967306"));
  }
  // The system topology (here replaced by the same file) drops the matrix and says why.
  if (env_set("HWLOC_SYNTHETIC")) return;  // the checks above count
  numamap_test::scoped_env e("HWLOC_XMLFILE", xml.path);
  raw_topology raw;
  std::string why;
  REQUIRE(hwloc_discover(hwloc_input::system, std::string(), raw, why));
  CHECK(std::string(raw.source) == "xml");
  CHECK(raw.distances.empty());
  CHECK(contains(why, "distance matrix ignored"));
  CHECK(contains(why, "4294967306"));
  const numamap::topology t = numamap::detail::topology_access::from_raw(raw);
  CHECK(t.distance(0, 3) == 20);  // the defaults: another package
  CHECK(t.distance(0, 1) == 11);  // same package
}

#endif  // NUMAMAP_HAVE_HWLOC

#if NUMAMAP_HAVE_LIBNUMA

TEST_CASE("libnuma: a library file that cannot be opened is reported with its path", "[runtime]") {
  using namespace numamap::detail;
  const libnuma_api api = libnuma_load(missing_library);
  INFO(api.error);
  CHECK_FALSE(api.usable());
  CHECK(api.library == missing_library);
  CHECK(contains(api.error, missing_library));
  CHECK(contains(api.error, "No such file"));
  std::string why;
  CHECK_FALSE(numa_usable(why, api));
  CHECK(why == api.error);

  const libnuma_api libc = libnuma_load("libc.so.6");
  CHECK_FALSE(libc.usable());
  CHECK(contains(libc.error, "numa_available"));
}

TEST_CASE("libnuma: the installed libnuma.so.1 loads", "[runtime]") {
  using namespace numamap::detail;
  const libnuma_api api = libnuma_load(libnuma_default_library);
  INFO(api.error);
  REQUIRE(api.usable());
  std::string why;
  CHECK(numa_usable(why, api) == (api.available() >= 0));
  if (!env_set(libnuma_library_env)) {
    CHECK(libnuma_lib().usable());
    CHECK(libnuma_lib().library == libnuma_default_library);
  }
}

#endif  // NUMAMAP_HAVE_LIBNUMA

// Run by the CTest entry unit/runtime_libraries_missing with NUMAMAP_HWLOC_LIBRARY and
// NUMAMAP_LIBNUMA_LIBRARY naming missing files, in a process of its own: the first use of each
// library reads them. Hidden ([.]) so that plain runs skip it; when the file's tag selects it
// anyway without the variables, it checks only that the map works.
TEST_CASE("with both libraries missing at run time, numamap works on the fallbacks",
          "[.][runtime-missing]") {
  const numamap::topology& t = numamap::topology::system();
  INFO(t.describe());
#if NUMAMAP_HAVE_HWLOC
  if (env_set(numamap::detail::hwloc_library_env)) {
    const std::string path =
        std::getenv(numamap::detail::hwloc_library_env);  // NOLINT(concurrency-mt-unsafe)
    const numamap::detail::hwloc_api& api = numamap::detail::hwloc_lib();
    INFO(api.error);
    REQUIRE_FALSE(api.usable());
    CHECK(api.library == path);
    CHECK(contains(api.error, path));
    if (!numamap::detail::env_flag("NUMAMAP_DISABLE_SYSFS")) {
      CHECK(t.source() == "sysfs");
    } else {
      CHECK(t.source() == "fallback");
    }
    // The topology says why hwloc was passed over: the library file and dlerror().
    CHECK(t.note().rfind("hwloc: numamap: cannot load the hwloc library \"" + path + "\"", 0) == 0);
    CHECK(contains(t.describe(), "note: hwloc: "));
    try {
      (void)numamap::topology::synthetic("pack:2 numa:2 pu:1");
      FAIL("no exception");
    } catch (const std::runtime_error& e) {
      CHECK(contains(e.what(), path));
    }
    try {
      (void)numamap::topology::from_xml(data_path("topo-2pack-4node.xml"));
      FAIL("no exception");
    } catch (const std::runtime_error& e) {
      CHECK(contains(e.what(), path));
    }
  }
#endif
#if NUMAMAP_HAVE_LIBNUMA
  if (env_set(numamap::detail::libnuma_library_env)) {
    const std::string path =
        std::getenv(numamap::detail::libnuma_library_env);  // NOLINT(concurrency-mt-unsafe)
    numamap::numa_memory m;
    INFO(m.note());
    CHECK(m.is_fallback());
    CHECK(contains(m.note(), path));
    const numamap::node_id node = t.nodes().front().id;
    void* p = m.allocate(64, 64, node);
    CHECK(p != nullptr);
    m.deallocate(p, 64, 64, node);
  }
#endif
  numamap::concurrent_map<int, int> map;
  map.store(1, 42);
  const auto v = map.load(1);
  REQUIRE(v);
  CHECK(*v == 42);
  // The map's own view of the fallbacks.
  const numamap::map_stats st = map.stats();
  CHECK(st.topology_source == std::string(t.source()));
#if NUMAMAP_HAVE_LIBNUMA
  if (env_set(numamap::detail::libnuma_library_env)) {
    CHECK(st.memory_resource == "numa_memory(fallback: heap)");
    CHECK(contains(
        st.memory_note,
        std::getenv(numamap::detail::libnuma_library_env)));  // NOLINT(concurrency-mt-unsafe)
  }
#endif
}
