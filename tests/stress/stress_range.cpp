// SPEC "The map": "range visits no key twice; a key stored or deleted during the call may be
// seen with any value it had during the call, or not at all."
//
// Writers store, exchange and delete keys of a churn set while readers range over the map.
// Every value a writer stores is (key, sequence); before storing it the writer publishes the
// sequence as "stored up to". A reader that sees (key, seq) checks the key is a churn key and
// seq <= stored-up-to (read after the callback: it was published before the store). Keys of a
// stable set, stored before the readers start and never touched, must be seen every time
// with their exact value. Go's TestConcurrentRange does the same for sync.Map.
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "map_kinds.hpp"
#include "stress_util.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"
#include "watchdog.hpp"

using numamap_test::error_log;
using numamap_test::string_kind;
using numamap_test::u64_kind;

namespace {

constexpr std::uint64_t churn_keys = 256;
constexpr std::uint64_t stable_base = 100000;  // stable keys: stable_base + [0, stable_keys)
constexpr std::uint64_t stable_keys = 200;

// Values: key * 2^24 + seq.
std::uint64_t encode(std::uint64_t key, std::uint64_t seq) { return key << 24 | seq; }

template <class Kind>
void range_while_writing(const std::string& name, std::uint64_t writer_ops,
                         std::uint64_t ranges_per_reader) {
  constexpr std::size_t writers = 2;
  constexpr std::size_t readers = 2;
  const std::uint64_t seed = numamap_test::test_seed(name);
  INFO("seed " << seed << " (NUMAMAP_TEST_SEED=" << numamap_test::base_seed() << ")");
  numamap_test::watchdog dog(name, std::chrono::seconds(120));
  typename Kind::map_type m;
  for (std::uint64_t i = 0; i < stable_keys; ++i)
    m.store(Kind::key(stable_base + i), Kind::value(encode(stable_base + i, 7)));
  // Half the churn keys exist at the start.
  for (std::uint64_t k = 0; k < churn_keys; k += 2)
    m.store(Kind::key(k), Kind::value(encode(k, 0)));

  // Per key: the highest sequence any writer has begun to store (writers of one key share
  // the counter, so sequences are unique per key).
  std::unique_ptr<std::atomic<std::uint64_t>[]> stored_upto(
      new std::atomic<std::uint64_t>[churn_keys]);
  for (std::uint64_t k = 0; k < churn_keys; ++k) stored_upto[k].store(0);
  std::atomic<std::size_t> writers_done{0};
  error_log errors;
  std::atomic<std::uint64_t> total_ranges{0};

  numamap_test::run_threads(writers + readers, [&](std::size_t t) {
    std::mt19937_64 rng(seed + t);
    if (t < writers) {
      for (std::uint64_t i = 0; i < writer_ops && !errors.failed(); ++i) {
        const std::uint64_t k = rng() % churn_keys;
        // seq_cst fetch_add: the increment is ordered before the store below, so a reader
        // that sees the stored value and then reads stored_upto sees at least seq.
        const std::uint64_t seq = stored_upto[k].fetch_add(1) + 1;
        switch (rng() % 4) {
          case 0:
          case 1:
            m.store(Kind::key(k), Kind::value(encode(k, seq)));
            break;
          case 2:
            (void)m.exchange(Kind::key(k), Kind::value(encode(k, seq)));
            break;
          case 3:
            (void)m.erase(Kind::key(k));
            break;
        }
      }
      writers_done.fetch_add(1);
      return;
    }
    // Readers: range until the writers are done (at least ranges_per_reader times).
    std::uint64_t n = 0;
    while ((writers_done.load() < writers || n < ranges_per_reader) && !errors.failed()) {
      ++n;
      std::set<std::uint64_t> seen;
      std::vector<std::pair<std::uint64_t, std::uint64_t>> churn_seen;
      std::size_t stable_seen = 0;
      m.range([&](const typename Kind::key_type& key, const typename Kind::value_type& val) {
        const std::uint64_t k = Kind::key_id(key);
        const std::uint64_t v = Kind::value_id(val);
        if (!seen.insert(k).second) errors.add("range visited key " + std::to_string(k) + " twice");
        if (k >= stable_base && k < stable_base + stable_keys) {
          ++stable_seen;
          if (v != encode(k, 7))
            errors.add("stable key " + std::to_string(k) + " seen with value " + std::to_string(v));
        } else if (k < churn_keys) {
          if ((v >> 24) != k)
            errors.add("churn key " + std::to_string(k) + " seen with value " + std::to_string(v) +
                       " stored for key " + std::to_string(v >> 24));
          churn_seen.emplace_back(k, v & 0xffffff);
        } else {
          errors.add("range saw key " + std::to_string(k) + " that was never stored");
        }
        // A range is no snapshot: other threads keep writing while it runs.
      });
      if (stable_seen != stable_keys)
        errors.add("range saw " + std::to_string(stable_seen) + " of " +
                   std::to_string(stable_keys) + " keys present throughout the call");
      for (const auto& kv : churn_seen) {
        const std::uint64_t upto = stored_upto[kv.first].load();
        if (kv.second > upto)
          errors.add("churn key " + std::to_string(kv.first) + " seen with sequence " +
                     std::to_string(kv.second) + " before it was stored (stored up to " +
                     std::to_string(upto) + ")");
      }
    }
    total_ranges.fetch_add(n);
  });
  INFO(errors.text());
  REQUIRE(errors.count() == 0);
  CHECK(total_ranges.load() >= readers * ranges_per_reader);
  // Quiescent: stable keys intact; churn keys absent, or holding a value some writer stored
  // for that key (two writers race on a key, so which of the last two won is open).
  for (std::uint64_t i = 0; i < stable_keys; ++i) {
    auto v = m.load(Kind::key(stable_base + i));
    REQUIRE(v.has_value());
    CHECK(Kind::value_id(*v) == encode(stable_base + i, 7));
  }
  std::size_t churn_present = 0;
  for (std::uint64_t k = 0; k < churn_keys; ++k) {
    const auto v = m.load(Kind::key(k));
    if (!v) continue;
    ++churn_present;
    const std::uint64_t id = Kind::value_id(*v);
    INFO("churn key " << k << " holds " << id);
    CHECK((id >> 24) == k);
    CHECK((id & ((std::uint64_t{1} << 24) - 1)) <= stored_upto[k].load());
  }
  CHECK(m.size() == stable_keys + churn_present);  // no other key appeared
  CHECK(numamap_test::stats_entries(m) == m.size());
  CHECK(numamap_test::read_back<Kind>(m).size() == m.size());
}

}  // namespace

TEST_CASE("stress: range while writers run sees no key twice and only stored values (uint64)",
          "[stress][map.range]") {
  range_while_writing<u64_kind>("stress.range.u64", numamap_test::scaled(40000), 20);
}

TEST_CASE("stress: range while writers run sees no key twice and only stored values (string)",
          "[stress][map.range]") {
  range_while_writing<string_kind>("stress.range.string", numamap_test::scaled(25000), 20);
}
