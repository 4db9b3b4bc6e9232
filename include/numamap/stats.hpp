// numamap/stats.hpp — what concurrent_map::stats() reports: per shard and per node
// counters, and where the shards' memory really lies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
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
  std::size_t entries = 0;      ///< live keys
  std::uint64_t loads = 0;      ///< load/contains/visit calls routed here
  std::uint64_t read_hits = 0;  ///< of those, answered from the read snapshot
  /// lookups that fell through to the dirty map under the shard's lock: loads, and as in Go
  /// the writes that did (Go's rule promotes when they reach the dirty map's size)
  std::uint64_t misses = 0;
  std::uint64_t promotions = 0;  ///< dirty map merged into the read snapshot; rebuilds included
  std::uint64_t rebuilds = 0;    ///< read table rebuilt (grown or compacted)
  std::uint64_t stores = 0;      ///< calls that wrote a value
  /// of the stores, new keys put into the read table without the shard's lock (claimed
  /// with a thread's credits, options::insert_credits)
  std::uint64_t unlocked_inserts = 0;
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

  /// A human-readable table: one line per node, then one per shard.
  std::string to_table() const;
  /// The same as one JSON object.
  std::string to_json() const;
};

namespace detail {
inline std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace detail

inline std::string map_stats::to_table() const {
  std::string out;
  char line[256];
  out += "memory: " + memory_resource;
  if (!memory_note.empty()) out += " (" + memory_note + ")";
  out += "\ntopology: " + topology_source + "\n";
  std::snprintf(line, sizeof line, "%-6s %7s %12s %14s %12s %12s %12s\n", "node", "shards",
                "entries", "bytes", "pages-local", "pages-remote", "not-present");
  out += line;
  for (const node_stats& n : nodes) {
    if (n.pages.verified) {
      std::snprintf(line, sizeof line, "%-6u %7zu %12zu %14zu %12zu %12zu %12zu\n", n.node,
                    n.shards, n.entries, n.bytes_allocated, n.pages.on_node, n.pages.elsewhere,
                    n.pages.not_present);
    } else {
      std::snprintf(line, sizeof line, "%-6u %7zu %12zu %14zu %12s %12s %12s\n", n.node, n.shards,
                    n.entries, n.bytes_allocated, "n/a", "n/a", "n/a");
    }
    out += line;
  }
  std::snprintf(line, sizeof line, "%-6s %5s %10s %12s %12s %9s %9s %9s %10s %10s\n", "shard",
                "node", "entries", "loads", "read-hits", "misses", "promos", "rebuilds", "stores",
                "unlocked");
  out += line;
  for (const shard_stats& s : shards) {
    std::snprintf(
        line, sizeof line, "%-6zu %5u %10zu %12llu %12llu %9llu %9llu %9llu %10llu %10llu\n",
        s.index, s.node, s.entries, static_cast<unsigned long long>(s.loads),
        static_cast<unsigned long long>(s.read_hits), static_cast<unsigned long long>(s.misses),
        static_cast<unsigned long long>(s.promotions), static_cast<unsigned long long>(s.rebuilds),
        static_cast<unsigned long long>(s.stores),
        static_cast<unsigned long long>(s.unlocked_inserts));
    out += line;
  }
  return out;
}

inline std::string map_stats::to_json() const {
  auto num = [](auto v) { return std::to_string(v); };
  std::string out = R"({"memory_resource":")" + detail::json_escape(memory_resource) +
                    R"(","memory_note":")" + detail::json_escape(memory_note) +
                    R"(","topology_source":")" + detail::json_escape(topology_source) +
                    R"(","nodes":[)";
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const node_stats& n = nodes[i];
    if (i != 0) out += ",";
    out += "{\"node\":" + num(n.node) + ",\"shards\":" + num(n.shards) +
           ",\"entries\":" + num(n.entries) + ",\"bytes_allocated\":" + num(n.bytes_allocated) +
           R"(,"pages":{"verified":)" + (n.pages.verified ? "true" : "false") +
           ",\"on_node\":" + num(n.pages.on_node) + ",\"elsewhere\":" + num(n.pages.elsewhere) +
           ",\"not_present\":" + num(n.pages.not_present) + ",\"sampled\":" + num(n.pages.sampled) +
           "}}";
  }
  out += "],\"shards\":[";
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const shard_stats& s = shards[i];
    if (i != 0) out += ",";
    out += "{\"index\":" + num(s.index) + ",\"node\":" + num(s.node) +
           ",\"entries\":" + num(s.entries) + ",\"loads\":" + num(s.loads) +
           ",\"read_hits\":" + num(s.read_hits) + ",\"misses\":" + num(s.misses) +
           ",\"promotions\":" + num(s.promotions) + ",\"rebuilds\":" + num(s.rebuilds) +
           ",\"stores\":" + num(s.stores) + ",\"unlocked_inserts\":" + num(s.unlocked_inserts) +
           ",\"bytes_allocated\":" + num(s.bytes_allocated) + "}";
  }
  out += "]}";
  return out;
}

NUMAMAP_END_NAMESPACE
