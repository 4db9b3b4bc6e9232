// numamap/concurrent_map.hpp — the map: Go's sync.Map semantics, sharded, per-node memory.
//
// Keys go to shards by a mixed hash of the key (never by the calling thread: a key lives
// in exactly one shard, whoever asks). Shards are grouped per NUMA node: each shard and
// everything it allocates come from its node's memory through the `Memory` resource.
// Within a shard the algorithm is sync.Map's (detail/shard.hpp); memory that readers may
// still hold is reclaimed by epochs (detail/epoch.hpp), one domain per map.
//
// Thread safety: every member may be called concurrently with every other, except the
// destructor. `Hash`, `KeyEqual` and `Memory` are called concurrently from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "config.hpp"
#include "detail/epoch.hpp"
#include "detail/hash_mix.hpp"
#include "detail/shard.hpp"
#include "fwd.hpp"
#include "memory.hpp"
#include "stats.hpp"
#include "topology.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

template <class T, class = void>
struct is_transparent_t : std::false_type {};
template <class T>
struct is_transparent_t<T, std::void_t<typename T::is_transparent>> : std::true_type {};

template <bool Transparent>
struct key_arg_impl {
  template <class K, class Key>
  using type = Key;
};
template <>
struct key_arg_impl<true> {
  template <class K, class Key>
  using type = K;
};

/// Test-only access to the map's internals (tests/hitpath).
struct map_test_access;

}  // namespace detail

/// The largest `options::shards_per_node` accepted.
inline constexpr std::size_t max_shards_per_node = 4096;

/// The largest `options::insert_credits` accepted.
inline constexpr std::size_t max_insert_credits = 4096;

/// How lock-free lookups probe a shard's read table (`options::probe`, decisions.md D33,
/// D54).
enum class read_probe : unsigned char {
  /// Tags while the map's tags fit a quarter of the cache (`options::probe_cache_bytes`),
  /// slots for tables larger than that. The default.
  automatic,
  /// Always on the tag bytes, 16 slots at a time.
  tags,
  /// Always slot by slot over the entries' control words.
  slots,
};

template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>,
          class Memory = default_memory>
class concurrent_map {
  using shard_t = detail::shard<Key, Value, Memory>;
  static constexpr bool transparent =
      detail::is_transparent_t<Hash>::value && detail::is_transparent_t<KeyEqual>::value;
  // Heterogeneous lookup: with a transparent Hash and KeyEqual, K is deduced; otherwise the
  // parameter is a plain `const Key&`. (A member alias template, as in Abseil: unlike
  // std::conditional_t it leaves K deducible.)
  template <class K>
  using key_arg = typename detail::key_arg_impl<transparent>::template type<K, Key>;

 public:
  using key_type = Key;
  using mapped_type = Value;
  using hasher = Hash;
  using key_equal = KeyEqual;
  using memory_type = Memory;

  struct options {
    /// The machine layout shards are placed on; nullopt: topology::system().
    std::optional<topology> topo;
    /// Shards on each node that has cpus; 0: eight per cpu of the node, rounded up to a power
    /// of two. At most max_shards_per_node.
    std::size_t shards_per_node = 0;
    /// The node memory resource; the map keeps this copy.
    Memory memory{};
    /// How lookups probe the read tables. Answers do not depend on it, only speed.
    read_probe probe = read_probe::automatic;
    /// The cache `read_probe::automatic` sizes the tables against, in bytes, per core;
    /// 0: the L2 size the C library reports (sysconf), or 1 MiB where it reports none.
    std::size_t probe_cache_bytes = 0;
    /// New keys a thread may put into a shard's read table without the shard's lock, per
    /// batch: the thread takes a batch of slots under the lock, counted against the table's
    /// room at once, then claims them one by one with a CAS (decisions.md D37). A batch is
    /// also at most a 64th of the table's slots; slots a thread holds when the table is
    /// rebuilt are lost to that table. 0: every new key takes the shard's lock, as in Go's
    /// sync.Map. At most max_insert_credits.
    std::size_t insert_credits = 16;
  };

  /// A map on topology::system() with the default options.
  concurrent_map() : concurrent_map(options{}) {}

  /// Throws std::invalid_argument for options that make no sense (no node, too many
  /// shards), std::bad_alloc when the shards cannot be allocated.
  explicit concurrent_map(options opts, const Hash& hash = Hash(), const KeyEqual& eq = KeyEqual())
      : hash_(hash),
        eq_(eq),
        memory_(std::move(opts.memory)),
        topo_(opts.topo ? std::move(*opts.topo) : topology::system()) {
    if (opts.shards_per_node > max_shards_per_node) {
      throw std::invalid_argument("numamap::concurrent_map: options.shards_per_node = " +
                                  std::to_string(opts.shards_per_node) + " exceeds " +
                                  std::to_string(max_shards_per_node));
    }
    if (opts.insert_credits > max_insert_credits) {
      throw std::invalid_argument("numamap::concurrent_map: options.insert_credits = " +
                                  std::to_string(opts.insert_credits) + " exceeds " +
                                  std::to_string(max_insert_credits));
    }
    if (opts.probe != read_probe::automatic && opts.probe != read_probe::tags &&
        opts.probe != read_probe::slots) {
      throw std::invalid_argument("numamap::concurrent_map: options.probe = " +
                                  std::to_string(static_cast<unsigned>(opts.probe)) +
                                  " is no read_probe");
    }
    if (topo_.node_count() == 0) {
      throw std::invalid_argument("numamap::concurrent_map: the topology has no NUMA node");
    }
    // Shards go to the nodes that have cpus (memory-only nodes get none), or to every node
    // if none has cpus (a topology built without them).
    std::vector<std::pair<node_id, std::size_t>> plan;
    for (const node_info& n : topo_.nodes()) {
      if (!n.cpus.empty()) plan.emplace_back(n.id, shards_for(n, opts.shards_per_node));
    }
    if (plan.empty()) {
      for (const node_info& n : topo_.nodes())
        plan.emplace_back(n.id, shards_for(n, opts.shards_per_node));
    }
    std::size_t total = 0;
    for (const auto& p : plan) total += p.second;
    if (total > detail::max_shards) {
      throw std::invalid_argument("numamap::concurrent_map: " + std::to_string(total) +
                                  " shards in all exceeds " + std::to_string(detail::max_shards));
    }
    shard_count_ = total;
    const detail::tag_window tags = tag_window_for(opts, total);
    domain_ = std::make_unique<detail::epoch_domain>(total * detail::ctr_per_shard);
    reads_ = std::make_unique<detail::atomic<std::uintptr_t>[]>(total);
    shards_.reserve(total);
    try {
      for (const auto& p : plan) {
        for (std::size_t i = 0; i < p.second; ++i) {
          void* mem = memory_.allocate(sizeof(shard_t), alignof(shard_t), p.first);
          try {
            shards_.push_back(new (mem)
                                  shard_t(&memory_, domain_.get(), p.first, shards_.size(),
                                          &reads_[shards_.size()], tags, opts.insert_credits));
          } catch (...) {
            memory_.deallocate(mem, sizeof(shard_t), alignof(shard_t), p.first);
            throw;
          }
        }
      }
    } catch (...) {
      destroy_shards();
      throw;
    }
  }

  concurrent_map(const concurrent_map&) = delete;
  concurrent_map& operator=(const concurrent_map&) = delete;
  concurrent_map(concurrent_map&&) = delete;
  concurrent_map& operator=(concurrent_map&&) = delete;

  /// Frees every entry, value and table, retired or not. Not concurrent with other calls.
  ~concurrent_map() {
    domain_->drain();
    destroy_shards();
  }

  // ---- Go sync.Map, one for one ---------------------------------------------------------

  /// Load: the value stored for k, if any. Lock-free when k is in the read snapshot (then
  /// it writes no shared memory) or the shard has no dirty keys; otherwise takes the shard's
  /// lock. May throw what Hash, KeyEqual or Value's copy throw.
  template <class K = Key>
  NUMAMAP_ALWAYS_INLINE std::optional<Value> load(const key_arg<K>& k) const {
    if constexpr (shard_t::inline_values) {
      // The word is the value: copy it out after the lookup, straight into the result.
      // (Filling a local optional from the lookup's callback and returning it made GCC copy
      // the optional through memory, a store-forwarding stall that cost ~30% of a hit.)
      // The full path is a call of its own (load_word_full), so that w never has its
      // address taken here; it returns its answer in registers, and the two paths meet on
      // a bool and a word, not on an optional, which GCC merged through the stack.
      std::uint64_t w = 0;
      auto take = [&w](std::uint64_t word) { w = word; };
      const detail::read_outcome r = try_lookup(k, take);
      bool present = r == detail::read_outcome::hit;
      if (r == detail::read_outcome::undecided) {
        const found_word f = load_word_full<K>(k);
        present = f.present;
        w = f.word;
      }
      if (!present) return std::nullopt;
      return shard_t::value_of(w);
    } else {
      // The value lives in a node that only the pin keeps alive: copy it while pinned.
      std::optional<Value> out;
      lookup(k, [&](std::uint64_t w) { out.emplace(shard_t::value_of(w)); });
      return out;
    }
  }

  /// Store: sets k's value.
  void store(const Key& k, Value v) {
    const detail::hashed hv = hash_of(k);
    shard_t& s = shard_for(hv);
    auto g = domain_->pin();
    std::uint64_t prev = 0;
    if (swap_in(s, hv, k, std::move(v), g, prev)) s.retire_word(prev);
  }

  /// LoadOrStore: the existing value and true, or stores v and returns it and false.
  std::pair<Value, bool> load_or_store(const Key& k, Value v) {
    const detail::hashed hv = hash_of(k);
    shard_t& s = shard_for(hv);
    auto g = domain_->pin();
    auto r = s.load_or_store(
        hv, equal_to(k), key_maker(k), [&] { return s.make_word(std::move(v)); },
        /*produce_locked=*/false, g.record());
    return {shard_t::value_of(r.first), r.second};
  }

  /// LoadAndDelete: removes k, returning the value it had.
  template <class K = Key>
  std::optional<Value> load_and_delete(const key_arg<K>& k) {
    const detail::hashed hv = hash_of(k);
    shard_t& s = shard_for(hv);
    auto g = domain_->pin();
    std::uint64_t prev = 0;
    if (!s.remove(hv, equal_to(k), g.record(), prev)) return std::nullopt;
    return take(s, prev);
  }

  /// Delete: removes k; true if a value was there.
  template <class K = Key>
  bool erase(const key_arg<K>& k) {
    const detail::hashed hv = hash_of(k);
    shard_t& s = shard_for(hv);
    auto g = domain_->pin();
    std::uint64_t prev = 0;
    if (!s.remove(hv, equal_to(k), g.record(), prev)) return false;
    s.retire_word(prev);
    return true;
  }

  /// Swap: sets k's value, returning the previous one if any.
  std::optional<Value> exchange(const Key& k, Value v) {
    const detail::hashed hv = hash_of(k);
    shard_t& s = shard_for(hv);
    auto g = domain_->pin();
    std::uint64_t prev = 0;
    if (!swap_in(s, hv, k, std::move(v), g, prev)) return std::nullopt;
    return take(s, prev);
  }

  /// CompareAndSwap: if k's value == expected, sets it to desired and returns true.
  bool compare_and_swap(const Key& k, const Value& expected, Value desired) {
    const detail::hashed hv = hash_of(k);
    shard_t& s = shard_for(hv);
    auto g = domain_->pin();
    std::uint64_t prev = 0;
    const bool done = s.compare_and(
        hv, equal_to(k), matcher(expected), [&] { return s.make_word(std::move(desired)); },
        /*is_delete=*/false, g.record(), prev);
    if (done) s.retire_word(prev);
    return done;
  }

  /// CompareAndDelete: if k's value == expected, removes k and returns true.
  bool compare_and_delete(const Key& k, const Value& expected) {
    const detail::hashed hv = hash_of(k);
    shard_t& s = shard_for(hv);
    auto g = domain_->pin();
    std::uint64_t prev = 0;
    const bool done = s.compare_and(
        hv, equal_to(k), matcher(expected), [] { return std::uint64_t{0}; },
        /*is_delete=*/true, g.record(), prev);
    if (done) s.retire_word(prev);
    return done;
  }

  /// Range: calls f(const Key&, const Value&) for each key, stopping when f returns false
  /// (f may also return void). No key is visited twice; a key stored or deleted during the
  /// call may be seen with any value it had meanwhile, or not at all. No lock is held
  /// while f runs: f may call any member of this map.
  template <class F>
  void range(F&& f) const {
    for (shard_t* s : shards_) {
      auto g = domain_->pin();
      const bool go_on = s->for_each(g.record(), [&](const auto& e, std::uint64_t w) {
        return shard_t::with_value(w, [&](const Value& v) -> bool {
          if constexpr (std::is_void_v<std::invoke_result_t<F&, const Key&, const Value&>>) {
            f(e.key(), v);
            return true;
          } else {
            return static_cast<bool>(f(e.key(), v));
          }
        });
      });
      if (!go_on) return;
    }
  }

  /// Clear: removes every key (per key linearizable; not one atomic step for all keys).
  void clear() {
    {
      auto g = domain_->pin();
      // Every shard's lock, in index order (the only place that holds two), then everything
      // that may fail, then the changes: an exception leaves the map as it was.
      std::vector<std::unique_lock<detail::adaptive_mutex>> locks;
      std::vector<typename shard_t::table_t*> fresh;
      locks.reserve(shards_.size());
      fresh.reserve(shards_.size());
      for (shard_t* s : shards_) locks.emplace_back(s->mutex());
      try {
        detail::epoch_domain::reserve_retire(g.record(), 2 * shards_.size());
        for (shard_t* s : shards_) fresh.push_back(s->prepare_clear_locked());
      } catch (...) {
        for (std::size_t i = 0; i < fresh.size(); ++i) shards_[i]->discard_table(fresh[i]);
        throw;
      }
      for (std::size_t i = 0; i < shards_.size(); ++i) {
        shards_[i]->clear_locked(fresh[i], g.record());
      }
    }
    // Unpinned and unlocked: every table and entry just retired is freed now if no other
    // thread is pinned, not when this thread next retires (decisions.md D43).
    domain_->collect_unpinned();
  }

  // ---- C++ conveniences -----------------------------------------------------------------

  /// The existing value and true; or make()'s result, stored, and false. make() runs at
  /// most once per insertion, only when k is absent, with the shard's lock held: it must
  /// not call this map.
  template <class F>
  std::pair<Value, bool> load_or_compute(const Key& k, F&& make) {
    const detail::hashed hv = hash_of(k);
    shard_t& s = shard_for(hv);
    auto g = domain_->pin();
    auto r = s.load_or_store(
        hv, equal_to(k), key_maker(k), [&] { return s.make_word(make()); },
        /*produce_locked=*/true, g.record());
    return {shard_t::value_of(r.first), r.second};
  }

  /// Calls f(const Value&) on k's value without copying it (values of up to 8 bytes are
  /// read into a local); true if k was present.
  template <class F, class K = Key>
  bool visit(const key_arg<K>& k, F&& f) const {
    return lookup(k, [&](std::uint64_t w) { shard_t::with_value(w, f); });
  }

  /// Whether k is present.
  template <class K = Key>
  bool contains(const key_arg<K>& k) const {
    return lookup(k, [](std::uint64_t) {});
  }

  /// Live keys; exact when no writer runs concurrently.
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const shard_t* s : shards_) n += s->size();
    return n;
  }
  bool empty() const noexcept { return size() == 0; }
  std::size_t shard_count() const noexcept { return shards_.size(); }

  /// The map's topology (a copy of the one it was built on).
  const topology& map_topology() const noexcept { return topo_; }

  /// Counters per shard and per node, and where shard memory lies (see stats.hpp).
  map_stats stats() const {
    map_stats st;
    st.memory_resource = detail::memory_name(memory_);  // "user memory resource" if no name()
    st.memory_note = detail::memory_note(memory_);
    st.topology_source = std::string(topo_.source());
    for (const shard_t* s : shards_) {
      shard_stats x;
      x.index = s->index();
      x.node = s->node();
      x.entries = s->size();
      x.read_hits = domain_->sum_counter(s->counter(detail::ctr_hits));
      x.loads = x.read_hits + domain_->sum_counter(s->counter(detail::ctr_table_misses));
      x.stores = domain_->sum_counter(s->counter(detail::ctr_stores));
      x.unlocked_inserts = domain_->sum_counter(s->counter(detail::ctr_claims));
      x.misses = s->misses();
      x.promotions = s->promotions();
      x.rebuilds = s->rebuilds();
      x.bytes_allocated = s->bytes() + sizeof(shard_t);
      st.shards.push_back(x);
      node_stats* ns = nullptr;
      for (auto& n : st.nodes) {
        if (n.node == x.node) ns = &n;
      }
      if (ns == nullptr) {
        st.nodes.emplace_back();
        ns = &st.nodes.back();
        ns->node = x.node;
      }
      ns->shards += 1;
      ns->entries += x.entries;
      ns->bytes_allocated += x.bytes_allocated;
    }
    // A resource without verify_placement() gives page_placement{} (verified false).
    for (auto& n : st.nodes) n.pages = detail::memory_verify(memory_, n.node);
    return st;
  }

 private:
  friend struct detail::map_test_access;

  static std::size_t shards_for(const node_info& n, std::size_t requested) {
    if (requested != 0) return requested;
    const std::size_t cpus = n.cpus.empty() ? 1 : n.cpus.size();
    return std::min(detail::ceil_pow2(cpus * 8), max_shards_per_node);
  }

  /// The read tables probed on their tags (decisions.md D33, D54).
  static detail::tag_window tag_window_for(const options& o, std::size_t shards) {
    if (o.probe == read_probe::tags) return detail::tag_window::all();
    if (o.probe == read_probe::slots) return detail::tag_window::none();
    const std::size_t cache =
        o.probe_cache_bytes != 0 ? o.probe_cache_bytes : detail::l2_cache_bytes();
    return detail::tag_window::sized(cache, shards);
  }

  template <class K>
  detail::hashed hash_of(const K& k) const {
    return detail::hashed{detail::mix64(static_cast<std::uint64_t>(hash_(k)))};
  }
  shard_t& shard_for(const detail::hashed& hv) const noexcept {
    return *shards_[hv.shard(shard_count_)];
  }
  /// Keys the read path holds by value (in a register), not by reference: small and
  /// trivially copyable. equal_to captures them so, and load_word_full takes them so. Not
  /// arrays (a transparent map's string literal is a const char[N]): a parameter of array
  /// type decays to a pointer that drops the const, and the call would not compile.
  template <class K>
  static constexpr bool key_by_value =
      !std::is_array_v<K> && std::is_trivially_copyable_v<K> && sizeof(K) <= 2 * sizeof(void*);
  /// The probe's key test (detail::key_test: every probe of the map tests the stored hash
  /// first unless key_test_only<K>). A key_by_value key is captured by value:
  /// the probe then compares against a register, and the key need not live in memory (a
  /// captured reference made GCC spill it and reload it at every probed slot).
  template <class K>
  auto equal_to(const K& k) const {
    constexpr bool hash_first = !key_test_only<K>;
    if constexpr (key_by_value<K>) {
      auto eq = [this, k](const detail::entry<Key>& e) -> bool { return eq_(e.key(), k); };
      return detail::key_test<decltype(eq), hash_first>{eq};
    } else {
      auto eq = [this, &k](const detail::entry<Key>& e) -> bool { return eq_(e.key(), k); };
      return detail::key_test<decltype(eq), hash_first>{eq};
    }
  }
  static auto key_maker(const Key& k) {
    return [&k](auto&& construct) { return construct(k); };
  }
  static auto matcher(const Value& expected) {
    return [&expected](std::uint64_t w) {
      return shard_t::with_value(w, [&](const Value& v) -> bool { return v == expected; });
    };
  }

  /// Whether a probe for a K may compare keys without testing the stored hash first: K is
  /// the key type, kept in the slot, and equal means equal bits (std::equal_to of an
  /// integer, an enum or a pointer). The key test is then one compare, as the hash test
  /// is, and a hit no longer pays both (decisions.md D30).
  template <class K>
  static constexpr bool key_test_only = (std::is_same_v<K, Key> && detail::key_inline<Key> &&
                                         std::is_same_v<KeyEqual, std::equal_to<Key>> &&
                                         (std::is_integral_v<Key> || std::is_enum_v<Key> ||
                                          std::is_pointer_v<Key>));

  /// The read path's fast attempt (decisions.md D30): hash, pin (try_pin_outer), one load
  /// of the shard's view word, a probe, one seqlock read (shard::try_read). It makes no
  /// call, so the function it is inlined into needs few registers: every case it does not
  /// decide (this thread's first pin on the map, a pin already held, a writer on the
  /// entry, a miss in an amended view) returns `undecided` having counted nothing, and the
  /// caller starts over on the full path, out of line. on_word(word) runs pinned on a hit.
  template <class K, class F>
  NUMAMAP_ALWAYS_INLINE detail::read_outcome try_lookup(const K& k, F& on_word) const {
    const detail::hashed hv = hash_of(k);
    const std::size_t i = hv.shard(shard_count_);
    detail::thread_record* rec = nullptr;
    if (!domain_->try_pin_outer(rec)) return detail::read_outcome::undecided;
    const detail::epoch_domain::outer_guard g(rec);
    return shard_t::try_read(reads_[i], i, hv, equal_to(k), rec, on_word);
  }

  /// How the out-of-line read path takes a key: by value when key_by_value<K>, else by
  /// reference.
  template <class K>
  using passed_key = std::conditional_t<key_by_value<K>, K, const K&>;
  /// What load_word_full found: two words, returned in registers.
  struct found_word {
    std::uint64_t word;
    bool present;
  };
  /// load() for inline values when try_lookup did not decide. A small, trivially copyable
  /// key comes in a register (passed_key): a reference would make the caller keep the key
  /// in memory on its fast path too.
  template <class K>
  NUMAMAP_NOINLINE found_word load_word_full(passed_key<K> k) const {
    found_word f{0, false};
    auto take = [&f](std::uint64_t word) { f.word = word; };
    f.present = lookup_full(k, take);
    return f;
  }

  /// Finds k and calls on_word(word) while pinned; returns whether k was present.
  template <class K, class F>
  NUMAMAP_ALWAYS_INLINE bool lookup(const K& k, F&& on_word) const {
    const detail::read_outcome r = try_lookup(k, on_word);
    if (r != detail::read_outcome::undecided) return r == detail::read_outcome::hit;
    return lookup_full(k, on_word);
  }

  /// lookup() from scratch, for every case: pin() (nested or first), the read table with
  /// the seqlock read retried, and on a miss in an amended view the shard's lock.
  template <class K, class F>
  NUMAMAP_NOINLINE bool lookup_full(const K& k, F& on_word) const {
    const detail::hashed hv = hash_of(k);
    const std::size_t i = hv.shard(shard_count_);
    auto g = domain_->pin();
    bool amended = false;
    typename shard_t::snapshot snap{};
    if (!shard_t::find_in_read(reads_[i], i, hv, equal_to(k), g.record(), amended, snap)) {
      snap = shards_[i]->find_after_read_miss(hv, equal_to(k), g.record(), amended);
    }
    if (snap.state != detail::state_present) return false;
    on_word(snap.word);
    return true;
  }

  /// Store and Swap's common step (the caller pinned by g): makes v's word and swaps it
  /// in; returns whether k had a value, whose word is then in `prev` for the caller to
  /// retire or take. If the swap throws, the new word is freed and the map is unchanged.
  bool swap_in(shard_t& s, const detail::hashed& hv, const Key& k, Value v,
               const detail::epoch_domain::guard& g, std::uint64_t& prev) {
    const std::uint64_t w = s.make_word(std::move(v));
    try {
      return s.swap(hv, equal_to(k), key_maker(k), w, g.record(), prev);
    } catch (...) {
      s.free_word(w);
      throw;
    }
  }

  /// The value of a removed or replaced word; retires the word even if the copy throws.
  static std::optional<Value> take(shard_t& s, std::uint64_t w) {
    struct retire_on_exit {
      shard_t& s;
      std::uint64_t w;
      retire_on_exit(shard_t& shard, std::uint64_t word) noexcept : s(shard), w(word) {}
      retire_on_exit(const retire_on_exit&) = delete;
      retire_on_exit& operator=(const retire_on_exit&) = delete;
      retire_on_exit(retire_on_exit&&) = delete;
      retire_on_exit& operator=(retire_on_exit&&) = delete;
      ~retire_on_exit() { s.retire_word(w); }
    } r{s, w};
    return shard_t::value_of(w);
  }

  void destroy_shards() noexcept {
    for (shard_t* s : shards_) {
      const node_id n = s->node();
      s->~shard_t();
      memory_.deallocate(s, sizeof(shard_t), alignof(shard_t), n);
    }
    shards_.clear();
  }

  Hash hash_;
  KeyEqual eq_;
  mutable Memory memory_;
  topology topo_;
  std::unique_ptr<detail::epoch_domain> domain_;
  // Each shard's read-view word, side by side: a lookup loads its shard's word from here
  // without loading the shard. They are read by every lookup and written only by
  // promotions (rare), so they stay in every socket's cache; see docs/decisions.md.
  std::unique_ptr<detail::atomic<std::uintptr_t>[]> reads_;
  std::vector<shard_t*> shards_;
  std::size_t shard_count_ = 0;  // shards_.size(), kept apart: the hit path loads one word
};

namespace detail {
struct map_test_access {
  /// [begin, end) of the calling thread's epoch record for this map: the only memory a
  /// read-path hit may write.
  template <class Map>
  static std::pair<const void*, const void*> own_slot(const Map& m) {
    return m.domain_->own_slot();
  }
  /// load's two steps (the lock-free probe, then the miss path) with between() run in the
  /// middle, while pinned: lets a test put a promotion exactly there. Returns whether the
  /// key was found present.
  template <class Map, class K, class Between>
  static bool lookup_split(const Map& m, const K& k, Between&& between) {
    using shard_type = typename Map::shard_t;
    const detail::hashed hv = m.hash_of(k);
    const std::size_t i = hv.shard(m.shard_count_);
    auto g = m.domain_->pin();
    bool amended = false;
    typename shard_type::snapshot snap{};
    if (shard_type::find_in_read(m.reads_[i], i, hv, m.equal_to(k), g.record(), amended, snap)) {
      return snap.state == detail::state_present;
    }
    between();
    return m.shards_[i]->find_after_read_miss(hv, m.equal_to(k), g.record(), amended).state ==
           detail::state_present;
  }
  /// The read path's fast attempt alone (concurrent_map::try_lookup): what it decided
  /// for k, with `word` the word it read on a hit.
  template <class Map, class K>
  static read_outcome try_lookup(const Map& m, const K& k, std::uint64_t& word) {
    auto take = [&word](std::uint64_t w) { word = w; };
    return m.try_lookup(k, take);
  }
  /// Whether the map's probes for a K skip the stored hash (concurrent_map::key_test_only).
  template <class Map, class K>
  static constexpr bool key_test_only() {
    return Map::template key_test_only<K>;
  }
  /// Adds d to the calling thread's live-key count of shard i (ctr_size). A rebuild sizes
  /// its new table from that count, which in real runs lags the writers in flight; this
  /// lets a test make it lag by any amount.
  template <class Map>
  static void skew_size(Map& m, std::size_t i, std::int64_t d) {
    auto g = m.domain_->pin();
    detail::bump(g.record(), m.shards_.at(i)->counter(detail::ctr_size),
                 static_cast<std::uint64_t>(d));
  }
  /// The shard that holds k.
  template <class Map, class K>
  static std::size_t shard_of(const Map& m, const K& k) {
    return m.hash_of(k).shard(m.shard_count_);
  }
  /// Shard i's read table as its current view names it. Reads the writer-only count of full
  /// slots, so only while no writer runs.
  struct read_table_info {
    const void* table;
    std::size_t capacity;
    std::size_t used;
    bool amended;
    bool tags;  ///< readers probe it on its tags
  };
  template <class Map>
  static read_table_info read_table(const Map& m, std::size_t i) {
    using shard_type = typename Map::shard_t;
    auto g = m.domain_->pin();
    // (S1) acquire: as a reader's load of the view.
    const typename shard_type::view v{m.reads_[i].load(std::memory_order_acquire)};
    const auto* t = v.table();
    return {t, t->capacity(), t->used(), v.amended(), v.tags()};
  }
  /// Times a writer waiting for shard i's mutex copied chunks of a rebuild (D51).
  template <class Map>
  static std::uint64_t rebuild_help(const Map& m, std::size_t i) {
    return m.shards_.at(i)->helped();
  }
  /// Objects retired and not yet freed (exact when no thread runs).
  template <class Map>
  static std::size_t reclamation_pending(const Map& m) {
    return m.domain_->pending();
  }
  /// The map's thread records, and how many a thread holds (exact when no thread runs).
  template <class Map>
  static std::pair<std::size_t, std::size_t> thread_records(const Map& m) {
    return m.domain_->record_counts();
  }
};
}  // namespace detail

NUMAMAP_END_NAMESPACE
