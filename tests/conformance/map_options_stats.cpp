// SPEC "The map": construction ("std::invalid_argument for options that make no sense"),
// shard_count, stats ("per shard and per node counters"), and shards per topology node.
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "map_kinds.hpp"
#include "test_catch.hpp"

using numamap_test::checked_memory;
using numamap_test::stats_entries;

namespace {
using u64_map = numamap::concurrent_map<std::uint64_t, std::uint64_t>;

/// A topology from plain data (every build has it, hwloc or not): nodes 0..nodes-1, each with
/// `cpus_per_node` cpus numbered in order and 1 GiB, `nodes_per_package` nodes per package.
numamap::topology plain_topology(unsigned nodes, unsigned cpus_per_node,
                                 unsigned nodes_per_package) {
  numamap::detail::raw_topology raw;
  raw.source = "synthetic";
  for (unsigned n = 0; n < nodes; ++n) {
    raw.nodes.push_back({n, n / nodes_per_package, std::uint64_t{1} << 30});
    for (unsigned c = 0; c < cpus_per_node; ++c) raw.cpus.emplace_back(n * cpus_per_node + c, n);
  }
  return numamap::detail::topology_access::from_raw(raw);
}
}  // namespace

TEST_CASE("map(options): options that make no sense throw std::invalid_argument",
          "[conformance][map.options]") {
  for (std::size_t bad : {std::size_t{4097}, std::size_t{65537}, std::size_t{1} << 40}) {
    CAPTURE(bad);
    u64_map::options o;
    o.shards_per_node = bad;
    CHECK_THROWS_AS(u64_map(o), std::invalid_argument);
  }
  // Sensible values construct a working map.
  for (std::size_t good : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{3},
                           std::size_t{8}, std::size_t{4096}}) {
    CAPTURE(good);
    u64_map::options o;
    o.shards_per_node = good;
    u64_map m(o);
    const std::size_t nodes = numamap::topology::system().node_count();
    CHECK(m.shard_count() >= nodes);
    CHECK(m.shard_count() % nodes == 0);
    if (good != 0) CHECK(m.shard_count() >= good * nodes);
    if (good != 0 && (good & (good - 1)) == 0) CHECK(m.shard_count() == good * nodes);
    for (std::uint64_t i = 0; i < 100; ++i) m.store(i, i);
    CHECK(m.size() == 100);
    CHECK(stats_entries(m) == 100);
  }
}

TEST_CASE("map(options): each refusal names the option, its value and the limit",
          "[conformance][map.options]") {
  auto message_of = [](const u64_map::options& o) -> std::string {
    try {
      u64_map m(o);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "(no exception)";
  };
  {
    u64_map::options o;
    o.shards_per_node = 4097;
    CHECK(message_of(o) == "numamap::concurrent_map: options.shards_per_node = 4097 exceeds 4096");
  }
  {
    u64_map::options o;
    o.insert_credits = numamap::max_insert_credits + 1;
    CHECK(message_of(o) == "numamap::concurrent_map: options.insert_credits = 4097 exceeds 4096");
    o.insert_credits = numamap::max_insert_credits;  // the limit itself is accepted
    CHECK(message_of(o) == "(no exception)");
  }
  {
    // 17 nodes with a cpu each, 4096 shards on each: 69632 shards, past the 65536 that a
    // key's 16 shard bits address. Refused before anything is allocated for them.
    u64_map::options o;
    o.topo = plain_topology(17, 1, 1);
    o.shards_per_node = 4096;
    CHECK(message_of(o) == "numamap::concurrent_map: 69632 shards in all exceeds 65536");
    o.shards_per_node = 1;  // the same topology with fewer shards works
    u64_map m(o);
    CHECK(m.shard_count() == 17);
    m.store(1, 2);
    CHECK(m.load(1) == std::optional<std::uint64_t>(2));
  }
  // A map is not copyable or movable (SPEC: operator= may not run concurrently; numamap has
  // none).
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<u64_map>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<u64_map>);
  STATIC_REQUIRE_FALSE(std::is_move_constructible_v<u64_map>);
}

TEST_CASE("map.shard_count and map.stats: per-shard entries add up to size()",
          "[conformance][map.stats][map.shard_count]") {
  u64_map m;
  CHECK(m.shard_count() >= 1);
  auto st = m.stats();
  CHECK(st.shards.size() == m.shard_count());
  CHECK_FALSE(st.nodes.empty());
  CHECK(st.topology_source == std::string(numamap::topology::system().source()));
  CHECK_FALSE(st.memory_resource.empty());

  for (std::uint64_t i = 0; i < 5000; ++i) m.store(i, i);
  for (std::uint64_t i = 0; i < 5000; i += 5) m.erase(i);
  for (int r = 0; r < 3; ++r)
    for (std::uint64_t i = 0; i < 5000; ++i) (void)m.load(i);
  st = m.stats();
  REQUIRE(st.shards.size() == m.shard_count());
  std::size_t entries = 0;
  std::size_t node_shards = 0;
  std::size_t node_entries = 0;
  std::set<std::size_t> indices;
  std::set<numamap::node_id> node_ids;
  for (const auto& n : st.nodes) {
    node_shards += n.shards;
    node_entries += n.entries;
    node_ids.insert(n.node);
  }
  std::uint64_t loads = 0;
  std::uint64_t promotions = 0;
  for (const auto& s : st.shards) {
    entries += s.entries;
    indices.insert(s.index);
    CHECK(node_ids.count(s.node) == 1);
    loads += s.loads;
    promotions += s.promotions;
    CHECK(s.read_hits <= s.loads);
  }
  CHECK(entries == m.size());
  CHECK(entries == 4000);
  CHECK(node_entries == 4000);
  CHECK(node_shards == m.shard_count());
  CHECK(indices.size() == m.shard_count());
  CHECK(loads >= 15000);  // the counters count (approximate only while threads run)
  CHECK(promotions >= 1);
  CHECK_FALSE(st.to_table().empty());
  CHECK(st.to_json().find('{') != std::string::npos);
  // Keys go to shards by hash: with 4000 keys every shard of a small map holds some.
  if (m.shard_count() <= 64) {
    for (const auto& s : st.shards) CHECK(s.entries > 0);
  }
  m.clear();
  CHECK(stats_entries(m) == 0);
}

TEST_CASE("map.stats: names the memory resource (its name() when it has one)",
          "[conformance][map.stats]") {
  // NOLINTBEGIN(modernize-use-transparent-functors): std::equal_to<Key> keeps key_test_only
  using map_t = numamap::concurrent_map<std::uint64_t, std::string, std::hash<std::uint64_t>,
                                        std::equal_to<std::uint64_t>, checked_memory>;
  // NOLINTEND(modernize-use-transparent-functors)
  checked_memory mem;
  map_t::options o;
  o.memory = mem;
  {
    map_t m(o);
    for (std::uint64_t i = 0; i < 100; ++i) m.store(i, std::string(40, 'x'));
    auto st = m.stats();
    CHECK(st.memory_resource == "checked_memory");
    std::size_t bytes = 0;
    for (const auto& s : st.shards) bytes += s.bytes_allocated;
    CHECK(bytes > 0);
    CHECK(bytes <= mem.ledger().live_bytes.load());
    CHECK(mem.ledger().live_bytes.load() > 0);
  }
  CHECK(mem.ledger().live_bytes.load() == 0);
  CHECK(mem.ledger().live_blocks() == 0);
  INFO(mem.ledger().error_text());
  CHECK(mem.ledger().errors.load() == 0);
}

TEST_CASE("map.stats: a resource without name(), note() or verify_placement() gets defaults",
          "[conformance][map.stats]") {
  static_assert(numamap::is_node_memory_v<numamap_test::minimal_memory>);
  // NOLINTBEGIN(modernize-use-transparent-functors): std::equal_to<Key> keeps key_test_only
  using map_t = numamap::concurrent_map<std::uint64_t, std::uint64_t, std::hash<std::uint64_t>,
                                        std::equal_to<std::uint64_t>, numamap_test::minimal_memory>;
  // NOLINTEND(modernize-use-transparent-functors)
  map_t m;
  for (std::uint64_t i = 0; i < 1000; ++i) m.store(i, i);
  const numamap::map_stats st = m.stats();
  CHECK(st.memory_resource == "user memory resource");
  CHECK(st.memory_note.empty());
  REQUIRE_FALSE(st.nodes.empty());
  for (const auto& n : st.nodes) {
    CHECK_FALSE(n.pages.verified);
    CHECK(n.pages.sampled == 0);
    CHECK(n.bytes_allocated > 0);
  }
  CHECK(st.to_table().find("memory: user memory resource\n") != std::string::npos);
}

#if NUMAMAP_HAVE_HWLOC
TEST_CASE("map(options{topology::synthetic}): shards on every node of the topology",
          "[conformance][map.options][topology]") {
  // NOLINTBEGIN(modernize-use-transparent-functors): std::equal_to<Key> keeps key_test_only
  using map_t = numamap::concurrent_map<std::uint64_t, std::uint64_t, std::hash<std::uint64_t>,
                                        std::equal_to<std::uint64_t>, numamap::heap_memory>;
  // NOLINTEND(modernize-use-transparent-functors)
  map_t::options o;
  o.topo = numamap::topology::synthetic("pack:2 numa:2 core:2 pu:1");
  REQUIRE(o.topo->node_count() == 4);
  map_t m(o);
  for (std::uint64_t i = 0; i < 4000; ++i) m.store(i, i);
  auto st = m.stats();
  CHECK(st.topology_source == "synthetic");
  REQUIRE(st.nodes.size() == 4);
  std::set<numamap::node_id> ids;
  std::size_t shards = 0;
  for (const auto& n : st.nodes) {
    ids.insert(n.node);
    CHECK(n.shards >= 1);
    CHECK(n.entries > 0);  // keys go to shards by hash, so every node gets some
    shards += n.shards;
  }
  CHECK(ids == std::set<numamap::node_id>{0, 1, 2, 3});
  CHECK(shards == m.shard_count());
  CHECK(m.shard_count() % 4 == 0);
  CHECK(stats_entries(m) == 4000);
  for (std::uint64_t i = 0; i < 4000; ++i) REQUIRE(*m.load(i) == i);
}

TEST_CASE("map(options{topology::synthetic}) with the default memory resource works",
          "[conformance][map.options][topology]") {
  // Nodes 1..3 do not exist on a one-node machine: the default resource must still give
  // memory (numa_memory's default mode is preferred, which falls back) and say so.
  u64_map::options o;
  o.topo = numamap::topology::synthetic("pack:2 numa:2 core:2 pu:1");
  o.shards_per_node = 2;
  u64_map m(o);
  CHECK(m.shard_count() == 8);
  for (std::uint64_t i = 0; i < 2000; ++i) m.store(i, i * 2);
  for (std::uint64_t i = 0; i < 2000; ++i) REQUIRE(*m.load(i) == i * 2);
  CHECK(m.stats().nodes.size() == 4);
}
#endif

TEST_CASE("map placement: every allocation asks the resource for its shard's node",
          "[conformance][map.options][topology]") {
  // SPEC "Memory placement": each shard, and every allocation the shard makes (tables,
  // entries, values stored out of line), comes from the memory of the shard's node. A
  // four-node topology (plain data: every build has it) and a resource that counts bytes
  // per node: the bytes it holds for each node are exactly what that node's shards hold,
  // so no allocation went to another node.
  using memory_t = numamap::counting_memory<numamap::heap_memory>;
  using map_t = numamap::concurrent_map<std::string, std::string, std::hash<std::string>,
                                        std::equal_to<>, memory_t>;
  memory_t mem;
  {
    map_t::options o;
    o.topo = plain_topology(4, 2, 2);
    o.shards_per_node = 2;
    o.memory = mem;
    map_t m(o);
    auto check_nodes = [&](const char* when) {
      INFO(when);
      const numamap::map_stats st = m.stats();
      REQUIRE(st.nodes.size() == 4);
      std::size_t sum = 0;
      for (const auto& n : st.nodes) {
        INFO("node " << n.node);
        CHECK(n.bytes_allocated == mem.live_bytes(n.node));
        CHECK(n.bytes_allocated > 0);
        sum += n.bytes_allocated;
      }
      CHECK(sum == mem.live_bytes());
    };
    check_nodes("empty");
    // Long keys and values: both live out of line, in nodes of the shard's node.
    const std::string pad(40, 'x');
    for (int i = 0; i < 3000; ++i) m.store(pad + std::to_string(i), pad + std::to_string(i));
    for (int round = 0; round < 3; ++round)  // promote: the read tables are rebuilt
      for (int i = 0; i < 3000; ++i) REQUIRE(m.load(pad + std::to_string(i)).has_value());
    for (int i = 0; i < 3000; i += 3) m.erase(pad + std::to_string(i));
    m.clear();
    for (int i = 0; i < 500; ++i) m.store(pad + std::to_string(i), std::to_string(i));
    check_nodes("after stores, promotions, erases and a clear");
  }
  CHECK(mem.live_bytes() == 0);  // and the destructor gave every node's bytes back
}

TEST_CASE(
    "map.stats: a new key goes into a table with room, so misses on absent keys stay "
    "lock-free (design.md, direct insertion)",
    "[conformance][map.stats]") {
  u64_map::options o;
  o.shards_per_node = 1;
  u64_map m(o);
  const auto shard_misses = [&] {
    std::uint64_t n = 0;
    std::uint64_t promotions = 0;
    for (const auto& s : m.stats().shards) {
      n += s.misses;
      promotions += s.promotions;
    }
    return std::make_pair(n, promotions);
  };
  // The first keys fill the dirty map (the shard has no table yet) until a promotion builds
  // one; loads of the present keys trigger it if the growth rule did not.
  for (std::uint64_t i = 0; i < 1000; ++i) m.store(i, i);
  for (std::uint64_t i = 0; i < 1000; ++i) REQUIRE(m.load(i) == i);
  for (std::uint64_t i = 0; i < 1000; ++i) REQUIRE(m.load(i) == i);
  const auto before = shard_misses();
  REQUIRE(before.second >= 1);  // the shard has a real table now
  // New keys while the table has room, each followed by loads of absent keys: with the new
  // key in the dirty map the view would be amended and every absent load would take the
  // mutex and count a miss (and soon promote). Inserted into the table, nothing is missed.
  std::size_t fresh = 0;
  for (std::uint64_t i = 1000; i < 1100; ++i) {
    m.store(i, i);
    ++fresh;
    for (std::uint64_t a = 0; a < 8; ++a) CHECK_FALSE(m.load(1'000'000 + i * 8 + a).has_value());
    CHECK(m.load(i) == i);  // on the lock-free path at once
  }
  const auto after = shard_misses();
  CHECK(after.first == before.first);
  CHECK(after.second == before.second);  // no promotion was needed
  CHECK(m.size() == 1000 + fresh);
  for (std::uint64_t i = 0; i < 1100; ++i) CHECK(m.load(i) == i);
}
