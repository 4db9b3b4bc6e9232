// numamap/topology.hpp — PLACEHOLDER (single-node fallback only); the NUMA placement work
// replaces it with hwloc / sysfs discovery. The interface is the contract's.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fwd.hpp"

NUMAMAP_BEGIN_NAMESPACE

struct node_info {
  node_id id = 0;
  unsigned package = 0;
  std::vector<unsigned> cpus;
  std::uint64_t local_memory_bytes = 0;
};

class topology {
 public:
  static const topology& system() {
    static const topology t = make_fallback();
    return t;
  }
  std::size_t node_count() const noexcept { return nodes_.size(); }
  std::size_t package_count() const noexcept { return 1; }
  std::size_t cpu_count() const noexcept { return nodes_.empty() ? 0 : nodes_[0].cpus.size(); }
  const std::vector<node_info>& nodes() const noexcept { return nodes_; }
  unsigned distance(node_id from, node_id to) const {
    if (from != 0 || to != 0) throw std::out_of_range("numamap::topology::distance: unknown node");
    return 10;
  }
  node_id node_of_cpu(unsigned cpu) const {
    if (cpu >= cpu_count()) throw std::out_of_range("numamap::topology::node_of_cpu: unknown cpu");
    return 0;
  }
  node_id current_node() const noexcept { return 0; }
  std::string_view source() const noexcept { return "fallback"; }
  std::string describe() const { return "1 node (fallback)"; }

 private:
  static topology make_fallback() {
    topology t;
    node_info n;
    unsigned c = std::thread::hardware_concurrency();
    for (unsigned i = 0; i < (c ? c : 1); ++i) n.cpus.push_back(i);
    t.nodes_.push_back(n);
    return t;
  }
  std::vector<node_info> nodes_;
};

NUMAMAP_END_NAMESPACE
