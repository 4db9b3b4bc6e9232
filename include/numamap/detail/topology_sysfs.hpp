// numamap/detail/topology_sysfs.hpp — topology discovery from Linux sysfs, used when hwloc is
// not compiled in or fails (or NUMAMAP_DISABLE_HWLOC=1), and the single-node fallback used
// when sysfs is unreadable too.
//
// What is read (root = /sys/devices/system):
//   node/online                         the online nodes (not node/possible)
//   node/nodeN/cpulist                  the cpus of node N
//   node/nodeN/meminfo                  "Node N MemTotal: ... kB"
//   node/nodeN/distance                 one row; the columns are the *online* nodes in order
//   cpu/cpuC/topology/physical_package_id
// Restrictions of the process (when `restrict_to_process`): nodes outside
// /proc/self/status Mems_allowed_list (the cpuset's mems) and cpus outside the cgroup's
// effective cpuset are left out. Thread affinity (taskset, sched_setaffinity) is *not* a
// restriction: it is per thread and may change; the topology describes what the process may use.
// Nodes without memory or not allowed are dropped, and their cpus go to the nearest remaining
// node by distance (ties: lowest id), as the kernel's cpu_to_mem and hwloc 2 do.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "topology_raw.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

inline bool read_text_file(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

/// Parses a Linux cpu/node list such as "0-3,8,10-11\n": comma-separated decimal ids and
/// ranges, whitespace only around the whole list. Returns false on malformed input: an empty
/// item, a sign, a space inside, a range that runs backwards or spans more than 2^20 ids, an
/// id above 2^32 - 2 (~0U means "none" to the topology).
inline bool parse_id_list(const std::string& text, std::vector<unsigned>& out) {
  out.clear();
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  std::size_t pos = 0;
  std::size_t end = text.size();
  while (pos < end && is_space(text[pos])) ++pos;
  while (end > pos && is_space(text[end - 1])) --end;
  if (pos == end) return true;
  constexpr std::uint64_t max_id = 0xFFFFFFFEULL;
  // One decimal id at pos; false without a digit or past max_id.
  const auto number = [&](std::uint64_t& v) {
    const std::size_t start = pos;
    v = 0;
    while (pos < end && text[pos] >= '0' && text[pos] <= '9') {
      v = v * 10 + static_cast<std::uint64_t>(text[pos] - '0');
      if (v > max_id) return false;
      ++pos;
    }
    return pos != start;
  };
  for (;;) {
    std::uint64_t lo = 0;
    if (!number(lo)) return false;
    std::uint64_t hi = lo;
    if (pos < end && text[pos] == '-') {
      ++pos;
      if (!number(hi) || hi < lo || hi - lo > (std::uint64_t{1} << 20U)) return false;
    }
    for (std::uint64_t v = lo; v <= hi; ++v) out.push_back(static_cast<unsigned>(v));
    if (pos == end) break;
    if (text[pos] != ',') return false;
    ++pos;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return true;
}

/// Parses a node's distance row ("10 21 21\n"): decimal numbers from 10 to 255 (the ACPI
/// SLIT's range; 255: unreachable). False on anything else: a sign, a letter, a value out of
/// range ("-5" read as an unsigned was 4294967291).
inline bool parse_distances(const std::string& text, std::vector<unsigned>& out) {
  out.clear();
  std::istringstream in(text);
  for (std::string word; in >> word;) {
    if (word.size() > 3 || word.find_first_not_of("0123456789") != std::string::npos) return false;
    const auto v = static_cast<unsigned>(std::stoul(word));
    if (v < 10 || v > 255) return false;
    out.push_back(v);
  }
  return true;
}

/// Reads "Node N <key>: <value> kB" from a node's meminfo; nullopt if absent.
inline std::optional<std::uint64_t> read_node_meminfo(const std::string& node_dir,
                                                      const std::string& key) {
  std::ifstream in(node_dir + "/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t k = line.find(key + ":");
    if (k == std::string::npos) continue;
    std::istringstream rest(line.substr(k + key.size() + 1));
    std::uint64_t v = 0;
    std::string unit;
    if (!(rest >> v)) return std::nullopt;
    rest >> unit;
    if (unit != "kB") return v;
    // Saturates: a value past 2^54 kB is no real node's, and must not wrap to 0 (a node
    // without memory is dropped).
    constexpr std::uint64_t max_kb = ~std::uint64_t{0} / 1024;
    return v > max_kb ? ~std::uint64_t{0} : v * 1024;
  }
  return std::nullopt;
}

/// The value of a "Key:\tvalue" line of /proc/self/status.
inline std::optional<std::string> proc_status_field(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) return line.substr(key.size() + 1);
  }
  return std::nullopt;
}

/// The cgroup's effective cpuset (v2, then v1), or nullopt when it cannot be read.
inline std::optional<std::vector<unsigned>> cgroup_effective_cpus() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  std::vector<std::string> candidates;
  while (std::getline(in, line)) {
    const std::size_t a = line.find(':');
    const std::size_t b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (line.compare(0, a, "0") == 0 && controllers.empty()) {
      candidates.push_back("/sys/fs/cgroup" + path + "/cpuset.cpus.effective");
    } else if (controllers.find("cpuset") != std::string::npos) {
      candidates.push_back("/sys/fs/cgroup/cpuset" + path + "/cpuset.effective_cpus");
    }
  }
  for (const std::string& c : candidates) {
    std::string text;
    std::vector<unsigned> cpus;
    if (read_text_file(c, text) && parse_id_list(text, cpus) && !cpus.empty()) return cpus;
  }
  return std::nullopt;
}

/// Reads the topology below `root` (normally "/sys/devices/system"). Returns nullopt, with the
/// reason in `why`, when sysfs cannot describe the machine.
inline std::optional<raw_topology> sysfs_discover(const std::string& root, bool restrict_to_process,
                                                  std::string* why = nullptr) {
  auto fail = [&](const std::string& reason) -> std::optional<raw_topology> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  std::string text;
  std::vector<unsigned> online;
  if (!read_text_file(root + "/node/online", text))
    return fail("cannot read " + root + "/node/online");
  if (!parse_id_list(text, online) || online.empty())
    return fail("malformed " + root + "/node/online: '" + text + "'");

  std::vector<unsigned> allowed_mems;
  bool have_allowed_mems = false;
  std::optional<std::vector<unsigned>> allowed_cpus;
  if (restrict_to_process) {
    if (auto f = proc_status_field("Mems_allowed_list")) {
      have_allowed_mems = parse_id_list(*f, allowed_mems) && !allowed_mems.empty();
    }
    allowed_cpus = cgroup_effective_cpus();
  }

  struct sys_node {
    node_id id = 0;
    std::vector<unsigned> cpus;
    std::uint64_t memory = 0;
    std::vector<unsigned> distance;  // by index in `online`
    bool keep = true;
  };
  std::vector<sys_node> all;
  for (unsigned id : online) {
    sys_node n;
    n.id = id;
    const std::string dir = root + "/node/node" + std::to_string(id);
    if (!read_text_file(dir + "/cpulist", text)) return fail("cannot read " + dir + "/cpulist");
    if (!parse_id_list(text, n.cpus)) {
      std::string why = "malformed ";
      why += dir;
      why += "/cpulist: '";
      why += text;
      why += "'";
      return fail(why);
    }
    n.memory = read_node_meminfo(dir, "MemTotal").value_or(0);
    // A row that is malformed or of the wrong length is dropped, as if absent: the node
    // keeps the default distances (topology.md), rather than the machine losing its nodes.
    if (!read_text_file(dir + "/distance", text) || !parse_distances(text, n.distance) ||
        n.distance.size() != online.size()) {
      n.distance.clear();
    }
    if (n.memory == 0) n.keep = false;
    if (have_allowed_mems && !std::binary_search(allowed_mems.begin(), allowed_mems.end(), id))
      n.keep = false;
    all.push_back(std::move(n));
  }
  if (std::none_of(all.begin(), all.end(), [](const sys_node& n) { return n.keep; })) {
    return fail("no online node with memory allowed to the process under " + root + "/node");
  }

  // Packages: dense indexes in the order of the first cpu seen (hwloc's logical order).
  std::map<unsigned, unsigned> cpu_package;  // cpu -> logical package
  {
    std::map<long, unsigned> physical_to_logical;
    std::vector<unsigned> every_cpu;
    for (const sys_node& n : all) every_cpu.insert(every_cpu.end(), n.cpus.begin(), n.cpus.end());
    std::sort(every_cpu.begin(), every_cpu.end());
    for (unsigned cpu : every_cpu) {
      long phys = 0;
      std::string t;
      if (read_text_file(root + "/cpu/cpu" + std::to_string(cpu) + "/topology/physical_package_id",
                         t)) {
        try {
          phys = std::stol(t);
        } catch (const std::exception&) {
          phys = 0;
        }
      }
      auto it = physical_to_logical.find(phys);
      if (it == physical_to_logical.end()) {
        it = physical_to_logical.emplace(phys, static_cast<unsigned>(physical_to_logical.size()))
                 .first;
      }
      cpu_package[cpu] = it->second;
    }
  }

  raw_topology raw;
  raw.source = "sysfs";
  auto index_of = [&](node_id id) {
    return static_cast<std::size_t>(std::find(online.begin(), online.end(), id) - online.begin());
  };
  for (const sys_node& n : all) {
    if (!n.keep) continue;
    raw_node r;
    r.id = n.id;
    r.memory = n.memory;
    r.package = n.cpus.empty() ? no_package : cpu_package[n.cpus.front()];
    raw.nodes.push_back(r);
  }
  for (const sys_node& n : all) {
    for (unsigned cpu : n.cpus) {
      if (allowed_cpus && !std::binary_search(allowed_cpus->begin(), allowed_cpus->end(), cpu))
        continue;
      node_id target = n.id;
      if (!n.keep) {  // the nearest kept node by this node's distance row; ties: lowest id
        unsigned best = ~0U;
        bool found = false;
        for (const raw_node& k : raw.nodes) {
          const unsigned d = n.distance.empty() ? (k.package == cpu_package[cpu] ? 11U : 20U)
                                                : n.distance[index_of(k.id)];
          if (!found || d < best) {
            best = d;
            target = k.id;
            found = true;
          }
        }
      }
      raw.cpus.emplace_back(cpu, target);
    }
  }
  for (const sys_node& from : all) {
    if (!from.keep || from.distance.empty()) continue;
    for (const sys_node& to : all) {
      if (to.keep) raw.distances.push_back({from.id, to.id, from.distance[index_of(to.id)]});
    }
  }
  return raw;
}

/// One node 0 holding every online cpu and all memory: the last resort.
inline raw_topology fallback_discover() {
  raw_topology raw;
  raw.source = "fallback";
  raw_node n;
  n.id = 0;
  n.package = 0;
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  n.memory = pages > 0 && page > 0
                 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page)
                 : 0;
  raw.nodes.push_back(n);
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  const unsigned count = online > 0 ? static_cast<unsigned>(online) : 1U;
  for (unsigned c = 0; c < count; ++c) raw.cpus.emplace_back(c, 0U);
  return raw;
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
