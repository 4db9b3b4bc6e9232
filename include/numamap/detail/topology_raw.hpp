// numamap/detail/topology_raw.hpp — what a discovery backend (hwloc, sysfs, fallback) hands to
// numamap::topology: plain data, no library types. topology's constructor checks it, sorts it
// and builds the lookup tables; the backends only have to describe what they saw.
#pragma once

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "../fwd.hpp"

NUMAMAP_BEGIN_NAMESPACE

/// node_info::package of a node that lies in no package (a CPU-less node hanging from the
/// Machine in hwloc, e.g. CXL or far memory).
inline constexpr unsigned no_package = std::numeric_limits<unsigned>::max();

namespace detail {

struct raw_node {
  node_id id = 0;
  unsigned package = no_package;  // logical package index, or no_package
  std::uint64_t memory = 0;       // local memory in bytes
};

struct raw_topology {
  const char* source = "fallback";  // a string literal: "hwloc", "sysfs", "synthetic", "xml", ...
  bool foreign = false;  // not this machine: current_node() maps the real cpu modulo cpu_count()
  std::size_t package_count = 0;  // 0: count the distinct packages of the nodes
  std::vector<raw_node> nodes;
  // The partition: every cpu once, with the node it belongs to (a node of `nodes`).
  std::vector<std::pair<unsigned, node_id>> cpus;
  // Distances between nodes, by node id: (from, to, value). Missing pairs are synthesised
  // (10 local, 11 same package, 20 otherwise).
  struct distance {
    node_id from, to;
    unsigned value;
  };
  std::vector<distance> distances;
};

}  // namespace detail
NUMAMAP_END_NAMESPACE
