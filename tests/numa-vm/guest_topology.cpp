// tests/numa-vm/guest_topology.cpp — the guest kernel's layout, numamap::topology::system()
// and current_node(), each against the layout QEMU was given.
#include <algorithm>
#include <numamap/topology.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "guest_checks.hpp"

namespace numa_vm {

// The kernel first: proves the harness gave the guest the nodes it meant to, independently of
// numamap (sysfs, and pages bound by a raw mbind landing where move_pages says).
void check_kernel_layout(const layout& want) {
  const std::string online = read_file("/sys/devices/system/node/online");
  const std::string want_online = want.nodes() == 1 ? "0" : cat("0-", want.nodes() - 1);
  NUMA_VM_CHECK_EQ(online, want_online, "/sys/devices/system/node/online");

  std::set<std::string> package_ids;
  for (std::size_t n = 0; n < want.nodes(); ++n) {
    const std::string dir = cat("/sys/devices/system/node/node", n);
    const std::vector<unsigned> cpus = parse_cpu_list(read_file(dir + "/cpulist"));
    NUMA_VM_CHECK(cpus == want.node_cpus[n], dir, "/cpulist = ", list(cpus), ", want ",
                  list(want.node_cpus[n]));
    std::vector<unsigned> row;
    for (const std::string& d : split(read_file(dir + "/distance"), ' '))
      if (!d.empty()) row.push_back(static_cast<unsigned>(std::stoul(d)));
    std::vector<unsigned> want_row(
        want.distances.begin() + static_cast<long>(n * want.nodes()),
        want.distances.begin() + static_cast<long>((n + 1) * want.nodes()));
    NUMA_VM_CHECK(row == want_row, dir, "/distance = ", list(row), ", want ", list(want_row));
    for (unsigned cpu : want.node_cpus[n])
      package_ids.insert(
          read_file(cat("/sys/devices/system/cpu/cpu", cpu, "/topology/physical_package_id")));
  }
  NUMA_VM_CHECK_EQ(package_ids.size(), std::size_t{want.packages},
                   "distinct physical_package_id of the cpus");

  // Raw placement: 16 pages per node under MPOL_BIND, touched, then asked with move_pages.
  const std::size_t len = 16 * page_size();
  for (std::size_t n = 0; n < want.nodes(); ++n) {
    if (want.node_mem_mib[n] == 0) {
      const std::string meminfo = read_file(cat("/sys/devices/system/node/node", n, "/meminfo"));
      NUMA_VM_CHECK(meminfo.find("MemTotal:              0 kB") != std::string::npos, "node ", n,
                    " is memory-less in the kernel too");
      continue;
    }
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    const long rc = raw_mbind(p, len, mpol_bind, {static_cast<unsigned>(n)});
    NUMA_VM_CHECK_EQ(rc, 0L, "raw mbind(MPOL_BIND, node ", n, "), errno ", errno);
    for (std::size_t off = 0; off < len; off += page_size()) static_cast<char*>(p)[off] = 1;
    const auto h = histogram(raw_page_nodes(p, len));
    NUMA_VM_CHECK(
        h.size() == 1 && h.count(static_cast<int>(n)) == 1 && h.at(static_cast<int>(n)) == 16,
        "raw mbind to node ", n, ": move_pages says ", to_string(h));
    munmap(p, len);
  }
}

void check_topology(const layout& want) {
  const numamap::topology& topo = numamap::topology::system();
  std::printf("%s\n", topo.describe().c_str());
  const std::vector<view_node> want_nodes = want.numamap_nodes();
  NUMA_VM_CHECK_EQ(std::string(topo.source()), want.source, "topology::source()");
  NUMA_VM_CHECK_EQ(topo.node_count(), want_nodes.size(), "node_count() (nodes with memory)");
  NUMA_VM_CHECK_EQ(topo.package_count(), want.expected_packages(), "package_count()");
  const std::size_t cpus = want.allowed_cpu_count();
  NUMA_VM_CHECK_EQ(topo.cpu_count(), cpus, "cpu_count()");
  const auto& nodes = topo.nodes();
  NUMA_VM_CHECK_EQ(nodes.size(), want_nodes.size(), "nodes().size()");
  for (std::size_t i = 0; i < std::min(nodes.size(), want_nodes.size()); ++i) {
    const numamap::node_info& n = nodes[i];
    const view_node& w = want_nodes[i];
    NUMA_VM_CHECK_EQ(n.id, w.id, "nodes()[", i, "].id");
    NUMA_VM_CHECK_EQ(n.package, w.package, "nodes()[", i, "].package (", none, ": no package)");
    std::vector<unsigned> got = n.cpus;
    std::sort(got.begin(), got.end());
    NUMA_VM_CHECK(got == w.cpus, "nodes()[", i, "].cpus = {", list(got), "}, want {", list(w.cpus),
                  "}");
    // The kernel keeps some of each node for itself: local memory lies between half the
    // configured size and the configured size.
    const std::uint64_t configured = w.mem_mib << 20;
    NUMA_VM_CHECK(n.local_memory_bytes <= configured && n.local_memory_bytes >= configured / 2,
                  "nodes()[", i, "].local_memory_bytes = ", n.local_memory_bytes, ", configured ",
                  configured);
    for (unsigned cpu : w.cpus)
      NUMA_VM_CHECK_EQ(topo.node_of_cpu(cpu), n.id, "node_of_cpu(", cpu, ")");
  }
  for (const view_node& a : want_nodes)
    for (const view_node& b : want_nodes)
      NUMA_VM_CHECK_EQ(topo.distance(a.id, b.id), want.distance(a.id, b.id), "distance(", a.id,
                       ", ", b.id, ")");
  for (std::size_t n = 0; n < want.nodes(); ++n) {
    if (want.node_mem_mib[n] != 0 && want.node_allowed(n)) continue;
    bool threw = false;
    try {
      (void)topo.distance(static_cast<numamap::node_id>(n), want_nodes.at(0).id);
    } catch (const std::out_of_range&) {
      threw = true;
    }
    NUMA_VM_CHECK(threw, "distance() of ", want.node_mem_mib[n] == 0 ? "memory-less" : "disallowed",
                  " node ", n, " throws std::out_of_range");
  }
  bool threw = false;
  try {
    (void)topo.node_of_cpu(static_cast<unsigned>(cpus + 7));
  } catch (const std::out_of_range&) {
    threw = true;
  }
  NUMA_VM_CHECK(threw, "node_of_cpu(", cpus + 7, ") throws std::out_of_range");
}

// current_node() from a fresh thread pinned to each cpu of each node, checked against the
// kernel's getcpu() on the same thread. A fresh thread has no cached answer to be stale.
void check_current_node(const layout& want) {
  const numamap::topology& topo = numamap::topology::system();
  for (std::size_t n = 0; n < want.nodes(); ++n) {
    for (unsigned cpu : want.allowed_cpus(n)) {
      unsigned got_first = 999;
      unsigned got_later = 999;
      unsigned k_cpu = 999;
      unsigned k_node = 999;
      std::string error;
      std::thread t([&] {
        try {
          pin_to_cpu(cpu);
          got_first = topo.current_node();
          for (int i = 0; i < 10000; ++i) got_later = topo.current_node();
          std::tie(k_cpu, k_node) = raw_getcpu();
        } catch (const std::exception& e) {
          error = e.what();
        }
      });
      t.join();
      NUMA_VM_CHECK(error.empty(), "pinning a thread to cpu ", cpu, " ", error);
      NUMA_VM_CHECK(k_cpu == cpu && k_node == n, "getcpu() on the thread pinned to cpu ", cpu,
                    ": cpu ", k_cpu, " node ", k_node);
      // On a memory-less node numamap names the nearest node with memory, not the kernel's.
      const unsigned want_node = want.numamap_node_of_cpu(cpu);
      NUMA_VM_CHECK_EQ(got_first, want_node, "current_node() first call on cpu ", cpu);
      NUMA_VM_CHECK_EQ(got_later, want_node, "current_node() after 10000 calls on cpu ", cpu);
    }
  }
}

// One thread moved from node to node: after a migration current_node() may answer from its
// per-thread cache for at most current_cpu_refresh_interval - 1 calls (the documented
// staleness bound); from then on it must name the new node, call after call.
void check_current_node_migration(const layout& want) {
  const numamap::topology& topo = numamap::topology::system();
  const unsigned bound = numamap::detail::current_cpu_refresh_interval;
  std::string result;
  std::thread t([&] {
    try {
      for (int round = 0; round < 2; ++round) {
        for (std::size_t n = 0; n < want.nodes(); ++n) {
          if (want.allowed_cpus(n).empty()) continue;
          const unsigned cpu = want.allowed_cpus(n).front();
          const unsigned want_node = want.numamap_node_of_cpu(cpu);
          pin_to_cpu(cpu);
          for (unsigned i = 0; i + 1 < bound; ++i) (void)topo.current_node();
          for (int i = 0; i < 1000; ++i) {
            const unsigned got = topo.current_node();
            if (got != want_node) {
              result += cat("moved to cpu ", cpu, " (node ", want_node, "): call ", bound + i,
                            " after the move said node ", got, "; ");
              break;
            }
          }
        }
      }
    } catch (const std::exception& e) {
      result += e.what();
    }
  });
  t.join();
  NUMA_VM_CHECK(result.empty(), "one thread moved over all nodes twice: current_node() is right ",
                "from call ", bound, " after each move on (", result, ")");
}

}  // namespace numa_vm
