// numamap/topology.hpp — the machine's NUMA layout: nodes, their cpus, packages, memory and
// distances, discovered once; and the node of the calling thread, cheaply.
//
// Sources, tried in this order by topology::system() (docs/topology.md):
//   "hwloc"     hwloc 2 (when NUMAMAP_HAVE_HWLOC, unless NUMAMAP_DISABLE_HWLOC=1);
//               "synthetic" or "xml" when HWLOC_SYNTHETIC / HWLOC_XMLFILE replaced the machine
//   "sysfs"     /sys/devices/system/node (unless NUMAMAP_DISABLE_SYSFS=1)
//   "fallback"  one node 0 with every online cpu
// note() says why a backend was passed over (a missing libhwloc.so.15, an unreadable sysfs).
// topology::synthetic() and topology::from_xml() need hwloc; without it they throw
// std::runtime_error.
//
// Definitions:
// - node ids and cpu numbers are the OS numbers (numactl, /sys, sched_getcpu); packages are
//   dense logical indexes (no_package for a node in no package, e.g. CPU-less far memory).
// - Only nodes with memory that the process may use (cgroup cpuset / mems_allowed) count;
//   cpus are the online cpus the process's cgroup allows.
// - node_info::cpus is a partition: each cpu belongs to its nearest node with memory, like the
//   kernel's cpu_to_node; a CPU-less node has an empty list.
// - distance() is the ACPI SLIT value (10 = local) from hwloc's "NUMALatency" matrix or sysfs;
//   where none is known (synthetic topologies, XML without one) it is 10 on the diagonal, 11
//   between nodes of one package and 20 otherwise.
//
// A topology is an immutable value: copying it is cheap enough, and every const member may be
// called from any number of threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/current_cpu.hpp"
#include "detail/topology_raw.hpp"
#include "detail/topology_sysfs.hpp"
#include "fwd.hpp"
#if NUMAMAP_HAVE_HWLOC
#include "detail/hwloc.hpp"
#endif

NUMAMAP_BEGIN_NAMESPACE

struct node_info {
  node_id id = 0;              ///< OS node number
  unsigned package = 0;        ///< logical package (socket) index, or no_package
  std::vector<unsigned> cpus;  ///< OS cpu numbers whose nearest memory node this is
  std::uint64_t local_memory_bytes = 0;
};

namespace detail {
struct topology_access;
inline bool env_flag(const char* name) noexcept {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): numamap never writes the environment
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::string_view(v) != "0";
}
}  // namespace detail

class topology {
 public:
  /// The machine this process runs on, discovered on the first call (thread-safe) and kept for
  /// the life of the process. Never throws for discovery problems: it degrades to "sysfs", then
  /// to "fallback" (see source()).
  static const topology& system() {
    static const topology t = discover(!detail::env_flag("NUMAMAP_DISABLE_HWLOC"),
                                       !detail::env_flag("NUMAMAP_DISABLE_SYSFS"));
    return t;
  }

  /// A topology described in hwloc's synthetic syntax, e.g. "pack:2 numa:2 core:2 pu:1".
  /// Throws std::invalid_argument naming the description (and the token where hwloc stopped)
  /// when it is malformed, std::runtime_error when numamap was built without hwloc.
  static topology synthetic(std::string_view hwloc_desc) {
    const std::string desc(hwloc_desc);
#if NUMAMAP_HAVE_HWLOC
    if (desc.find_first_not_of(" \t\n") == std::string::npos) {
      throw std::invalid_argument(
          "numamap::topology::synthetic: empty hwloc synthetic description \"" + desc + "\"");
    }
    if (const std::string too_big = synthetic_too_large(desc); !too_big.empty()) {
      throw std::invalid_argument("numamap::topology::synthetic: hwloc synthetic description \"" +
                                  desc + "\" " + too_big);
    }
    detail::raw_topology raw;
    std::string why;
    if (!detail::hwloc_discover(detail::hwloc_input::synthetic, desc, raw, why)) {
      throw std::invalid_argument(
          "numamap::topology::synthetic: malformed hwloc synthetic "
          "description \"" +
          desc + "\"" + bad_synthetic_token(desc) + ": " + why);
    }
    try {
      return topology(std::move(raw));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("numamap::topology::synthetic(\"" + desc + "\"): " + e.what());
    }
#else
    throw std::runtime_error("numamap::topology::synthetic(\"" + desc +
                             "\"): numamap was built without hwloc (NUMAMAP_HAVE_HWLOC=0); "
                             "synthetic topologies need hwloc 2");
#endif
  }

  /// A topology read from an XML file written by `lstopo --of xml` (hwloc 2).
  /// Throws std::runtime_error naming the path when the file cannot be opened,
  /// std::invalid_argument naming it when it is not a valid topology, std::runtime_error when
  /// numamap was built without hwloc.
  static topology from_xml(const std::string& path) {
#if NUMAMAP_HAVE_HWLOC
    {
      std::ifstream probe(path);
      if (!probe) {
        throw std::runtime_error("numamap::topology::from_xml: cannot open \"" + path + "\"");
      }
    }
    detail::raw_topology raw;
    std::string why;
    if (!detail::hwloc_discover(detail::hwloc_input::xml, path, raw, why)) {
      throw std::invalid_argument("numamap::topology::from_xml: \"" + path + "\": " + why);
    }
    try {
      return topology(std::move(raw));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("numamap::topology::from_xml: \"" + path + "\": " + e.what());
    }
#else
    throw std::runtime_error("numamap::topology::from_xml(\"" + path +
                             "\"): numamap was built without hwloc (NUMAMAP_HAVE_HWLOC=0); "
                             "XML topologies need hwloc 2");
#endif
  }

  std::size_t node_count() const noexcept { return nodes_.size(); }
  std::size_t package_count() const noexcept { return package_count_; }
  std::size_t cpu_count() const noexcept { return cpus_.size(); }
  /// The nodes, sorted by id.
  const std::vector<node_info>& nodes() const noexcept { return nodes_; }

  /// The node with this id; std::out_of_range naming the id when there is none.
  const node_info& node(node_id id) const { return nodes_[index_of(id, "node")]; }
  /// Whether a node with this id exists.
  bool has_node(node_id id) const noexcept {
    return id < node_index_.size() && node_index_[id] != invalid;
  }

  /// Relative distance (10 = local). std::out_of_range naming the id for an unknown node.
  unsigned distance(node_id from, node_id to) const {
    const std::size_t f = index_of(from, "distance");
    const std::size_t t = index_of(to, "distance");
    return distances_[f * nodes_.size() + t];
  }

  /// The node of an OS cpu number; std::out_of_range naming the cpu if the topology lacks it.
  node_id node_of_cpu(unsigned cpu) const {
    if (cpu >= cpu_node_.size() || cpu_node_[cpu] == invalid) {
      throw std::out_of_range("numamap::topology::node_of_cpu: unknown cpu " + std::to_string(cpu) +
                              " (the " + std::string(source_) + " topology has " +
                              std::to_string(cpus_.size()) + " cpus)");
    }
    return cpu_node_[cpu];
  }

  /// The node of the cpu the calling thread runs on. No system call on the hot path: the cpu
  /// comes from sched_getcpu() (rseq / vDSO) cached per thread for
  /// detail::current_cpu_refresh_interval calls. For a topology that does not describe this
  /// machine (synthetic, xml) or a cpu it does not know, cpu number modulo cpu_count() picks a
  /// cpu of the topology. A hint only: the thread may migrate.
  node_id current_node() const noexcept {
    const unsigned cpu = detail::cached_current_cpu();
    if (!foreign_ && cpu < cpu_node_.size()) {
      const node_id n = cpu_node_[cpu];
      if (n != invalid) return n;
    }
    if (cpus_.empty()) return nodes_.empty() ? 0 : nodes_.front().id;
    return cpu_node_[cpus_[cpu % cpus_.size()]];
  }

  /// "hwloc", "sysfs", "synthetic", "xml" or "fallback".
  std::string_view source() const noexcept { return source_; }

  /// Why system() did not take its first backend: one "<backend>: <reason>" per backend it
  /// passed over, joined by "; " (e.g. `hwloc: numamap: cannot load the hwloc library
  /// "libhwloc.so.15": ...`). Empty when the first backend was used, and for topologies built
  /// by synthetic() and from_xml(). describe() shows it.
  const std::string& note() const noexcept { return note_; }

  /// Human-readable, in the style of `numactl --hardware`.
  std::string describe() const {
    std::ostringstream os;
    os << "source: " << source_ << " (" << nodes_.size() << " nodes, " << package_count_
       << " packages, " << cpus_.size() << " cpus)\n";
    if (!note_.empty()) os << "note: " << note_ << '\n';
    os << "available: " << nodes_.size() << " nodes (";
    for (std::size_t i = 0; i < nodes_.size(); ++i) os << (i != 0 ? "," : "") << nodes_[i].id;
    os << ")\n";
    for (const node_info& n : nodes_) {
      os << "node " << n.id << " cpus:";
      for (unsigned c : n.cpus) os << ' ' << c;
      os << "\nnode " << n.id << " size: " << (n.local_memory_bytes >> 20) << " MB\n";
      os << "node " << n.id << " package: ";
      if (n.package == no_package) {
        os << "none";
      } else {
        os << n.package;
      }
      os << '\n';
    }
    os << "node distances:\nnode ";
    for (const node_info& n : nodes_) os << ' ' << pad(std::to_string(n.id), 3);
    os << '\n';
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      os << pad(std::to_string(nodes_[i].id), 3) << ": ";
      for (std::size_t j = 0; j < nodes_.size(); ++j) {
        os << ' ' << pad(std::to_string(distances_[i * nodes_.size() + j]), 3);
      }
      os << '\n';
    }
    return os.str();
  }

 private:
  friend struct detail::topology_access;
  static constexpr unsigned invalid = ~0U;
  static constexpr node_id max_node_id = (1U << 16U) - 1;
  static constexpr unsigned max_cpu_id = (1U << 20U) - 1;

  explicit topology(detail::raw_topology raw) : source_(raw.source), foreign_(raw.foreign) {
    std::sort(raw.nodes.begin(), raw.nodes.end(),
              [](const detail::raw_node& a, const detail::raw_node& b) { return a.id < b.id; });
    if (raw.nodes.empty()) {
      throw std::invalid_argument("numamap::topology: the " + std::string(source_) +
                                  " topology has no NUMA node");
    }
    // The lookup tables below are indexed by id: an id past these bounds is no real
    // machine's (Linux: 1024 nodes, 8192 cpus at most) and would make them gigabytes.
    if (raw.nodes.back().id > max_node_id) {
      throw std::invalid_argument(
          "numamap::topology: node id " + std::to_string(raw.nodes.back().id) + " in the " +
          std::string(source_) + " topology is above " + std::to_string(max_node_id));
    }
    for (const auto& cpu_node : raw.cpus) {
      if (cpu_node.first > max_cpu_id) {
        throw std::invalid_argument("numamap::topology: cpu id " + std::to_string(cpu_node.first) +
                                    " in the " + std::string(source_) + " topology is above " +
                                    std::to_string(max_cpu_id));
      }
    }
    drop_memoryless_nodes(raw);
    node_id max_id = raw.nodes.back().id;
    node_index_.assign(static_cast<std::size_t>(max_id) + 1, invalid);
    for (std::size_t i = 0; i < raw.nodes.size(); ++i) {
      const detail::raw_node& r = raw.nodes[i];
      if (node_index_[r.id] != invalid) {
        throw std::invalid_argument("numamap::topology: node " + std::to_string(r.id) +
                                    " appears twice in the " + std::string(source_) + " topology");
      }
      node_index_[r.id] = static_cast<unsigned>(i);
      node_info n;
      n.id = r.id;
      n.package = r.package;
      n.local_memory_bytes = r.memory;
      nodes_.push_back(std::move(n));
    }
    for (const auto& [cpu, node] : raw.cpus) {
      if (!has_node(node)) {
        throw std::invalid_argument("numamap::topology: cpu " + std::to_string(cpu) +
                                    " maps to unknown node " + std::to_string(node));
      }
      if (cpu >= cpu_node_.size()) cpu_node_.resize(static_cast<std::size_t>(cpu) + 1, invalid);
      if (cpu_node_[cpu] != invalid) {  // a cpu belongs to one node only
        throw std::invalid_argument("numamap::topology: cpu " + std::to_string(cpu) +
                                    " is listed twice in the " + std::string(source_) +
                                    " topology (nodes " + std::to_string(cpu_node_[cpu]) + " and " +
                                    std::to_string(node) + ")");
      }
      cpu_node_[cpu] = node;
      cpus_.push_back(cpu);
      nodes_[node_index_[node]].cpus.push_back(cpu);
    }
    std::sort(cpus_.begin(), cpus_.end());
    for (node_info& n : nodes_) std::sort(n.cpus.begin(), n.cpus.end());

    if (raw.package_count != 0) {
      package_count_ = raw.package_count;
    } else {
      std::vector<unsigned> pkgs;
      for (const node_info& n : nodes_) {
        if (n.package != no_package) pkgs.push_back(n.package);
      }
      std::sort(pkgs.begin(), pkgs.end());
      package_count_ =
          static_cast<std::size_t>(std::unique(pkgs.begin(), pkgs.end()) - pkgs.begin());
      if (package_count_ == 0) package_count_ = 1;
    }

    const std::size_t n = nodes_.size();
    distances_.assign(n * n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        const node_info& a = nodes_[i];
        const node_info& b = nodes_[j];
        distances_[i * n + j] = i == j                                              ? 10U
                                : a.package == b.package && a.package != no_package ? 11U
                                                                                    : 20U;
      }
    }
    for (const auto& d : raw.distances) {
      if (has_node(d.from) && has_node(d.to) && d.value != 0) {
        distances_[node_index_[d.from] * n + node_index_[d.to]] = d.value;
      }
    }
  }

  // A node without memory cannot hold a shard's memory: when some nodes report memory, the
  // ones reporting none are dropped, and their cpus go to the nearest node with memory by the
  // dropped node's distances (then same package, then lowest id), as the kernel's cpu_to_mem.
  // hwloc 2.9 does report memory-less nodes of a real machine (seen in a QEMU guest), with
  // local_memory 0. When no node reports memory (synthetic "[numa]" without sizes), all stay.
  static void drop_memoryless_nodes(detail::raw_topology& raw) {
    std::vector<detail::raw_node> kept;
    std::vector<detail::raw_node> dropped;
    for (const detail::raw_node& n : raw.nodes) (n.memory != 0 ? kept : dropped).push_back(n);
    if (kept.empty() || dropped.empty()) return;
    auto distance_of = [&](node_id from, node_id to) {
      for (const auto& d : raw.distances) {
        if (d.from == from && d.to == to && d.value != 0) return d.value;
      }
      return ~0U;  // unknown: after every known distance
    };
    for (auto& cpu_node : raw.cpus) {
      const auto from =
          std::find_if(dropped.begin(), dropped.end(),
                       [&](const detail::raw_node& n) { return n.id == cpu_node.second; });
      if (from == dropped.end()) continue;
      const detail::raw_node* best = nullptr;
      unsigned best_distance = 0;
      for (const detail::raw_node& k : kept) {
        const unsigned d = distance_of(from->id, k.id);
        const bool better =
            best == nullptr || d < best_distance ||
            (d == best_distance && k.package == from->package && best->package != from->package);
        if (better) {
          best = &k;
          best_distance = d;
        }
      }
      cpu_node.second = best->id;
    }
    raw.nodes = std::move(kept);
  }

  // system()'s backends in order; each one passed over adds its reason to the result's note.
  static topology discover(bool use_hwloc, bool use_sysfs) {
    std::string note;
    auto passed_over = [&note](const char* backend, const std::string& why) {
      if (!note.empty()) note += "; ";
      note += backend;
      note += ": ";
      note += why.empty() ? std::string("failed") : why;
    };
#if NUMAMAP_HAVE_HWLOC
    if (use_hwloc) {
      detail::raw_topology raw;
      std::string why;
      try {
        if (detail::hwloc_discover(detail::hwloc_input::system, std::string(), raw, why)) {
          return topology(std::move(raw));
        }
        passed_over("hwloc", why);
      } catch (const std::exception& e) {
        passed_over("hwloc", e.what());  // then sysfs
      }
    } else {
      passed_over("hwloc", "not tried (NUMAMAP_DISABLE_HWLOC)");
    }
#else
    (void)use_hwloc;
    passed_over("hwloc", "numamap was built without hwloc (NUMAMAP_HAVE_HWLOC=0)");
#endif
    if (use_sysfs) {
      std::string why;
      try {
        if (auto raw = detail::sysfs_discover("/sys/devices/system", true, &why)) {
          topology t(std::move(*raw));
          t.note_ = std::move(note);
          return t;
        }
        passed_over("sysfs", why);
      } catch (const std::exception& e) {
        passed_over("sysfs", e.what());  // then the single node
      }
    } else {
      passed_over("sysfs", "not tried (NUMAMAP_DISABLE_SYSFS)");
    }
    topology t(detail::fallback_discover());
    t.note_ = std::move(note);
    return t;
  }

  std::size_t index_of(node_id id, const char* what) const {
    if (!has_node(id)) {
      throw std::out_of_range("numamap::topology::" + std::string(what) + ": unknown node " +
                              std::to_string(id) + " (the " + std::string(source_) +
                              " topology has nodes " + node_list() + ")");
    }
    return node_index_[id];
  }

  std::string node_list() const {
    std::string s;
    for (const node_info& n : nodes_) s += (s.empty() ? "" : ",") + std::to_string(n.id);
    return s;
  }

  static std::string pad(const std::string& s, std::size_t w) {
    return s.size() >= w ? s : std::string(w - s.size(), ' ') + s;
  }

#if NUMAMAP_HAVE_HWLOC
  // What hwloc would build, bounded before it builds it: the product of the levels' counts
  // (the number of cpus) and every number in an `indexes=` list must stay within the ids a
  // topology accepts (hwloc spent minutes and gigabytes on "pack:99999999 pu:1", or on an
  // index of 4e9, before numamap could refuse the result). "" when within bounds, or when the
  // description is malformed in a way hwloc will report itself.
  static std::string synthetic_too_large(const std::string& desc) {
    std::istringstream in(desc);
    std::uint64_t cpus = 1;
    for (std::string tok; in >> tok;) {
      const std::size_t colon = tok.find(':');
      if (colon != std::string::npos && tok[0] != '[') {
        std::uint64_t count = 0;
        std::size_t i = colon + 1;
        for (; i < tok.size() && tok[i] >= '0' && tok[i] <= '9' && count <= max_cpu_id; ++i) {
          count = count * 10 + static_cast<std::uint64_t>(tok[i] - '0');
        }
        if (i > colon + 1) cpus *= std::max<std::uint64_t>(count, 1);
        if (cpus > std::uint64_t{max_cpu_id} + 1) {
          return "describes more than " + std::to_string(max_cpu_id + 1) + " cpus (at '" + tok +
                 "')";
        }
      }
      const std::size_t idx = tok.find("indexes=");
      if (idx == std::string::npos) continue;
      std::uint64_t v = 0;
      bool digits = false;
      for (std::size_t i = idx + 8; i <= tok.size(); ++i) {
        if (i < tok.size() && tok[i] >= '0' && tok[i] <= '9') {
          v = std::min<std::uint64_t>(v * 10 + static_cast<std::uint64_t>(tok[i] - '0'),
                                      std::uint64_t{1} << 40U);
          digits = true;
          continue;
        }
        if (digits && v > max_cpu_id) {
          return "has index " + (v < (std::uint64_t{1} << 40U) ? std::to_string(v) : "past 2^40") +
                 ", above " + std::to_string(max_cpu_id) + " (at '" + tok + "')";
        }
        v = 0;
        digits = false;
      }
    }
    return {};
  }

  // hwloc only says EINVAL (its message needs HWLOC_SYNTHETIC_VERBOSE=1 and goes to stderr):
  // find the first token whose addition makes the description fail. A prefix is tried with a
  // "pu:1" level appended, since hwloc requires the last level to be PU.
  static std::string bad_synthetic_token(const std::string& desc) {
    std::istringstream in(desc);
    std::vector<std::string> tokens;
    for (std::string tok; in >> tok;) tokens.push_back(tok);
    std::string prefix;
    for (const std::string& tok : tokens) {
      prefix += (prefix.empty() ? "" : " ") + tok;
      const bool is_pu =
          tok.size() >= 2 && (tok[0] == 'p' || tok[0] == 'P') && (tok[1] == 'u' || tok[1] == 'U');
      const std::string candidate = is_pu ? prefix : prefix + " pu:1";
      if (!detail::hwloc_synthetic_accepted(candidate)) return " at token '" + tok + "'";
    }
    return tokens.empty() ? std::string()
                          : " at token '" + tokens.back() + "' (the last level must be pu)";
  }
#endif

  const char* source_ = "fallback";
  std::string note_;  // system(): why earlier backends were passed over (note())
  bool foreign_ = false;
  std::size_t package_count_ = 1;
  std::vector<node_info> nodes_;      // sorted by id
  std::vector<unsigned> node_index_;  // node id -> index in nodes_, or invalid
  std::vector<node_id> cpu_node_;     // OS cpu -> node id, or invalid
  std::vector<unsigned> cpus_;        // every cpu of the topology, sorted
  std::vector<unsigned> distances_;   // nodes_.size()^2, row = from
};

namespace detail {
/// Test and tooling access to the discovery paths and to topologies built from plain data.
struct topology_access {
  /// Runs discovery as topology::system() would, with backends switched on or off.
  static topology discover(bool use_hwloc, bool use_sysfs) {
    return topology::discover(use_hwloc, use_sysfs);
  }
  /// The sysfs backend on another root (a fixture directory); std::runtime_error if unusable.
  static topology from_sysfs(const std::string& root, bool restrict_to_process = false) {
    std::string why;
    auto raw = sysfs_discover(root, restrict_to_process, &why);
    if (!raw) throw std::runtime_error("numamap::topology (sysfs): " + why);
    return topology(std::move(*raw));
  }
  /// A topology from plain data (std::invalid_argument when inconsistent).
  static topology from_raw(raw_topology raw) { return topology(std::move(raw)); }
};
}  // namespace detail

NUMAMAP_END_NAMESPACE
