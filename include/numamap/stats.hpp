// numamap/stats.hpp — what concurrent_map::stats() reports: per shard and per node
// counters, and where the shards' memory really lies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fwd.hpp"

NUMAMAP_BEGIN_NAMESPACE

/// Pages of a node's memory as move_pages(2) reports them. `verified` is false when the
/// memory resource cannot say (heap_memory, move_pages refused, no libnuma).
struct page_placement {
  bool verified = false;
  std::size_t on_node = 0;      ///< pages that lie on the node they were meant for
  std::size_t elsewhere = 0;    ///< pages that lie on another node
  std::size_t not_present = 0;  ///< pages never touched (-ENOENT) or the zero page (-EFAULT)
  std::size_t sampled = 0;      ///< pages asked about
};

struct shard_stats {
  std::size_t index = 0;
  node_id node = 0;
  std::size_t entries = 0;          ///< live keys
  std::uint64_t loads = 0;          ///< load/contains/visit calls routed here
  std::uint64_t read_hits = 0;      ///< of those, answered from the read snapshot
  std::uint64_t misses = 0;         ///< lookups that fell through to the dirty map
  std::uint64_t promotions = 0;     ///< dirty map merged into the read snapshot
  std::uint64_t rebuilds = 0;       ///< read table rebuilt (grown or compacted)
  std::uint64_t stores = 0;         ///< calls that wrote a value
  std::size_t bytes_allocated = 0;  ///< bytes this shard holds from the memory resource
};

struct node_stats {
  node_id node = 0;
  std::size_t shards = 0;
  std::size_t entries = 0;
  std::size_t bytes_allocated = 0;
  page_placement pages;
};

struct map_stats {
  std::string memory_resource;  ///< e.g. "numa_memory(preferred)" or "heap_memory"
  std::string memory_note;      ///< why a fallback was taken, empty if none
  std::string topology_source;  ///< topology::source()
  std::vector<node_stats> nodes;
  std::vector<shard_stats> shards;

  std::string to_table() const;
  std::string to_json() const;
};

NUMAMAP_END_NAMESPACE
