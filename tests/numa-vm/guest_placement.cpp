// tests/numa-vm/guest_placement.cpp — where numamap's memory really lies, by move_pages(2):
// numa_memory per node, a concurrent_map's shards (entries, tables, out-of-line values),
// interleave, and on a tiny node: bind exhaustion (std::bad_alloc, process alive) and
// preferred overflow (counted as elsewhere).
//
// The inserting thread is pinned to a cpu of node 0 throughout: if the library did not bind
// its memory, first touch would put everything on node 0 and the checks of the other nodes
// would fail.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <new>
#include <numamap/numamap.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "guest_checks.hpp"

namespace numa_vm {
namespace {

using u64 = std::uint64_t;
using numamap::node_id;
using numamap::numa_memory;
using numamap::numa_policy;
using numamap::page_placement;

constexpr std::size_t mib = std::size_t{1} << 20;

std::string str(const page_placement& p) {
  return cat("verified=", p.verified, " on_node=", p.on_node, " elsewhere=", p.elsewhere,
             " not_present=", p.not_present, " sampled=", p.sampled);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// A value too big to sit in the entry's word: the map keeps it out of line, in a node of
/// its own allocated from the shard's memory.
struct blob {
  std::array<u64, 8> words{};
  bool operator==(const blob& o) const { return words == o.words; }
};

blob make_blob(u64 k) {
  blob b;
  for (std::size_t i = 0; i < b.words.size(); ++i) b.words[i] = k * 31 + i;
  return b;
}

/// A memory resource that sends every node's allocations to one node, so that a whole map
/// lives there (the preferred-overflow check on the tiny node). Shows a user type plugging
/// into the NodeMemory concept, with the optional name() and verify_placement().
struct on_one_node {
  numa_memory inner{numa_policy::preferred};
  node_id target = 0;

  void* allocate(std::size_t bytes, std::size_t align, node_id /*node*/) {
    return inner.allocate(bytes, align, target);
  }
  void deallocate(void* p, std::size_t bytes, std::size_t align, node_id /*node*/) noexcept {
    inner.deallocate(p, bytes, align, target);
  }
  std::string name() const { return "on_one_node(" + inner.name() + ")"; }
  page_placement verify_placement(node_id /*node*/) const { return inner.verify_placement(target); }
};

template <class V, class Memory = numamap::default_memory>
using map_of = numamap::concurrent_map<u64, V, std::hash<u64>, std::equal_to<u64>, Memory>;

/// Small allocations per node from numa_memory(preferred): verify_placement and the raw
/// move_pages of each block agree that they lie on the node.
void check_numa_memory_per_node(const layout& want) {
  numa_memory mem(numa_policy::preferred);
  std::printf("  resource: %s%s%s\n", mem.name().c_str(),
              mem.note().empty() ? "" : ", note: ", mem.note().c_str());
  NUMA_VM_CHECK(mem.name().find("numa_memory") != std::string::npos, "name() = ", mem.name());
  NUMA_VM_CHECK(mem.note().empty(), "no fallback taken (note() empty): '", mem.note(), "'");
  for (const unsigned n : want.memory_node_ids()) {  // CPU-less nodes too
    const auto node = static_cast<node_id>(n);
    std::vector<std::pair<void*, std::size_t>> blocks;
    for (int i = 0; i < 4000; ++i) {
      const std::size_t bytes = (i % 100 == 99) ? 64 * 1024 : 64 + 8 * (i % 32);
      void* p = mem.allocate(bytes, 64, node);
      std::memset(p, 0x5a, bytes);
      blocks.emplace_back(p, bytes);
    }
    std::vector<int> status;
    for (const auto& [p, bytes] : blocks) {
      std::vector<int> s = raw_page_nodes(p, bytes);
      status.insert(status.end(), s.begin(), s.end());
    }
    const auto h = histogram(status);
    NUMA_VM_CHECK(h.size() == 1 && h.count(static_cast<int>(n)) == 1, "4000 blocks on node ", n,
                  ": their pages by move_pages: ", to_string(h));
    const page_placement pp = mem.verify_placement(node);
    NUMA_VM_CHECK(pp.verified && pp.on_node > 0 && pp.elsewhere == 0, "verify_placement(", n,
                  "): ", str(pp));
    // The chunk carries the policy itself (mbind before first touch), not just lucky pages.
    const auto [mode, mask] = raw_policy_at(blocks.front().first);
    NUMA_VM_CHECK(mode == mpol_preferred && mask == std::vector<unsigned>{node},
                  "get_mempolicy(MPOL_F_ADDR) on a block: mode ", mode, " (want ", mpol_preferred,
                  " MPOL_PREFERRED), nodes {", list(mask), "}");
    // Small blocks are carved from shared chunks, not given a page (an mmap) each.
    std::set<std::uintptr_t> small_pages;
    std::size_t small_blocks = 0;
    for (const auto& [p, bytes] : blocks) {
      if (bytes >= 4096) continue;
      ++small_blocks;
      small_pages.insert(reinterpret_cast<std::uintptr_t>(p) / page_size());
    }
    NUMA_VM_CHECK(small_pages.size() * 4 < small_blocks, small_blocks,
                  " small blocks share pages: they lie on ", small_pages.size(), " pages");
    for (const auto& [p, bytes] : blocks) mem.deallocate(p, bytes, 64, node);
  }
}

/// Per node of the map: shards there, pages verified on the node and none elsewhere.
template <class Map>
void check_map_placement(const Map& map, const layout& want, std::size_t expect_entries,
                         const char* what) {
  const numamap::map_stats st = map.stats();
  std::printf("%s", st.to_table().c_str());
  NUMA_VM_CHECK(st.memory_resource.find("numa_memory") != std::string::npos, what,
                ": stats().memory_resource = ", st.memory_resource);
  NUMA_VM_CHECK(st.memory_note.empty(), what, ": no fallback, memory_note = '", st.memory_note,
                "'");
  // Shards live on exactly the nodes with cpus (a CPU-less node gets none).
  std::vector<unsigned> want_shard_nodes;
  std::vector<unsigned> got_shard_nodes;
  for (const view_node& v : want.numamap_nodes())
    if (!v.cpus.empty()) want_shard_nodes.push_back(v.id);
  for (const auto& ns : st.nodes)
    if (ns.shards > 0) got_shard_nodes.push_back(ns.node);
  std::sort(got_shard_nodes.begin(), got_shard_nodes.end());
  NUMA_VM_CHECK(got_shard_nodes == want_shard_nodes, what, ": nodes with shards {",
                list(got_shard_nodes), "}, want the nodes with cpus {", list(want_shard_nodes),
                "}");
  std::size_t entries = 0;
  for (const auto& ns : st.nodes) {
    entries += ns.entries;
    NUMA_VM_CHECK(ns.shards > 0 && ns.entries > 0 && ns.bytes_allocated > 0, what, ": node ",
                  ns.node, " has shards=", ns.shards, " entries=", ns.entries,
                  " bytes=", ns.bytes_allocated);
    NUMA_VM_CHECK(ns.pages.verified && ns.pages.on_node > 0 && ns.pages.elsewhere == 0, what,
                  ": node ", ns.node, " pages ", str(ns.pages));
  }
  NUMA_VM_CHECK_EQ(entries, expect_entries, what, ": sum of stats().nodes[i].entries");
}

/// The node of each stored value's address (found with visit) must be the node whose shards
/// hold that key; counted per node, it equals stats().nodes[i].entries exactly.
template <class Map>
void check_values_on_shard_nodes(const Map& map, const layout& want, u64 count, const char* what) {
  std::vector<void*> pages;
  pages.reserve(count);
  const std::size_t ps = page_size();
  for (u64 k = 0; k < count; ++k) {
    map.visit(k, [&](const auto& v) {
      pages.push_back(reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(&v) / ps * ps));
    });
  }
  NUMA_VM_CHECK_EQ(pages.size(), std::size_t(count), what, ": values found by visit");
  std::vector<int> status(pages.size(), -1);
  const long rc = syscall(SYS_move_pages, 0, pages.size(), pages.data(), nullptr, status.data(), 0);
  NUMA_VM_CHECK_EQ(rc, 0L, what, ": move_pages over the values' pages");
  std::map<int, std::size_t> by_node = histogram(status);
  const numamap::map_stats st = map.stats();
  std::map<int, std::size_t> want_by_node;
  for (const auto& ns : st.nodes)
    if (ns.entries > 0) want_by_node[static_cast<int>(ns.node)] = ns.entries;
  NUMA_VM_CHECK(by_node == want_by_node, what,
                ": values per node by move_pages: ", to_string(by_node),
                "; entries per node by stats(): ", to_string(want_by_node));
  (void)want;
}

/// The big map: entries, tables and inline values on each shard's node.
void check_map_u64(const layout& want) {
  map_of<u64> map;
  const u64 n = want.entries;
  const auto t0 = std::chrono::steady_clock::now();
  for (u64 k = 0; k < n; ++k) map.store(k, k * 7 + 1);
  std::printf("  stored %llu entries in %.1f s (TCG)\n", static_cast<unsigned long long>(n),
              seconds_since(t0));
  NUMA_VM_CHECK_EQ(map.size(), std::size_t(n), "size() after storing ", n, " keys");
  bool all_ok = true;
  for (u64 k = 0; k < n; k += 997) {
    auto v = map.load(k);
    if (!v || *v != k * 7 + 1) all_ok = false;
  }
  NUMA_VM_CHECK(all_ok, "every 997th key loads its value");
  NUMA_VM_CHECK(map.shard_count() >= 2, "shard_count() = ", map.shard_count());
  check_map_placement(map, want, n, "concurrent_map<u64,u64>");
}

/// Out-of-line values: std::string (short: the characters sit in the string object, which
/// sits in the value node) and a 64-byte struct.
void check_map_out_of_line(const layout& want) {
  const u64 n = std::max<u64>(want.entries / 10, 1000);
  {
    map_of<std::string> map;
    for (u64 k = 0; k < n; ++k) map.store(k, "v" + std::to_string(k % 100000000));
    NUMA_VM_CHECK_EQ(map.size(), std::size_t(n), "concurrent_map<u64,std::string> size()");
    auto v = map.load(n / 2);
    NUMA_VM_CHECK(v && *v == "v" + std::to_string((n / 2) % 100000000), "load(", n / 2, ")");
    check_map_placement(map, want, n, "concurrent_map<u64,std::string>");
    check_values_on_shard_nodes(map, want, n, "concurrent_map<u64,std::string>");
  }
  {
    map_of<blob> map;
    for (u64 k = 0; k < n; ++k) map.store(k, make_blob(k));
    NUMA_VM_CHECK_EQ(map.size(), std::size_t(n), "concurrent_map<u64,blob64> size()");
    auto v = map.load(n - 1);
    NUMA_VM_CHECK(v && *v == make_blob(n - 1), "load(", n - 1, ") of a blob");
    check_map_placement(map, want, n, "concurrent_map<u64,blob64>");
    check_values_on_shard_nodes(map, want, n, "concurrent_map<u64,blob64>");
  }
}

/// interleave: the pages of 32 MiB of blocks spread over every node.
void check_interleave(const layout& want) {
  numa_memory mem(numa_policy::interleave);
  std::printf("  resource: %s\n", mem.name().c_str());
  NUMA_VM_CHECK(mem.name().find("interleave") != std::string::npos, "name() = ", mem.name());
  std::vector<void*> blocks;
  const std::size_t block = std::size_t{512} * 1024;
  for (std::size_t i = 0; i < 64; ++i) {
    void* p = mem.allocate(block, 64, 0);
    std::memset(p, 1, block);
    blocks.push_back(p);
  }
  std::vector<int> status;
  for (void* p : blocks) {
    std::vector<int> s = raw_page_nodes(p, block);
    status.insert(status.end(), s.begin(), s.end());
  }
  const auto h = histogram(status);
  const std::vector<unsigned> all_nodes = want.memory_node_ids();
  const std::size_t fair = status.size() / all_nodes.size();
  bool spread = h.count(-1) == 0;
  for (const unsigned n : all_nodes) {
    auto it = h.find(static_cast<int>(n));
    if (it == h.end() || it->second < fair / 2) spread = false;
  }
  NUMA_VM_CHECK(
      spread, "32 MiB from interleave: every node with memory holds at least half its fair share ",
      fair, " of ", status.size(), " pages: ", to_string(h));
  const auto [mode, mask] = raw_policy_at(blocks.front());
  NUMA_VM_CHECK(mode == mpol_interleave && mask == all_nodes,
                "get_mempolicy(MPOL_F_ADDR) on an interleave block: mode ", mode, " (want ",
                mpol_interleave, " MPOL_INTERLEAVE), nodes {", list(mask), "}");
  std::printf("  verify_placement(0) under interleave: %s\n", str(mem.verify_placement(0)).c_str());
  for (void* p : blocks) mem.deallocate(p, block, 64, 0);
}

/// bind on the tiny node: 1 MiB blocks, each touched at once, until std::bad_alloc. Without
/// the free-memory check the kernel would OOM-kill us at a touch (status 137: harness fails).
void check_bind_exhaustion(const layout& want) {
  const auto tiny = static_cast<node_id>(want.tiny_node);
  map_of<u64> survivor;  // default memory (preferred): must stay valid through the exhaustion
  for (u64 k = 0; k < 10000; ++k) survivor.store(k, k + 1);
  // A map on bind memory of its own, with chunks on every node before the tiny one fills.
  map_of<u64, numa_memory>::options bind_opts;
  bind_opts.memory = numa_memory(numa_policy::bind);
  map_of<u64, numa_memory> bind_map(std::move(bind_opts));
  for (u64 k = 0; k < 1000; ++k) bind_map.store(k, k + 3);

  numa_memory mem(numa_policy::bind);
  std::printf("  resource: %s\n", mem.name().c_str());
  NUMA_VM_CHECK(mem.note().empty(), "bind resource took no fallback: '", mem.note(), "'");
  std::vector<void*> blocks;
  bool threw = false;
  std::string other_error;
  const std::size_t limit = (want.node_mem_mib.at(tiny) * 4) << 20;  // never loop forever
  try {
    while (blocks.size() * mib < limit) {
      void* p = mem.allocate(mib, 64, tiny);
      blocks.push_back(p);
      std::memset(p, 0x33, mib);
    }
  } catch (const std::bad_alloc&) {
    threw = true;
  } catch (const std::exception& e) {
    other_error = e.what();
  }
  std::printf("  allocated and touched %zu MiB on node %u before the throw\n", blocks.size(), tiny);
  NUMA_VM_CHECK(threw, "bind on the ", want.node_mem_mib.at(tiny),
                " MiB node ends in std::bad_alloc (other exception: '", other_error, "')");
  NUMA_VM_CHECK(!blocks.empty() && blocks.size() * mib < (want.node_mem_mib.at(tiny) << 20),
                "some but less than the node's size was handed out: ", blocks.size(), " MiB");
  const page_placement pp = mem.verify_placement(tiny);
  NUMA_VM_CHECK(pp.verified && pp.on_node > 0 && pp.elsewhere == 0, "bind pages all on node ", tiny,
                ": ", str(pp));
  if (!blocks.empty()) {
    const auto [mode, mask] = raw_policy_at(blocks.front());
    NUMA_VM_CHECK(mode == mpol_bind && mask == std::vector<unsigned>{tiny},
                  "get_mempolicy(MPOL_F_ADDR) on a bind block: mode ", mode, " (want ", mpol_bind,
                  " MPOL_BIND), nodes {", list(mask), "}");
  }
  // A second attempt also throws, and does not kill us either.
  bool threw_again = false;
  try {
    void* p = mem.allocate(mib, 64, tiny);
    blocks.push_back(p);
    std::memset(p, 0x33, mib);
  } catch (const std::bad_alloc&) {
    threw_again = true;
  }
  NUMA_VM_CHECK(threw_again, "a second 1 MiB bind allocation on the full node throws too");
  // Other nodes are unaffected.
  const auto other = static_cast<node_id>(tiny == 0 ? 1 : 0);
  void* q = mem.allocate(mib, 64, other);
  std::memset(q, 1, mib);
  const auto hq = histogram(raw_page_nodes(q, mib));
  NUMA_VM_CHECK(hq.size() == 1 && hq.count(static_cast<int>(other)) == 1, "bind on node ", other,
                " still works: ", to_string(hq));
  mem.deallocate(q, mib, 64, other);

  // The bind map's shards on the full node run out: a store throws std::bad_alloc, and the
  // map keeps every entry stored before, with the failed store either done or not done.
  u64 stored = 1000;
  bool map_threw = false;
  u64 failed_key = 0;
  const u64 cap = 4000000;
  try {
    for (; stored < cap; ++stored) bind_map.store(stored, stored + 3);
  } catch (const std::bad_alloc&) {
    map_threw = true;
    failed_key = stored;
  }
  std::printf("  the bind map took %llu stores before std::bad_alloc\n",
              static_cast<unsigned long long>(stored));
  NUMA_VM_CHECK(map_threw, "a map on bind memory throws std::bad_alloc from store() once its ",
                "shards on the full node need memory (", stored, " stores made)");
  if (map_threw) {
    const bool done = bind_map.contains(failed_key);
    NUMA_VM_CHECK_EQ(bind_map.size(), std::size_t(stored + (done ? 1 : 0)),
                     "size() after the failed store (done: ", done, ")");
    bool all = true;
    for (u64 k = 0; k < stored; ++k) {
      auto v = bind_map.load(k);
      if (!v || *v != k + 3) all = false;
    }
    NUMA_VM_CHECK(all, "every one of the ", stored, " entries stored before loads its value");
    NUMA_VM_CHECK(bind_map.erase(0) && !bind_map.contains(0), "erase still works");
  }

  // The process is alive (we are here) and the map made before is intact and usable.
  bool intact = survivor.size() == 10000;
  for (u64 k = 0; k < 10000; ++k) {
    auto v = survivor.load(k);
    if (!v || *v != k + 1) intact = false;
  }
  NUMA_VM_CHECK(intact, "a map made before the exhaustion keeps all 10000 entries");
  for (u64 k = 10000; k < 20000; ++k) survivor.store(k, k + 1);
  NUMA_VM_CHECK_EQ(survivor.size(), std::size_t{20000}, "the map takes 10000 more stores");
  for (void* p : blocks) mem.deallocate(p, mib, 64, tiny);
}

/// preferred on the tiny node: twice its size succeeds; the overflow lies on other nodes and
/// verify_placement / stats() count it as elsewhere.
void check_preferred_overflow(const layout& want) {
  const auto tiny = static_cast<node_id>(want.tiny_node);
  numa_memory mem(numa_policy::preferred);
  std::vector<void*> blocks;
  const std::size_t total = want.node_mem_mib.at(tiny) * 2;
  for (std::size_t i = 0; i < total; ++i) {
    void* p = mem.allocate(mib, 64, tiny);
    std::memset(p, 0x44, mib);
    blocks.push_back(p);
  }
  NUMA_VM_CHECK_EQ(blocks.size(), total, "MiB allocated and touched with preferred on node ", tiny,
                   " (", want.node_mem_mib.at(tiny), " MiB)");
  std::vector<int> status;
  for (void* p : blocks) {
    std::vector<int> s = raw_page_nodes(p, mib);
    status.insert(status.end(), s.begin(), s.end());
  }
  const auto h = histogram(status);
  NUMA_VM_CHECK(h.count(static_cast<int>(tiny)) == 1 && h.size() >= 2 && h.count(-1) == 0,
                "the pages lie on node ", tiny, " and, the overflow, elsewhere: ", to_string(h));
  const page_placement pp = mem.verify_placement(tiny);
  NUMA_VM_CHECK(pp.verified && pp.on_node > 0 && pp.elsewhere > 0, "verify_placement(", tiny,
                ") counts the overflow as elsewhere: ", str(pp));

  // With the tiny node full, a map whose memory all goes to that node spills too, and its
  // stats() say so (its own chunks, not the blocks above).
  {
    map_of<u64, on_one_node>::options opts;
    opts.memory.target = tiny;
    map_of<u64, on_one_node> map(std::move(opts));
    for (u64 k = 0; k < 50000; ++k) map.store(k, k);
    const numamap::map_stats st = map.stats();
    std::printf("%s", st.to_table().c_str());
    std::size_t elsewhere = 0;
    for (const auto& ns : st.nodes) elsewhere += ns.pages.elsewhere;
    NUMA_VM_CHECK(elsewhere > 0,
                  "stats() of a map on the full node counts pages elsewhere: ", elsewhere);
    NUMA_VM_CHECK_EQ(map.size(), std::size_t{50000}, "that map holds its 50000 entries");
    auto v = map.load(49999);
    NUMA_VM_CHECK(v && *v == 49999, "and loads them");
  }
  for (void* p : blocks) mem.deallocate(p, mib, 64, tiny);
}

}  // namespace

void run_cpuset_map_section(const layout& want) {
  pin_to_cpu(want.allowed_cpus(0).at(0));
  run_section(cat("concurrent_map<u64,u64> with ", want.entries, " entries [", want.pass, "]"),
              [&] { check_map_u64(want); });
}

void run_placement_sections(const layout& want) {
  // Every allocation below is made by a thread on node 0.
  pin_to_cpu(want.allowed_cpus(0).at(0));
  run_section("numa_memory(preferred) on each node", [&] { check_numa_memory_per_node(want); });
  run_section(cat("concurrent_map<u64,u64> with ", want.entries, " entries"),
              [&] { check_map_u64(want); });
  run_section("out-of-line values (std::string, 64-byte struct)",
              [&] { check_map_out_of_line(want); });
  run_section("numa_memory(interleave)", [&] { check_interleave(want); });
  if (want.tiny_node >= 0) {
    run_section(cat("bind on tiny node ", want.tiny_node), [&] { check_bind_exhaustion(want); });
    run_section(cat("preferred on tiny node ", want.tiny_node),
                [&] { check_preferred_overflow(want); });
  }
}

}  // namespace numa_vm
