// numamap/detail/shard.hpp — one shard: Go's sync.Map, with an O(dirty) promotion.
//
// The design, field by field, follows Go's src/sync/map.go (up to Go 1.23):
//
// read_   The read snapshot: an immutable view {table, amended} published through one
//         atomic pointer. Readers load it (acquire) and probe its table without a lock and
//         without writing shared memory. `amended` says the dirty map holds keys the table
//         lacks. A view is replaced only with mu_ held.
// dirty_  The dirty map: new keys that found no room in the read table, guarded by mu_.
//         Unlike Go, it holds only NEW keys (a delta), not a copy of the read map: Go copies
//         every live entry of the read map into a fresh dirty map on the first store after a
//         promotion, O(n) per cycle; here that copy does not exist. And while the current
//         table has a free slot (load <= 3/4), a new key goes straight into it (an append of
//         one key, see insert_new_locked), so the dirty map is used only while the table is
//         full or the shard has none yet.
// misses_ Lookups that had to take mu_ and look in dirty_ since the last promotion.
//         Guarded by mu_, so it shares a line with nothing readers touch.
//
// Promotion (mu_ held), when misses_ reaches the dirty map's size (Go's rule) or when the
// dirty map grows past an eighth of the table (so new keys reach the lock-free path soon and
// deleted entries do not pile up when nobody loads):
// - append: if the table has room (load <= 3/4) and few deleted entries, the dirty entries
//   are inserted into the free slots of the CURRENT table and a new view {table, false} is
//   published. Readers that probe the table meanwhile may see the new slots or not; both
//   are right, because their older view says amended and sends a miss to mu_. Cost:
//   O(|dirty|), no copy of the table.
// - rebuild: otherwise a new table sized for the live entries is built; deleted entries are
//   expunged (so no lock-free store can revive them) and left out; the view is published;
//   the old table and the expunged entries are retired. O(n), amortised like a hash table
//   resize: it happens when the table doubles or when deletions outnumber live entries.
// Invariants: an entry lives in exactly one of {current table, dirty map}; the current table
// never holds an expunged entry; dirty-map entries are present and change only under mu_;
// a table holds at most one entry per key; a table only gains slots while it is current.
//
// Counters: misses, promotions and rebuilds are written under mu_ (relaxed atomics so
// stats() may read them); the live-key count and the byte count sit on their own lines;
// per-thread load/hit/store counts live in the calling thread's epoch record (epoch.hpp),
// the only memory a read-path hit writes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>

#include "../config.hpp"
#include "../fwd.hpp"
#include "atomic.hpp"
#include "cacheline.hpp"
#include "entry.hpp"
#include "epoch.hpp"
#include "hash_mix.hpp"
#include "table.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

/// How a Value is kept in an entry's word.
template <class Value>
inline constexpr bool value_inline = std::is_trivially_copyable_v<Value> &&
                                     sizeof(Value) <= sizeof(std::uint64_t) &&
                                     alignof(Value) <= alignof(std::uint64_t);

/// Indices of the per-thread counters, per shard.
/// Loads = hits + table misses: a hit bumps one counter.
enum : std::size_t { ctr_hits = 0, ctr_table_misses = 1, ctr_stores = 2, ctr_per_shard = 3 };

NUMAMAP_ALWAYS_INLINE void bump(thread_record* r, std::size_t i) noexcept {
  auto& c = r->counters()[i];
  // Owner-only counter: a load and a store, no read-modify-write; relaxed because stats()
  // only sums them.
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

template <class Key, class Value, class Memory>
class shard {
 public:
  using entry_t = entry<Key>;
  using table_t = entry_table<entry_t>;
  /// The read snapshot {table, amended} packed in one word: the table pointer (bits 3..47;
  /// tables are 8-byte aligned and below 2^48), the amended flag in bit 0, and log2 of the
  /// table's capacity in bits 56..63, so a probe needs no load of the table's header.
  /// Publishing a view is one store.
  struct view {
    std::uintptr_t bits;
    table_t* table() const noexcept {
      return reinterpret_cast<table_t*>(bits & pointer_mask & ~std::uintptr_t{7});
    }
    bool amended() const noexcept { return (bits & 1U) != 0; }
    std::size_t mask() const noexcept { return (std::size_t{1} << (bits >> 56)) - 1; }
    template <class Eq>
    NUMAMAP_ALWAYS_INLINE entry_t* find(const hashed& hv, const Eq& eq) const {
      return table_t::find_masked(table(), mask(), hv.bucket_bits(), hv.tag(), eq);
    }
  };
  struct value_node {
    Value v;
  };
  static constexpr bool inline_values = value_inline<Value>;

  /// `read` is the shard's read-view word; the map keeps these words side by side (see
  /// concurrent_map), so a lookup reaches the table without loading the shard.
  shard(Memory* mem, epoch_domain* dom, node_id node, std::size_t index,
        detail::atomic<std::uintptr_t>* read)
      : mem_(mem), dom_(dom), node_(node), index_(index), read_(*read) {
    dirty_ = new_table(table_t::min_capacity);
    read_.store(pack(empty_table(), false), std::memory_order_relaxed);  // before sharing
  }

  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  /// Frees everything reachable. Retired objects are the domain's (freed before this).
  ~shard() {
    const view v = load_view(std::memory_order_relaxed);
    auto free_all = [this](std::uint64_t w) {
      entry_t* e = slot_entry<entry_t>(w);
      const auto s = e->read();
      if (s.state == state_present) free_word(s.word);
      free_entry(e);
    };
    v.table()->for_each(free_all);
    dirty_->for_each(free_all);
    free_table(v.table());
    free_table(dirty_);
  }

  node_id node() const noexcept { return node_; }
  std::size_t index() const noexcept { return index_; }

  // ---- values -------------------------------------------------------------------------

  /// Makes the word for a value. Out of line, allocates a node (may throw; then nothing
  /// is allocated). The word belongs to the caller until published.
  template <class... A>
  std::uint64_t make_word(A&&... args) {
    if constexpr (inline_values) {
      const Value v(std::forward<A>(args)...);
      std::uint64_t w = 0;
      std::memcpy(&w, &v, sizeof(Value));
      return w;
    } else {
      void* p = alloc(sizeof(value_node), alignof(value_node));
      try {
        new (p) value_node{Value(std::forward<A>(args)...)};
      } catch (...) {
        dealloc(p, sizeof(value_node), alignof(value_node));
        throw;
      }
      return reinterpret_cast<std::uintptr_t>(p);
    }
  }

  /// Calls f(const Value&) on the value a word holds. The caller is pinned.
  template <class F>
  static decltype(auto) with_value(std::uint64_t w, F&& f) {
    if constexpr (inline_values) {
      alignas(Value) unsigned char buf[sizeof(Value)];
      std::memcpy(buf, &w, sizeof(Value));
      return f(*std::launder(reinterpret_cast<const Value*>(buf)));
    } else {
      return f(reinterpret_cast<const value_node*>(static_cast<std::uintptr_t>(w))->v);
    }
  }

  static Value value_of(std::uint64_t w) {
    return with_value(w, [](const Value& v) { return v; });
  }

  /// Frees a word never published (or no longer reachable by anyone).
  void free_word(std::uint64_t w) noexcept {
    if constexpr (!inline_values) {
      auto* n = reinterpret_cast<value_node*>(static_cast<std::uintptr_t>(w));
      n->~value_node();
      dealloc(n, sizeof(value_node), alignof(value_node));
    } else {
      (void)w;
    }
  }

  // ---- operations (the caller is pinned; `rec` is its epoch record) -------------------

  /// The read path's first step, done by the map without touching the shard: (S1) loads
  /// the view, the table is probed, a hit is counted. Returns null on a table miss.
  template <class Eq>
  NUMAMAP_ALWAYS_INLINE static entry_t* find_in_read(const detail::atomic<std::uintptr_t>& read,
                                                     std::size_t index, const hashed& hv,
                                                     const Eq& eq, thread_record* rec) {
    // (S1) acquire: pairs with (S3); the table, its slots and their entries, filled before
    //      the view was published, are visible.
    const view v{read.load(std::memory_order_acquire)};
    entry_t* e = v.find(hv, eq);
    if (e != nullptr) bump(rec, index * ctr_per_shard + ctr_hits);
    return e;
  }

  /// After find_in_read missed: counts the miss and, if the view is amended, looks again
  /// under mu_, in the table and then in the dirty map.
  template <class Eq>
  NUMAMAP_NOINLINE entry_t* find_after_read_miss(const hashed& hv, const Eq& eq,
                                                 thread_record* rec) {
    bump(rec, counter(ctr_table_misses));
    const view v = load_view(std::memory_order_acquire);  // as (S1)
    if (!v.amended()) return nullptr;
    std::lock_guard<adaptive_mutex> lk(mu_);
    return find_locked(hv, eq, /*count_miss=*/true);
  }

  /// Store: sets the key to word w (w is consumed in every outcome but an exception).
  /// Returns the previous present word via `prev` (retired by the caller), or false.
  template <class Eq, class MakeKey>
  bool swap(const hashed& hv, const Eq& eq, const MakeKey& make_key, std::uint64_t w,
            thread_record* rec, std::uint64_t& prev) {
    reserve_retire(rec, 2);
    const view v = load_view(std::memory_order_acquire);  // as (S1)
    if (entry_t* e = v.find(hv, eq)) {
      auto l = e->lock();
      if (l.state() != state_expunged) {
        e->unlock(l, w, state_present);
        bump(rec, counter(ctr_stores));
        return settle_swap(l, prev);
      }
      e->unlock_unchanged(l);
    }
    std::lock_guard<adaptive_mutex> lk(mu_);
    if (entry_t* e = find_locked(hv, eq, /*count_miss=*/false)) {
      auto l = e->lock();  // not expunged: see the invariants
      e->unlock(l, w, state_present);
      bump(rec, counter(ctr_stores));
      return settle_swap(l, prev);
    }
    insert_new_locked(hv, make_key, w);
    bump(rec, counter(ctr_stores));
    return false;
  }

  /// LoadOrStore and LoadOrCompute. If present, returns {its word, true}. Otherwise makes
  /// a word with produce() (called at most once) and stores it, returning {that word,
  /// false}. With produce_locked, produce() runs only with mu_ held, so it runs at most once
  /// per insertion.
  template <class Eq, class MakeKey, class Produce>
  std::pair<std::uint64_t, bool> load_or_store(const hashed& hv, const Eq& eq,
                                               const MakeKey& make_key, Produce&& produce,
                                               bool produce_locked, thread_record* rec) {
    reserve_retire(rec, 1);
    const view v = load_view(std::memory_order_acquire);  // as (S1)
    entry_t* e = v.find(hv, eq);
    if (e != nullptr) {
      const auto s = e->read();
      if (s.state == state_present) return {s.word, true};
      if (s.state == state_deleted && !produce_locked) {
        const std::uint64_t w = produce();
        const auto r = try_load_or_store(e, w, rec);
        if (r.first == 2) return {w, false};
        if (r.first == 1) {
          free_word(w);
          return {r.second, true};
        }
        return store_new_or_load(hv, eq, make_key, produce, &w, rec);  // expunged meanwhile
      }
    }
    return store_new_or_load(hv, eq, make_key, produce, nullptr, rec);
  }

  /// Delete / LoadAndDelete: removes the key; returns its present word via `prev`
  /// (retired by the caller) or false.
  template <class Eq>
  bool remove(const hashed& hv, const Eq& eq, thread_record* rec, std::uint64_t& prev) {
    reserve_retire(rec, 2);
    view v = load_view(std::memory_order_acquire);  // as (S1)
    entry_t* e = v.find(hv, eq);
    if (e == nullptr && v.amended()) {
      std::lock_guard<adaptive_mutex> lk(mu_);
      v = load_view(std::memory_order_relaxed);  // (S2) relaxed: mu_ orders writers of read_
      e = v.find(hv, eq);
      if (e == nullptr && v.amended()) {
        e = dirty_->find(hv.bucket_bits(), hv.tag(), eq);
        if (e != nullptr) {
          prev = drop_dirty_locked(e);
          miss_locked();
          return true;
        }
        miss_locked();
      }
    }
    if (e == nullptr) return false;
    auto l = e->lock();
    if (l.state() != state_present) {
      e->unlock_unchanged(l);
      return false;
    }
    e->unlock(l, 0, state_deleted);
    size_->fetch_sub(1, std::memory_order_relaxed);  // a statistic of presence; see size()
    prev = l.word;
    return true;
  }

  /// CompareAndSwap / CompareAndDelete. `matches(word)` compares the current value with
  /// the expected one (outside any lock); `produce()` makes the new word, or the delete
  /// happens when `is_delete`. Returns whether it swapped; the replaced word via `prev`.
  template <class Eq, class Matches, class Produce>
  bool compare_and(const hashed& hv, const Eq& eq, const Matches& matches, Produce&& produce,
                   bool is_delete, thread_record* rec, std::uint64_t& prev) {
    reserve_retire(rec, 2);
    view v = load_view(std::memory_order_acquire);  // as (S1)
    entry_t* e = v.find(hv, eq);
    if (e == nullptr) {
      if (!v.amended()) return false;
      std::lock_guard<adaptive_mutex> lk(mu_);
      v = load_view(std::memory_order_relaxed);  // as (S2)
      e = v.find(hv, eq);
      if (e == nullptr) {
        e = v.amended() ? dirty_->find(hv.bucket_bits(), hv.tag(), eq) : nullptr;
        if (e == nullptr) return false;
        // A dirty entry changes only under mu_, which we hold: compare, then act. The miss
        // is counted last: it may promote, moving e out of the dirty map.
        const auto s = e->read();
        bool done = false;
        if (matches(s.word)) {
          if (is_delete) {
            prev = drop_dirty_locked(e);
          } else {
            const std::uint64_t w = produce();
            auto l = e->lock();
            e->unlock(l, w, state_present);
            bump(rec, counter(ctr_stores));
            prev = l.word;
          }
          done = true;
        }
        miss_locked();
        return done;
      }
    }
    // e is (or was) in a read table: compare optimistically, then swap if unchanged.
    std::uint64_t w = 0;
    bool have_w = false;
    for (;;) {
      const auto s = e->read();
      if (s.state != state_present || !matches(s.word)) break;
      if (!is_delete && !have_w) {
        w = produce();
        have_w = true;
      }
      auto l = e->lock();
      if (l.state() == state_present && l.word == s.word) {
        if (is_delete) {
          e->unlock(l, 0, state_deleted);
          size_->fetch_sub(1, std::memory_order_relaxed);
        } else {
          e->unlock(l, w, state_present);
          bump(rec, counter(ctr_stores));
        }
        prev = l.word;
        return true;
      }
      e->unlock_unchanged(l);  // changed meanwhile: look again
    }
    if (have_w) free_word(w);
    return false;
  }

  /// Visits every present key of the read table after promoting the dirty map. f(entry&,
  /// word) returns false to stop. Holds no lock while f runs.
  template <class F>
  bool for_each(thread_record* rec, F&& f) {
    view v = load_view(std::memory_order_acquire);  // as (S1)
    if (v.amended()) {
      std::lock_guard<adaptive_mutex> lk(mu_);
      v = load_view(std::memory_order_relaxed);  // as (S2)
      if (v.amended()) {
        reserve_retire(rec, v.table()->used() + 2);
        if (!promote_locked()) throw std::bad_alloc();
        v = load_view(std::memory_order_relaxed);
      }
    }
    bool go_on = true;
    v.table()->for_each([&](std::uint64_t slot) {
      if (!go_on) return;
      entry_t* e = slot_entry<entry_t>(slot);
      const auto s = e->read();
      if (s.state == state_present) go_on = f(*e, s.word);
    });
    return go_on;
  }

  /// Clear, step 1 (mu_ held, may throw, changes nothing): a fresh dirty map for step 2.
  /// The caller also reserves room in its bag for two retirements per shard.
  table_t* prepare_clear_locked() { return new_table(table_t::min_capacity); }
  /// Frees a table from prepare_clear_locked that clear_locked did not take.
  void discard_table(table_t* t) noexcept { free_table(t); }

  /// Clear, step 2 (mu_ held, cannot fail): every entry becomes expunged, the empty view
  /// is published, and the old table and dirty map are retired whole, with their entries
  /// and values (one retirement each, whatever the size).
  void clear_locked(table_t* fresh_dirty) noexcept {
    const view old = load_view(std::memory_order_relaxed);  // as (S2)
    auto expunge_all = [this](std::uint64_t slot) {
      entry_t* e = slot_entry<entry_t>(slot);
      auto l = e->lock();
      // The word stays: the deferred free (free_table_and_entries) frees a value node it
      // still points to. Nobody reads the word of an expunged entry.
      e->unlock(l, l.word, state_expunged);
      if (l.state() == state_present) size_->fetch_sub(1, std::memory_order_relaxed);
    };
    old.table()->for_each(expunge_all);
    dirty_->for_each(expunge_all);
    publish(empty_table(), false);
    misses_ = 0;
    if (old.table() != empty_table()) {
      dom_->retire(old.table(), &free_table_and_entries_fn, this);
    }
    dom_->retire(dirty_, &free_table_and_entries_fn, this);
    dirty_ = fresh_dirty;
  }

  adaptive_mutex& mutex() noexcept { return mu_; }

  // ---- statistics ---------------------------------------------------------------------

  std::size_t size() const noexcept {
    const std::int64_t n = size_->load(std::memory_order_relaxed);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  std::size_t bytes() const noexcept {
    const std::int64_t n = bytes_->load(std::memory_order_relaxed);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  std::uint64_t misses() const noexcept { return misses_total_.load(std::memory_order_relaxed); }
  std::uint64_t promotions() const noexcept { return promotions_.load(std::memory_order_relaxed); }
  std::uint64_t rebuilds() const noexcept { return rebuilds_.load(std::memory_order_relaxed); }
  std::size_t counter(std::size_t which) const noexcept { return index_ * ctr_per_shard + which; }

  /// Retires a word that was replaced or removed (caller pinned, retire reserved).
  void retire_word(std::uint64_t w) noexcept {
    if constexpr (!inline_values) {
      dom_->retire(reinterpret_cast<void*>(static_cast<std::uintptr_t>(w)), &free_node_fn, this);
    } else {
      (void)w;
    }
  }

 private:
  // ---- locked helpers (mu_ held) ------------------------------------------------------

  template <class Eq>
  entry_t* find_locked(const hashed& hv, const Eq& eq, bool count_miss) {
    const view v = load_view(std::memory_order_relaxed);  // as (S2)
    if (entry_t* e = v.find(hv, eq)) return e;
    if (!v.amended()) return nullptr;
    entry_t* e = dirty_->find(hv.bucket_bits(), hv.tag(), eq);
    if (count_miss) miss_locked();
    return e;
  }

  /// The slow path of load_or_store (mu_ taken here). `premade`, if given, is a word
  /// already made by produce(); it is used instead of calling produce() again, and freed
  /// if it is not stored.
  template <class Eq, class MakeKey, class Produce>
  std::pair<std::uint64_t, bool> store_new_or_load(const hashed& hv, const Eq& eq,
                                                   const MakeKey& make_key, Produce& produce,
                                                   const std::uint64_t* premade,
                                                   thread_record* rec) {
    std::uint64_t w = premade != nullptr ? *premade : 0;
    bool have_w = premade != nullptr;
    try {
      std::lock_guard<adaptive_mutex> lk(mu_);
      const view v = load_view(std::memory_order_relaxed);  // as (S2)
      entry_t* e = v.find(hv, eq);
      if (e == nullptr && v.amended()) {
        e = dirty_->find(hv.bucket_bits(), hv.tag(), eq);
        if (e != nullptr) miss_locked();
      }
      if (e != nullptr) {
        const auto s = e->read();
        if (s.state == state_present) {
          if (have_w) free_word(w);
          return {s.word, true};
        }
        // Deleted, in the current table: revive it (a lock-free store may win the race).
        if (!have_w) {
          w = produce();
          have_w = true;
        }
        const auto r = try_load_or_store(e, w, rec);
        if (r.first == 1) free_word(w);
        return {r.second, r.first == 1};
      }
      if (!have_w) {
        w = produce();
        have_w = true;
      }
      insert_new_locked(hv, make_key, w);
      bump(rec, counter(ctr_stores));
      return {w, false};
    } catch (...) {
      if (have_w) free_word(w);
      throw;
    }
  }

  /// Entry-level LoadOrStore: {1, word} loaded, {2, w} stored, {0, _} expunged.
  std::pair<int, std::uint64_t> try_load_or_store(entry_t* e, std::uint64_t w,
                                                  thread_record* rec) noexcept {
    auto l = e->lock();
    switch (l.state()) {
      case state_present:
        e->unlock_unchanged(l);
        return {1, l.word};
      case state_deleted:
        e->unlock(l, w, state_present);
        size_->fetch_add(1, std::memory_order_relaxed);
        bump(rec, counter(ctr_stores));
        return {2, w};
      default:
        e->unlock_unchanged(l);
        return {0, 0};
    }
  }

  /// After a successful swap on an existing entry: a revived entry counts as a new key.
  bool settle_swap(const typename entry_t::locked& l, std::uint64_t& prev) noexcept {
    if (l.state() == state_present) {
      prev = l.word;
      return true;
    }
    size_->fetch_add(1, std::memory_order_relaxed);
    return false;
  }

  /// A new key. Into a free slot of the current read table when it has one (an append of
  /// one key: the view stays as it is, and the key is on the lock-free path at once), else
  /// into the dirty map, marking the view amended. All allocation first, so an exception
  /// changes nothing (w stays the caller's).
  template <class MakeKey>
  void insert_new_locked(const hashed& hv, const MakeKey& make_key, std::uint64_t w) {
    const view v = load_view(std::memory_order_relaxed);  // as (S2)
    table_t* t = v.table();
    if (t != empty_table() && t->fits(1)) {
      entry_t* e = new_entry(hv, make_key, w);
      // (T2) inside: readers probing t see the slot or not; both are right, since the key
      // was absent until this store, and the view needs no change (see design.md, "direct
      // insertion").
      t->insert(make_slot(e, hv.tag()));
      size_->fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!dirty_->fits(1)) grow_dirty_locked();
    entry_t* e = new_entry(hv, make_key, w);
    dirty_->insert(make_slot(e, hv.tag()));
    size_->fetch_add(1, std::memory_order_relaxed);
    if (!v.amended()) publish(v.table(), true);
    const std::size_t live_table = live_in_table_locked();
    if (dirty_->used() >= std::max<std::size_t>(64, live_table / 8)) (void)promote_locked();
  }

  void grow_dirty_locked() {
    table_t* t = new_table(dirty_->capacity() * 2);
    dirty_->for_each([t](std::uint64_t w) { t->insert(w); });
    free_table(dirty_);  // only ever read under mu_: free at once
    dirty_ = t;
  }

  /// Removes a dirty-map entry (present by the invariants); returns its word, which the
  /// caller retires.
  std::uint64_t drop_dirty_locked(entry_t* e) noexcept {
    dirty_->erase(e);
    auto l = e->lock();
    e->unlock(l, 0, state_expunged);
    size_->fetch_sub(1, std::memory_order_relaxed);
    retire_entry_ptr(e);
    return l.word;
  }

  void miss_locked() {
    misses_total_.store(misses_total_.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);  // written under mu_ only
    if (++misses_ < dirty_->used()) return;
    (void)promote_locked();
  }

  std::size_t live_in_table_locked() const noexcept {
    const std::size_t live = size();
    const std::size_t d = dirty_->used();
    return live > d ? live - d : 0;
  }

  /// Moves the dirty map into the read view (append or rebuild). Returns false, changing
  /// nothing, when memory for it cannot be had: promotion is only an optimisation.
  bool promote_locked() noexcept {
    table_t* t = load_view(std::memory_order_relaxed).table();  // as (S2)
    const std::size_t d = dirty_->used();
    const std::size_t live_t = live_in_table_locked();
    const std::size_t dead_t = t->used() > live_t ? t->used() - live_t : 0;
    thread_record* rec = nullptr;
    try {
      rec = dom_->local_record();
    } catch (...) {
      return false;
    }
    if (t != empty_table() && t->fits(d) && dead_t * 2 <= t->used() + 8) {
      dirty_->for_each([t](std::uint64_t w) { t->insert(w); });
      dirty_->clear();
      publish(t, false);
    } else {
      // Pass 1: expunge the deleted entries (no lock-free store may revive them now) and
      // count the survivors. mu_ is held, so the survivors are exactly the entries left
      // unexpunged: no entry enters the table and only we expunge.
      std::size_t survivors = 0;
      t->for_each_prefetched([&survivors](std::uint64_t w) {
        if (!slot_entry<entry_t>(w)->try_expunge_deleted()) ++survivors;
      });
      const std::size_t dead = t->used() - survivors;
      table_t* nt = nullptr;
      graveyard* grave = nullptr;
      try {
        rec->bag.reserve_more(2);
        nt = new_table(capacity_for(survivors + d));
        if (dead != 0) grave = new_graveyard(dead);
      } catch (...) {
        if (nt != nullptr) free_table(nt);
        // Undo pass 1. Only threads that then take mu_ act on an expunged state (readers
        // read it as absent, like deleted), so with mu_ still held the undo is invisible.
        t->for_each([](std::uint64_t w) { slot_entry<entry_t>(w)->unexpunge(); });
        return false;
      }
      // Pass 2: the survivors and the dirty entries into the new table, the expunged
      // entries into the graveyard; publish the new table.
      std::size_t g = 0;
      t->for_each_prefetched([nt, grave, &g](std::uint64_t w) {
        entry_t* e = slot_entry<entry_t>(w);
        if (e->read().state != state_expunged) {
          nt->insert(w);
        } else {
          grave->entries()[g++] = e;
        }
      });
      dirty_->for_each([nt](std::uint64_t w) { nt->insert(w); });
      dirty_->clear();
      publish(nt, false);
      // Unreachable from the new view now: the old table and the expunged entries, retired
      // as two objects however many entries died (the bag stays small, see epoch.hpp).
      if (grave != nullptr) dom_->retire(grave, &free_graveyard_fn, this);
      retire_table(t);
      rebuilds_.store(rebuilds_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    misses_ = 0;
    promotions_.store(promotions_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return true;
  }

  // ---- memory -------------------------------------------------------------------------

  void* alloc(std::size_t bytes, std::size_t align) {
    void* p = mem_->allocate(bytes, align, node_);
    bytes_->fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
    return p;
  }
  void dealloc(void* p, std::size_t bytes, std::size_t align) noexcept {
    mem_->deallocate(p, bytes, align, node_);
    bytes_->fetch_sub(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
  }

  table_t* new_table(std::size_t capacity) {
    return table_t::create_at(alloc(table_t::bytes_for(capacity), alignof(table_t)), capacity);
  }
  /// The read table of a shard with no keys: shared by every shard, never written (a
  /// promotion into it always builds a new table) and never freed.
  static table_t* empty_table() noexcept {
    alignas(table_t) static unsigned char storage[table_t::bytes_for(table_t::min_capacity)];
    static table_t* const t = table_t::create_at(storage, table_t::min_capacity);
    return t;
  }

  void free_table(table_t* t) noexcept {
    if (t == empty_table()) return;
    const std::size_t bytes = table_t::bytes_for(t->capacity());
    t->~table_t();
    dealloc(t, bytes, alignof(table_t));
  }
  static std::uintptr_t pack(table_t* t, bool amended) noexcept {
    unsigned log2 = 0;
    while ((std::size_t{1} << log2) < t->capacity()) ++log2;
    return reinterpret_cast<std::uintptr_t>(t) | (amended ? 1U : 0U) |
           (static_cast<std::uintptr_t>(log2) << 56);
  }
  view load_view(std::memory_order o) const noexcept { return view{read_.load(o)}; }
  /// Publishes a view (mu_ held).
  void publish(table_t* t, bool amended) noexcept {
    // (S3) release: pairs with (S1); the table, its slots and the entries they point to are
    //      built before a reader can reach them through this view.
    read_.store(pack(t, amended), std::memory_order_release);
  }

  template <class MakeKey>
  entry_t* new_entry(const hashed& hv, const MakeKey& make_key, std::uint64_t w) {
    void* p = alloc(sizeof(entry_t), alignof(entry_t));
    if ((reinterpret_cast<std::uintptr_t>(p) & ~pointer_mask) != 0) {
      dealloc(p, sizeof(entry_t), alignof(entry_t));
      throw std::bad_alloc();  // a pointer above 2^48 cannot carry a tag (see table.hpp)
    }
    try {
      return make_key([&](auto&&... key_args) {
        return new (p) entry_t(hv.bucket_bits(), w, std::forward<decltype(key_args)>(key_args)...);
      });
    } catch (...) {
      dealloc(p, sizeof(entry_t), alignof(entry_t));
      throw;
    }
  }
  void free_entry(entry_t* e) noexcept {
    e->~entry_t();
    dealloc(e, sizeof(entry_t), alignof(entry_t));
  }

  void reserve_retire(thread_record* rec, std::size_t n) { rec->bag.reserve_more(n); }
  void retire_entry_ptr(entry_t* e) noexcept { dom_->retire(e, &free_entry_fn, this); }
  void retire_table(table_t* t) noexcept { dom_->retire(t, &free_table_fn, this); }

  static void free_node_fn(void* self, void* p) {
    static_cast<shard*>(self)->free_word(reinterpret_cast<std::uintptr_t>(p));
  }
  static void free_entry_fn(void* self, void* p) {
    static_cast<shard*>(self)->free_entry(static_cast<entry_t*>(p));
  }
  /// Frees a table that left the map whole (clear): its entries, their values, itself.
  static void free_table_and_entries_fn(void* self, void* p) {
    auto* sh = static_cast<shard*>(self);
    auto* t = static_cast<table_t*>(p);
    t->for_each_prefetched([sh](std::uint64_t slot) {
      entry_t* e = slot_entry<entry_t>(slot);
      const std::uint64_t w = e->word.load(std::memory_order_relaxed);  // reclaimer: alone
      if (!inline_values && w != 0) sh->free_word(w);
      sh->free_entry(e);
    });
    sh->free_table(t);
  }
  /// Entries expunged by one rebuild, freed together once no reader can hold them.
  struct graveyard {
    std::size_t count;
    entry_t** entries() noexcept { return reinterpret_cast<entry_t**>(this + 1); }
    static std::size_t bytes_for(std::size_t n) noexcept {
      return sizeof(graveyard) + n * sizeof(entry_t*);
    }
  };
  graveyard* new_graveyard(std::size_t n) {
    auto* g = new (alloc(graveyard::bytes_for(n), alignof(graveyard))) graveyard{n};
    return g;
  }
  static void free_graveyard_fn(void* self, void* p) {
    auto* sh = static_cast<shard*>(self);
    auto* g = static_cast<graveyard*>(p);
    const std::size_t n = g->count;
    constexpr std::size_t ahead = 8;
    for (std::size_t i = 0; i < n; ++i) {
      // The entries are cold: fetch ahead so the frees' misses overlap (see for_each_prefetched).
      if (i + ahead < n) prefetch_for_write(g->entries()[i + ahead]);
      sh->free_entry(g->entries()[i]);
    }
    sh->dealloc(g, graveyard::bytes_for(n), alignof(graveyard));
  }
  static void free_table_fn(void* self, void* p) {
    static_cast<shard*>(self)->free_table(static_cast<table_t*>(p));
  }

  // ---- fields -------------------------------------------------------------------------

  // Read-only after construction, and the read view pointer: the lines every reader loads.
  Memory* const mem_;
  epoch_domain* const dom_;
  const node_id node_;
  const std::size_t index_;
  // The read view, kept by the map beside the other shards' (see the constructor). Loaded
  // by any thread at any time (S1); stored only with mu_ held (S3).
  detail::atomic<std::uintptr_t>& read_;

  // Writers' state, on its own line(s): taking mu_ does not invalidate read_'s line.
  alignas(cacheline_size) adaptive_mutex mu_;
  table_t* dirty_ = nullptr;  // guarded by mu_
  std::size_t misses_ = 0;    // guarded by mu_; reset by promotion
  // Written under mu_ only; atomics so stats() may read them without it.
  detail::atomic<std::uint64_t> misses_total_{0};
  detail::atomic<std::uint64_t> promotions_{0};
  detail::atomic<std::uint64_t> rebuilds_{0};

  // Live keys: changed by every insert, delete and revive, with or without mu_.
  cache_padded<detail::atomic<std::int64_t>> size_{0};
  // Bytes held from the memory resource (frees come from any thread's reclamation).
  cache_padded<detail::atomic<std::int64_t>> bytes_{0};
};

}  // namespace detail
NUMAMAP_END_NAMESPACE
