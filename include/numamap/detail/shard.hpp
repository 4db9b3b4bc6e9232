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
//         table has a free slot (load <= 13/16), a new key goes straight into it (an append of
//         one key, see insert_new_locked), so the dirty map is used only while the table is
//         full or the shard has none yet. A full table whose deleted entries outnumber its
//         live ones is rebuilt at once by the insert that finds it full (it would be at the
//         next promotion anyway), and the key goes into the new table.
// claims  Most of those appends take no lock: a thread that inserted a new key under mu_
//         is handed a batch of the table's free slots (credits, counted against its room at
//         once), and puts its next new keys in the shard into the table by claiming the
//         first empty slot on the key's path with a CAS of its tag (claim_new). The table's
//         claim state (open, closed, frozen; table.hpp) keeps such a claim from landing in
//         a table whose keys go to the dirty map or that a rebuild or a clear is copying or
//         dropping (decisions.md D37).
// misses_ Lookups that had to take mu_ and look in dirty_ since the last promotion.
//         Guarded by mu_, so it shares a line with nothing readers touch.
//
// Promotion (mu_ held), when misses_ reaches the dirty map's size (Go's rule) or when the
// dirty map grows past an eighth of the table (so new keys reach the lock-free path soon and
// deleted entries do not pile up when nobody loads):
// - append: if the table has room (load <= 13/16) and few deleted entries, the dirty entries
//   are inserted into the free slots of the CURRENT table and a new view {table, false} is
//   published. Readers that probe the table meanwhile may see the new slots or not; both
//   are right, because their older view says amended and sends a miss to mu_. Cost:
//   O(|dirty|), no copy of the table.
// - rebuild: otherwise a new table sized for the live entries is built. Entries live in the
//   slots (table.hpp), so the live ones are moved: the old table is frozen (from then on no
//   writer changes its entries: one that locks an entry sees the flag, releases it and goes
//   to mu_, then to the new table), the present entries are copied into the new table and the
//   deleted ones left out; readers of the old table see its entries as they were when it
//   froze; the view is published; the old table is retired whole. O(n), amortised like a
//   hash table resize: it happens when the table doubles or when deletions outnumber live
//   entries. The rebuild writes nothing into the old table's entries.
// Invariants: a key has at most one writable entry (not expunged, not in a frozen table), in
// the current table or in the dirty map; outside a rebuild the current table is not frozen
// and holds no expunged entry; a current table with keys in the dirty map is closed (no
// lock-free claim publishes in it), unless it is the shared empty table (which takes none);
// dirty-map entries are present and change only under mu_ (no pointer to one outlives the lock:
// erasing and promoting move them); a table holds at most one entry per key; a table only gains
// slots while it is current, and a full slot's hash and key never change.
//
// Counters: misses, promotions and rebuilds are written under mu_ (relaxed atomics so
// stats() may read them); the byte count sits on its own line; per-thread load/hit/store
// counts and the live-key count (each thread's net adds) live in the calling thread's epoch
// record (epoch.hpp), the only memory a read-path hit writes.
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
#include "page_query.hpp"
#include "table.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

// NOLINTBEGIN(misc-redundant-expression): sizeof and alignof are equal for many Value
/// How a Value is kept in an entry's word.
template <class Value>
inline constexpr bool value_inline = std::is_trivially_copyable_v<Value> &&
                                     sizeof(Value) <= sizeof(std::uint64_t) &&
                                     alignof(Value) <= alignof(std::uint64_t);
// NOLINTEND(misc-redundant-expression)

/// Indices of the per-thread counters, per shard.
/// Loads = hits + table misses: a hit bumps one counter.
/// ctr_size: this thread's net count of keys added to the shard (signed, in two's
/// complement); the shard's live-key count is the sum over all records (see shard::size).
/// ctr_claims: new keys this thread put into the shard's read table without mu_.
/// ctr_credit_gen, ctr_credits: the thread's credits for lock-free claims, the generation
/// of the table they are for and how many are left (shard::claim_new). Never summed.
/// ctr_inserting: 1 when the thread's last store to the shard put in a new key (a hint for
/// the next store's probe, shard::swap). Never summed.
enum : std::size_t {
  ctr_hits = 0,
  ctr_table_misses = 1,
  ctr_stores = 2,
  ctr_size = 3,
  ctr_claims = 4,
  ctr_credit_gen = 5,
  ctr_credits = 6,
  ctr_inserting = 7,
  ctr_per_shard = 8
};

NUMAMAP_ALWAYS_INLINE void bump(thread_record* r, std::size_t i, std::uint64_t d = 1) noexcept {
  auto& c = r->counters()[i];
  // Owner-only counter: a load and a store, no read-modify-write; relaxed because the
  // readers only sum them (a count, through which no other memory is read).
  c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}

/// What shard::try_read decided.
enum class read_outcome { hit, absent, undecided };

template <class Key, class Value, class Memory>
class shard {
 public:
  using entry_t = entry<Key>;
  using table_t = entry_table<Key>;
  using snapshot = typename entry_t::snapshot;
  /// The read snapshot {table, amended} packed in one word: the table pointer (bits 3..47;
  /// tables are 8-byte aligned and below 2^48), the amended flag in bit 0, whether readers
  /// probe the table on its tags in bit 1 (the shard's tag_window, decisions.md D33), and
  /// 64 - log2 of the table's capacity in bits 58..63, so a probe needs no load of the
  /// table's header and the mask is one shift of all ones (capacity 8..2^47: the shift is
  /// 17..61). Publishing a view is one store.
  struct view {
    std::uintptr_t bits;
    static constexpr unsigned shift_at = 58;
    static constexpr std::uintptr_t pointer_bits =
        ((std::uintptr_t{1} << 48) - 1) & ~std::uintptr_t{7};
    table_t* table() const noexcept { return reinterpret_cast<table_t*>(bits & pointer_bits); }
    bool amended() const noexcept { return (bits & 1U) != 0; }
    bool tags() const noexcept { return (bits & 2U) != 0; }
    std::size_t mask() const noexcept { return ~std::size_t{0} >> (bits >> shift_at); }
    /// The read probe: on the tags, or over the slots (the same slots in the same order;
    /// what one finds, the other does, but for a claim racing the probe, D39).
    template <class Eq>
    NUMAMAP_ALWAYS_INLINE entry_t* find(const hashed& hv, const Eq& eq, std::uint32_t& c) const {
      if (tags()) return table_t::find_masked(table(), mask(), hv.bucket_bits(), eq, c);
      return table_t::find_linear(table(), mask(), hv.bucket_bits(), eq, c);
    }
    template <class Eq>
    entry_t* find(const hashed& hv, const Eq& eq) const {
      std::uint32_t c = 0;
      return find(hv, eq, c);
    }
  };
  /// Where a writer's probe of a read table stopped without finding its key: the first
  /// empty slot on the key's path in `table` (table_t::find_or_stop). Under mu_, while that
  /// slot is still empty in the same, still current table, the key is not in the table and
  /// the slot is where it goes, so the locked path needs no second probe (find_locked).
  /// table is null when no probe stopped so.
  struct stop_hint {
    table_t* table = nullptr;
    std::size_t slot = 0;
  };
  struct value_node {
    Value v;
  };
  static constexpr bool inline_values = value_inline<Value>;

  /// `read` is the shard's read-view word; the map keeps these words side by side (see
  /// concurrent_map), so a lookup reaches the table without loading the shard. `tags`:
  /// the read tables readers probe on their tags.
  /// `credits`: the most slots a thread claims without mu_ per batch (grant_credits_locked).
  shard(Memory* mem, epoch_domain* dom, node_id node, std::size_t index,
        detail::atomic<std::uintptr_t>* read, tag_window tags, std::size_t credits)
      : mem_(mem),
        dom_(dom),
        node_(node),
        index_(index),
        tags_(tags),
        credits_(credits),
        read_(*read) {
    // NOLINTNEXTLINE(cppcoreguidelines-prefer-member-initializer): needs bytes_, declared later
    dirty_ = new_table(table_t::min_capacity);
    read_.store(pack(empty_table(), false), std::memory_order_relaxed);  // before sharing
  }

  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;
  shard(shard&&) = delete;
  shard& operator=(shard&&) = delete;

  /// Frees everything reachable. Retired objects are the domain's (freed before this).
  ~shard() {
    // Relaxed: the map is being destroyed, so no other thread uses the shard (its owner's
    // destructor is ordered after every use, as for any object).
    const view v = load_view(std::memory_order_relaxed);
    free_table_and_contents(v.table());
    free_table_and_contents(dirty_);
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
  /// the view, the table is probed, a hit is read (seqlock, from the ctl the probe loaded)
  /// into `out` and counted. Returns false on a table miss; then `amended` says whether the
  /// view that was probed was amended.
  template <class Eq>
  NUMAMAP_ALWAYS_INLINE static bool find_in_read(const detail::atomic<std::uintptr_t>& read,
                                                 std::size_t index, const hashed& hv, const Eq& eq,
                                                 thread_record* rec, bool& amended, snapshot& out) {
    // (S1) acquire: pairs with (S3); the table, its slots and their entries, filled before
    //      the view was published, are visible.
    const view v{read.load(std::memory_order_acquire)};
    std::uint32_t c = 0;
    entry_t* e = v.find(hv, eq, c);
    if (e == nullptr) {
      amended = v.amended();
      return false;
    }
    if (!e->read_from(c, out)) out = e->read();  // a writer came between: the full loop
    bump(rec, index * ctr_per_shard + ctr_hits);
    return true;
  }

  /// The read path's one attempt without a lock or a retry (concurrent_map::try_lookup;
  /// the caller is pinned): (S1) loads the view, the table is probed, and a hit gets one
  /// seqlock read from the ctl the probe loaded. Decides, counts and returns `hit` (with
  /// on_word(word) called, still pinned) or `absent` (the entry is deleted or expunged, or
  /// the probed view is unamended and has no entry: find_after_read_miss's reasoning).
  /// Returns `undecided`, having counted nothing, when a writer held or changed the entry
  /// during the read or the probed view is amended: then the caller starts over on the
  /// full path (find_in_read, find_after_read_miss).
  template <class Eq, class F>
  NUMAMAP_ALWAYS_INLINE static read_outcome try_read(const detail::atomic<std::uintptr_t>& read,
                                                     std::size_t index, const hashed& hv,
                                                     const Eq& eq, thread_record* rec, F& on_word) {
    const view v{read.load(std::memory_order_acquire)};  // (S1)
    std::uint32_t c = 0;
    const entry_t* e = v.find(hv, eq, c);
    if (e == nullptr) {
      if (v.amended()) return read_outcome::undecided;
      bump(rec, index * ctr_per_shard + ctr_table_misses);
      return read_outcome::absent;
    }
    snapshot snap{};
    if (!e->read_from(c, snap)) return read_outcome::undecided;
    bump(rec, index * ctr_per_shard + ctr_hits);
    if (snap.state != state_present) return read_outcome::absent;
    on_word(snap.word);
    return read_outcome::hit;
  }

  /// After find_in_read missed: counts the miss and, if the view it probed was amended,
  /// looks again under mu_, in the current table and then in the dirty map. The decision
  /// must come from the probed view, not a fresh load: a promotion between the probe and a
  /// fresh load may have moved the key from the dirty map into the table and published an
  /// unamended view, and the key would be reported absent while it was present throughout.
  /// With an unamended probed view the key was absent when the view was loaded (it was in
  /// neither the table, which only gains slots, nor the dirty map, which was empty), so the
  /// miss is the answer. The entry is read with mu_ held: a dirty entry does not outlive
  /// the lock (a promotion copies it out and clears its slot). Returns the snapshot;
  /// state_expunged when the key was not found.
  /// hv and eq come by value (a word, and a small lambda): a reference would make the hit
  /// path, which calls this on a miss, keep them in memory.
  template <class Eq>
  NUMAMAP_NOINLINE snapshot find_after_read_miss(hashed hv, Eq eq, thread_record* rec,
                                                 bool probed_amended) {
    bump(rec, counter(ctr_table_misses));
    if (!probed_amended) return {state_expunged, 0};
    std::lock_guard<adaptive_mutex> lk(lock_helping(), std::adopt_lock);
    const view lv = load_view(std::memory_order_relaxed);  // as (S2)
    if (entry_t* e = lv.find(hv, eq)) return e->read();    // promoted meanwhile
    if (!lv.amended()) return {state_expunged, 0};
    entry_t* e = dirty_->find(hv.bucket_bits(), eq);
    const snapshot out = e != nullptr ? e->read() : snapshot{state_expunged, 0};
    miss_locked();  // last: it may promote, moving e
    return out;
  }

  /// Store: sets the key to word w (w is consumed in every outcome but an exception).
  /// Returns the previous present word via `prev` (retired by the caller), or false.
  template <class Eq, class MakeKey>
  // NOLINTNEXTLINE(bugprone-exception-escape): not a std::swap; throws bad_alloc by design
  bool swap(const hashed& hv, const Eq& eq, const MakeKey& make_key, std::uint64_t w,
            thread_record* rec, std::uint64_t& prev) {
    reserve_retire(rec, 2);
    const view v = load_view(std::memory_order_acquire);  // as (S1)
    stop_hint stop;
    // A thread whose last store here put in a new key, and that holds credits, will likely
    // claim a slot: the lines it writes come in owned. Others ask for nothing owned: in a
    // read-mostly mix, stores to existing keys that asked for their home entry and tag lines
    // owned took them from the readers' caches (read95 at 2 threads lost an eighth; D37).
    const probe_lines lines =
        inserting(rec) && has_credit(v.table(), rec) ? probe_lines::owned : probe_lines::read;
    if (entry_t* e = find_for_write(v, hv, eq, stop, lines)) {
      auto l = e->lock();
      if (writable(l, v.table())) {
        e->unlock(l, w, state_present);
        bump(rec, counter(ctr_stores));
        set_inserting(rec, false);
        return settle_swap(l, rec, prev);
      }
      e->unlock_unchanged(l);
    }
    // A new key: claimed without the mutex, with this thread's credits for the table.
    if (stop.table != nullptr && !v.amended() && claim_new(stop, hv, make_key, w, rec)) {
      bump(rec, counter(ctr_stores));
      set_inserting(rec, true);
      return false;
    }
    if (stop.table != nullptr) stop.table->prefetch_used();  // a new key: it will insert
    std::lock_guard<adaptive_mutex> lk(lock_helping(), std::adopt_lock);
    entry_t* e = find_locked(hv, eq, stop);
    if (e == nullptr) {
      auto word = [w] { return w; };
      e = insert_new_locked(hv, eq, make_key, word, stop, rec);
    }
    if (e != nullptr) {
      auto l = e->lock();  // not expunged: see the invariants
      e->unlock(l, w, state_present);
      bump(rec, counter(ctr_stores));
      return settle_swap(l, rec, prev);
    }
    bump(rec, counter(ctr_stores));
    set_inserting(rec, true);
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
    stop_hint stop;
    entry_t* e = find_for_write(v, hv, eq, stop);
    if (e != nullptr) {
      const auto s = e->read();
      if (s.state == state_present) return {s.word, true};
      if (s.state == state_deleted && !produce_locked) {
        const std::uint64_t w = produce();
        const auto r = try_load_or_store(e, v.table(), w, rec);
        if (r.first == 2) return {w, false};
        if (r.first == 1) {
          free_word(w);
          return {r.second, true};
        }
        return store_new_or_load(hv, eq, make_key, produce, &w, rec, stop);  // not writable
      }
    } else if (!produce_locked && stop.table != nullptr && !v.amended() &&
               has_credit(stop.table, rec)) {
      // A new key, claimed without the mutex as in swap. The word is freed if the key's
      // node cannot be made (claim_new throws only then, before it claims).
      const std::uint64_t w = produce();
      bool claimed = false;
      try {
        claimed = claim_new(stop, hv, make_key, w, rec);
      } catch (...) {
        free_word(w);
        throw;
      }
      if (claimed) {
        bump(rec, counter(ctr_stores));
        return {w, false};
      }
      return store_new_or_load(hv, eq, make_key, produce, &w, rec, stop);
    }
    return store_new_or_load(hv, eq, make_key, produce, nullptr, rec, stop);
  }

  /// Delete / LoadAndDelete: removes the key; returns its present word via `prev`
  /// (retired by the caller) or false.
  template <class Eq>
  bool remove(const hashed& hv, const Eq& eq, thread_record* rec, std::uint64_t& prev) {
    reserve_retire(rec, 2);
    view v = load_view(std::memory_order_acquire);  // as (S1)
    // Slot by slot, the home entry's line asked for owned: an erase writes the entry it
    // finds, and reads no tag line (a line the other cores' inserts write) unless its
    // probe ends at a slot whose ctl is 0 (decisions.md D37).
    std::uint32_t c0 = 0;
    if (entry_t* e = table_t::template find_linear<Eq, true>(v.table(), v.mask(), hv.bucket_bits(),
                                                             eq, c0)) {
      auto l = e->lock();
      if (writable(l, v.table())) return delete_locked_entry(e, l, rec, prev);
      e->unlock_unchanged(l);  // frozen by a rebuild, or dropped by clear: look again under mu_
    } else if (!v.amended()) {
      return false;
    }
    free_after_unlock later(this);  // dies after lk
    std::lock_guard<adaptive_mutex> lk(lock_helping(), std::adopt_lock);
    v = load_view(std::memory_order_relaxed);  // (S2) relaxed: mu_ orders writers of read_
    if (entry_t* e = v.find(hv, eq)) {
      auto l = e->lock();  // in the current table with mu_ held: not expunged (invariant 2)
      return delete_locked_entry(e, l, rec, prev);
    }
    if (!v.amended()) return false;
    entry_t* e = dirty_->find(hv.bucket_bits(), eq);
    bool done = false;
    if (e != nullptr) {
      prev = drop_dirty_locked(e, rec, later);
      done = true;
    }
    miss_locked();
    return done;
  }

  /// CompareAndSwap / CompareAndDelete. `matches(word)` compares the current value with
  /// the expected one (outside any entry lock); `produce()` makes the new word, or the
  /// delete happens when `is_delete`. Returns whether it swapped; the replaced word via
  /// `prev`.
  template <class Eq, class Matches, class Produce>
  bool compare_and(const hashed& hv, const Eq& eq, const Matches& matches, Produce&& produce,
                   bool is_delete, thread_record* rec, std::uint64_t& prev) {
    reserve_retire(rec, 2);
    view v = load_view(std::memory_order_acquire);  // as (S1)
    std::uint64_t w = 0;
    bool have_w = false;
    // Frees the new word on every way out that did not store it (an exception included).
    struct free_unused {
      shard* self;
      const std::uint64_t& w;
      const bool& have;
      bool used = false;
      free_unused(shard* s, const std::uint64_t& word, const bool& made) noexcept
          : self(s), w(word), have(made) {}
      free_unused(const free_unused&) = delete;
      free_unused& operator=(const free_unused&) = delete;
      free_unused(free_unused&&) = delete;
      free_unused& operator=(free_unused&&) = delete;
      ~free_unused() {
        if (have && !used) self->free_word(w);
      }
    } guard(this, w, have_w);
    if (entry_t* e = v.find(hv, eq)) {
      const int r =
          compare_and_entry(e, v.table(), matches, produce, is_delete, rec, prev, w, have_w);
      if (r != retry_locked) {
        guard.used = r == 1 && !is_delete;
        return r == 1;
      }
    } else if (!v.amended()) {
      return false;
    }
    free_after_unlock later(this);  // dies after lk
    std::lock_guard<adaptive_mutex> lk(lock_helping(), std::adopt_lock);
    v = load_view(std::memory_order_relaxed);  // as (S2)
    if (entry_t* e = v.find(hv, eq)) {
      // In the current table with mu_ held, e is writable; lock-free writers may still
      // change it, so the optimistic loop may go round, but never asks to retry.
      const int r =
          compare_and_entry(e, v.table(), matches, produce, is_delete, rec, prev, w, have_w);
      guard.used = r == 1 && !is_delete;
      return r == 1;
    }
    entry_t* e = v.amended() ? dirty_->find(hv.bucket_bits(), eq) : nullptr;
    if (e == nullptr) return false;
    // A dirty entry changes only under mu_, which we hold: compare, then act. The miss is
    // counted last: it may promote, moving e out of the dirty map.
    const auto s = e->read();
    bool done = false;
    if (matches(s.word)) {
      if (is_delete) {
        prev = drop_dirty_locked(e, rec, later);
      } else {
        if (!have_w) {
          w = produce();
          have_w = true;
        }
        auto l = e->lock();
        e->unlock(l, w, state_present);
        bump(rec, counter(ctr_stores));
        prev = l.word;
        guard.used = true;
      }
      done = true;
    }
    miss_locked();
    return done;
  }

  static constexpr int retry_locked = 2;

  /// Whether a writer that locked (l) an entry of table t, reached without mu_, may change
  /// it: not dropped by clear, and t not frozen by a rebuild. (F3) after (L1) (table.hpp,
  /// freeze). If not, the writer releases the entry unchanged and looks again under mu_.
  /// Under mu_ every entry of the current table is writable.
  static bool writable(const typename entry_t::locked& l, const table_t* t) noexcept {
    return l.state() != state_expunged && !t->is_frozen();
  }

  /// remove's step on an entry the caller locked (not expunged): present -> deleted.
  bool delete_locked_entry(entry_t* e, const typename entry_t::locked& l, thread_record* rec,
                           std::uint64_t& prev) noexcept {
    if (l.state() != state_present) {
      e->unlock_unchanged(l);
      return false;
    }
    e->unlock(l, 0, state_deleted);
    add_size(rec, -1);
    prev = l.word;
    return true;
  }

  /// compare_and's optimistic loop on a table entry: compare outside the lock, then swap if
  /// the word is unchanged. Returns 1 (swapped), 0 (absent or not matching) or retry_locked
  /// (not writable: t frozen by a rebuild, or e dropped by clear; look again under mu_).
  template <class Matches, class Produce>
  int compare_and_entry(entry_t* e, const table_t* t, const Matches& matches, Produce& produce,
                        bool is_delete, thread_record* rec, std::uint64_t& prev, std::uint64_t& w,
                        bool& have_w) {
    for (;;) {
      const auto s = e->read();
      if (s.state != state_present || !matches(s.word)) return 0;
      if (!is_delete && !have_w) {
        w = produce();
        have_w = true;
      }
      auto l = e->lock();
      if (!writable(l, t)) {
        e->unlock_unchanged(l);
        return retry_locked;
      }
      if (l.state() == state_present && l.word == s.word) {
        if (is_delete) {
          e->unlock(l, 0, state_deleted);
          add_size(rec, -1);
        } else {
          e->unlock(l, w, state_present);
          bump(rec, counter(ctr_stores));
        }
        prev = l.word;
        return 1;
      }
      e->unlock_unchanged(l);  // changed meanwhile: look again
    }
  }

  /// Visits every present key of the read table after promoting the dirty map. f(entry&,
  /// word) returns false to stop. Holds no lock while f runs.
  template <class F>
  bool for_each(thread_record* rec, F&& f) {
    view v = load_view(std::memory_order_acquire);  // as (S1)
    if (v.amended()) {
      std::lock_guard<adaptive_mutex> lk(lock_helping(), std::adopt_lock);
      v = load_view(std::memory_order_relaxed);  // as (S2)
      if (v.amended()) {
        reserve_retire(rec, 2);
        if (!promote_locked()) throw std::bad_alloc();
        v = load_view(std::memory_order_relaxed);
      }
    }
    // A rebuild may freeze and copy this table meanwhile: its entries then keep what they
    // held when it froze, so each key of this table is seen once.
    bool go_on = true;
    v.table()->for_each([&](entry_t& e) {
      if (!go_on) return;
      const auto s = e.read();
      if (s.state == state_present) go_on = f(e, s.word);
    });
    return go_on;
  }

  /// Clear, step 1 (mu_ held, may throw, changes nothing): a fresh dirty map for step 2.
  /// The caller also reserves room in its bag for two retirements per shard.
  table_t* prepare_clear_locked() { return new_table(table_t::min_capacity); }
  /// Frees a table from prepare_clear_locked that clear_locked did not take.
  void discard_table(table_t* t) noexcept { free_table(t); }

  /// Clear, step 2 (mu_ held, cannot fail): every entry becomes expunged (dropped), the
  /// empty view is published, and the old table and dirty map are retired whole, with their
  /// keys and values (one retirement each, whatever the size).
  void clear_locked(table_t* fresh_dirty, thread_record* rec) noexcept {
    const view old = load_view(std::memory_order_relaxed);  // as (S2)
    // Frozen, as for a rebuild: a lock-free writer that locks an entry, or claims a slot,
    // after this sees the flag and goes to mu_ (held by clear), then to the new, empty
    // table; one that came before is waited for and its entry expunged with the rest. The
    // shared empty table is never written.
    if (old.table() != empty_table()) old.table()->freeze();
    auto expunge_all = [this, rec](entry_t& e) {
      auto l = e.lock();
      // The word stays: the deferred free (free_table_and_contents_fn) frees a value node it
      // still points to. Readers see the entry absent.
      e.unlock(l, l.word, state_expunged);
      if (l.state() == state_present) add_size(rec, -1);
    };
    old.table()->for_each_settled(expunge_all);
    dirty_->for_each(expunge_all);
    publish(empty_table(), false);
    misses_ = 0;
    promote_check_ = 64;
    if (old.table() != empty_table()) {
      retire_table(old.table());
    }
    retire_table(dirty_);
    dirty_ = fresh_dirty;
  }

  adaptive_mutex& mutex() noexcept { return mu_; }

  // ---- statistics ---------------------------------------------------------------------

  std::size_t size() const noexcept {
    // Each record's count is owner-written; a thread's adds and removes may land in
    // different records (a key stored by one thread, erased by another), so one record's
    // count may be negative and only the sum means something. O(threads that used the map).
    const auto n = static_cast<std::int64_t>(dom_->sum_counter(counter(ctr_size)));
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  // The statistics below load relaxed: each is a count that no other memory is read
  // through (design.md §3, the counters' row), and a stats() snapshot is not atomic.
  std::size_t bytes() const noexcept {
    const std::int64_t n = bytes_->load(std::memory_order_relaxed);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  std::uint64_t misses() const noexcept { return misses_total_.load(std::memory_order_relaxed); }
  std::uint64_t promotions() const noexcept { return promotions_.load(std::memory_order_relaxed); }
  std::uint64_t rebuilds() const noexcept { return rebuilds_.load(std::memory_order_relaxed); }
  /// Times a writer waiting for mu_ copied chunks of a rebuild (lock_helping).
  std::uint64_t helped() const noexcept { return helped_.load(std::memory_order_relaxed); }
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

  /// What a write drops while it holds mu_ (a key it removes from the dirty map, a value it
  /// made and does not store): at most one key and one word, freed when this object dies.
  /// Declared before the lock_guard, it dies after the unlock, so the users' destructors
  /// run with no lock of the map held and may call the map, this one included (decisions.md
  /// D44).
  class free_after_unlock {
   public:
    explicit free_after_unlock(shard* s) noexcept : s_(s) {}
    free_after_unlock(const free_after_unlock&) = delete;
    free_after_unlock& operator=(const free_after_unlock&) = delete;
    free_after_unlock(free_after_unlock&&) = delete;
    free_after_unlock& operator=(free_after_unlock&&) = delete;
    ~free_after_unlock() {
      if (has_key_) s_->free_key_slot(key_);
      if (has_word_) s_->free_word(word_);
    }
    void key(const key_slot<Key>& k) noexcept {
      key_ = k;
      has_key_ = true;
    }
    void word(std::uint64_t w) noexcept {
      word_ = w;
      has_word_ = true;
    }

   private:
    shard* s_;
    key_slot<Key> key_{};
    std::uint64_t word_ = 0;
    bool has_key_ = false;
    bool has_word_ = false;
  };

  /// The writer's lock-free probe of view v's table; on a miss, `stop` says where it ended.
  template <class Eq>
  static entry_t* find_for_write(const view& v, const hashed& hv, const Eq& eq, stop_hint& stop,
                                 probe_lines lines = probe_lines::read) {
    table_t* t = v.table();
    std::size_t at = 0;
    entry_t* e = t->find_or_stop(hv.bucket_bits(), eq, at, lines);
    if (e == nullptr) stop = {t, at};
    return e;
  }

  /// The key's entry in the current table (view v, loaded with mu_ held), or null; then
  /// `stop` is where the key would go in that table. A stop from the caller's lock-free
  /// probe saves probing again while it holds: that probe saw every slot from the key's
  /// home to stop.slot taken (by another key, or by a claim of another tag, or one it
  /// waited for) and stop.slot empty (tag 0); taken slots keep their key; a new entry,
  /// locked or not, goes into the first empty slot on its key's path, which it claims
  /// (table.hpp, claim); so if stop.slot is still empty now, no entry and no claim of the
  /// key is in the table. (One may come after this test: a lock-free claim of stop.slot
  /// then beats this writer's own claim, which probes again; insert_new_locked.)
  /// The table is the one probed, not a new one at the same address: the caller has been
  /// pinned since the probe, so it was not freed, and a table that stopped being current is
  /// never current again.
  template <class Eq>
  entry_t* find_in_table_locked(const view& v, const hashed& hv, const Eq& eq, stop_hint& stop) {
    table_t* t = v.table();
    if (stop.table == t && t->is_empty_slot(stop.slot)) return nullptr;
    stop = {};
    return find_for_write(v, hv, eq, stop);
  }

  /// The key's entry with mu_ held, in the current table or the dirty map, or null (see
  /// find_in_table_locked for `stop`).
  template <class Eq>
  entry_t* find_locked(const hashed& hv, const Eq& eq, stop_hint& stop) {
    const view v = load_view(std::memory_order_relaxed);  // as (S2)
    if (entry_t* e = find_in_table_locked(v, hv, eq, stop)) return e;
    if (!v.amended()) return nullptr;
    return dirty_->find(hv.bucket_bits(), eq);
  }

  /// The slow path of load_or_store (mu_ taken here). `premade`, if given, is a word
  /// already made by produce(); it is used instead of calling produce() again, and freed
  /// if it is not stored.
  template <class Eq, class MakeKey, class Produce>
  std::pair<std::uint64_t, bool> store_new_or_load(const hashed& hv, const Eq& eq,
                                                   const MakeKey& make_key, Produce& produce,
                                                   const std::uint64_t* premade, thread_record* rec,
                                                   stop_hint stop) {
    std::uint64_t w = premade != nullptr ? *premade : 0;
    bool have_w = premade != nullptr;
    // A word not stored is handed to `later` (and have_w cleared) while mu_ is held, and
    // freed once lk is released.
    free_after_unlock later(this);
    try {
      if (stop.table != nullptr) stop.table->prefetch_used();  // as in swap
      std::lock_guard<adaptive_mutex> lk(lock_helping(), std::adopt_lock);
      const view v = load_view(std::memory_order_relaxed);  // as (S2)
      entry_t* e = find_in_table_locked(v, hv, eq, stop);
      if (e == nullptr && v.amended()) {
        if (entry_t* d = dirty_->find(hv.bucket_bits(), eq)) {
          const std::uint64_t found = d->read().word;  // dirty entries are present
          if (have_w) {
            later.word(w);
            have_w = false;
          }
          miss_locked();  // last: it may promote, moving d
          return {found, true};
        }
      }
      if (e == nullptr) {
        // produce() runs once the key's place is taken (a claimed slot, or the dirty map),
        // so it does not run for a key that a lock-free claim put in meanwhile.
        auto make_w = [&] {
          if (!have_w) {
            w = produce();
            have_w = true;
          }
          return w;
        };
        e = insert_new_locked(hv, eq, make_key, make_w, stop, rec);
        if (e == nullptr) {
          bump(rec, counter(ctr_stores));
          return {w, false};
        }
      }
      // The key's entry in the current table.
      const auto s = e->read();
      if (s.state == state_present) {
        if (have_w) {
          later.word(w);
          have_w = false;
        }
        return {s.word, true};
      }
      // Deleted, in the current table: revive it (a lock-free store may win the race).
      if (!have_w) {
        w = produce();
        have_w = true;
      }
      // (S2) relaxed: mu_ is held.
      const auto r = try_load_or_store(e, load_view(std::memory_order_relaxed).table(), w, rec);
      if (r.first == 1) {
        later.word(w);
        have_w = false;
      }
      return {r.second, r.first == 1};
    } catch (...) {
      if (have_w) free_word(w);
      throw;
    }
  }

  /// Entry-level LoadOrStore on entry e of table t: {1, word} loaded, {2, w} stored, {0, _}
  /// not writable (look again under mu_).
  std::pair<int, std::uint64_t> try_load_or_store(entry_t* e, const table_t* t, std::uint64_t w,
                                                  thread_record* rec) noexcept {
    auto l = e->lock();
    if (!writable(l, t)) {
      e->unlock_unchanged(l);
      return {0, 0};
    }
    switch (l.state()) {
      case state_present:
        e->unlock_unchanged(l);
        return {1, l.word};
      case state_deleted:
        e->unlock(l, w, state_present);
        add_size(rec, 1);
        bump(rec, counter(ctr_stores));
        return {2, w};
      default:
        e->unlock_unchanged(l);
        return {0, 0};
    }
  }

  /// After a successful swap on an existing entry: a revived entry counts as a new key.
  bool settle_swap(const typename entry_t::locked& l, thread_record* rec,
                   std::uint64_t& prev) noexcept {
    if (l.state() == state_present) {
      prev = l.word;
      return true;
    }
    add_size(rec, 1);
    return false;
  }

  /// The thread's hint that its stores to this shard put in new keys (ctr_inserting).
  NUMAMAP_ALWAYS_INLINE bool inserting(thread_record* rec) const noexcept {
    return rec->counters()[counter(ctr_inserting)].load(std::memory_order_relaxed) != 0;
  }
  NUMAMAP_ALWAYS_INLINE void set_inserting(thread_record* rec, bool on) const noexcept {
    auto& c = rec->counters()[counter(ctr_inserting)];
    // Owner-only, relaxed (a hint); stored only when it changes, so a run of overwrites
    // writes it once.
    if ((c.load(std::memory_order_relaxed) != 0) != on) {
      c.store(on ? 1 : 0, std::memory_order_relaxed);
    }
  }

  /// Whether the thread holds credits for lock-free claims in table t (claim_new).
  NUMAMAP_ALWAYS_INLINE bool has_credit(const table_t* t, thread_record* rec) const noexcept {
    auto* c = rec->counters();
    // Relaxed: the thread's own counters (owner-written); no other memory is read through
    // them, and the claim that follows is ordered by (K1)/(K2).
    return c[counter(ctr_credits)].load(std::memory_order_relaxed) != 0 &&
           c[counter(ctr_credit_gen)].load(std::memory_order_relaxed) == t->gen();
  }

  /// A new key without the mutex: the writer's probe of view v's table (unamended) stopped
  /// at an empty slot (`stop`) without finding the key. With a credit for that table, the
  /// slot is claimed (K1); if the table is still open (K2), the key is filled in and is
  /// present. Returns false, having changed nothing the caller sees, when the thread has no
  /// credit for the table, another writer claimed the slot first, or the table was closed
  /// or frozen meanwhile (then the slot is abandoned, its credit spent): the caller goes
  /// to the mutex. May throw only before the claim (the key's node).
  ///
  /// Why no key is claimed twice: a claim is the first empty slot on the key's path, and
  /// every writer that passes a claim in flight with its key's tag waits for it and tests
  /// it (probe<true>); two writers that stopped at the same slot race on its CAS, and the
  /// loser goes to the mutex, where it probes again. Why no key is both claimed and in the
  /// dirty map, or claimed and missed by a rebuild: (K1)/(K2) against (C1)/(C2) and
  /// (F1)/(F2) (table.hpp, close and freeze).
  template <class MakeKey>
  bool claim_new(const stop_hint& stop, const hashed& hv, const MakeKey& make_key, std::uint64_t w,
                 thread_record* rec) {
    table_t* t = stop.table;
    if (!has_credit(t, rec)) return false;
    const key_slot<Key> k = make_key_slot(make_key);  // may throw: nothing claimed yet
    if (!t->claim(stop.slot, hv.bucket_bits())) {     // (K1)
      free_key_slot(k);
      return false;
    }
    auto& credits = rec->counters()[counter(ctr_credits)];  // owner-only, as bump
    if (!t->claims_open()) {                                // (K2)
      t->abandon(stop.slot);
      free_key_slot(k);
      credits.store(0, std::memory_order_relaxed);  // the table takes no more claims
      return false;
    }
    credits.store(credits.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    t->fill(stop.slot, hv.bucket_bits(), k, w);  // (T2)
    add_size(rec, 1);
    bump(rec, counter(ctr_claims));
    return true;
  }

  /// Credits for lock-free claims in table t (open, current; mu_ held), handed to the
  /// calling thread when it has none for t: `n` slots counted against t's room at once
  /// (used_), so a claim needs neither the mutex nor a shared count. Unused credits are
  /// slots lost until t is rebuilt: at most credit_batch() per thread (decisions.md D37).
  void grant_credits_locked(table_t* t, thread_record* rec) noexcept {
    const std::size_t n = credit_batch(t->capacity());
    if (n == 0 || has_credit(t, rec) || !t->fits(1 + n) || !t->claims_open_locked()) return;
    t->count_claimed(n);
    auto* c = rec->counters();
    c[counter(ctr_credit_gen)].store(t->gen(), std::memory_order_relaxed);  // owner-only
    c[counter(ctr_credits)].store(n, std::memory_order_relaxed);
  }
  /// The batch: options::insert_credits, at most a 64th of the table's slots (none below
  /// 64 slots).
  std::size_t credit_batch(std::size_t capacity) const noexcept {
    return std::min(credits_, capacity >> 6U);
  }

  /// A new key, with mu_ held, after find_locked found it in neither the table nor the
  /// dirty map. Into a slot of the current read table when it has room (an append of one
  /// key: the view stays as it is, and the key is on the lock-free path at once), else into
  /// the dirty map, marking the view amended. The word comes from make_w(), called once the
  /// key's place is taken. Returns null when the key went in. Returns the key's entry in
  /// the current table, having inserted nothing (make_w not called), when a lock-free claim
  /// of the same key came first: the caller acts on it as on an entry find_locked found.
  /// An exception (the key's node, make_w) leaves the map as it was (a slot claimed for
  /// the key is abandoned). `stop` is find_locked's, made with mu_ held since.
  template <class Eq, class MakeKey, class MakeWord>
  entry_t* insert_new_locked(const hashed& hv, const Eq& eq, const MakeKey& make_key,
                             MakeWord&& make_w, stop_hint& stop, thread_record* rec) {
    view v = load_view(std::memory_order_relaxed);  // as (S2)
    table_t* t = v.table();
    bool direct = t != empty_table() && t->fits(1);
    // A full table crowded by deleted entries (keys come and go: a deleted slot is never
    // reused, since readers rely on a full slot keeping its key) is rebuilt now, with the
    // dirty map empty, as promote_locked would after the dirty map had grown to its
    // threshold by doubling; the key then goes into the new table (decisions.md D31). If
    // no memory can be had, the key goes to the dirty map as before. The check sums every
    // thread's count (size()), once per table filled: the view is amended after it.
    // Whether lock-free claims may have published in t since find_locked's probe: t is
    // open, or was until a rebuild below froze it, then failed for memory and left it
    // closed (thaw; a rebuild that finds no memory for its new table leaves t open); the
    // claims that saw it open before the freeze are then in t, and the key may be among
    // them, so the dirty-map branch must probe t again as a closing insert does.
    bool probe_again = t != empty_table() && t->claims_open_locked();
    if (!direct && t != empty_table() && !v.amended() && crowded_locked(t) && promote_locked()) {
      v = load_view(std::memory_order_relaxed);  // (S2); the rebuilt table; stop was for t
      t = v.table();
      direct = t->fits(1);
      probe_again = t->claims_open_locked();
    }
    if (direct) {
      // Claim the first empty slot on the key's path, as a lock-free writer would: a
      // lock-free claim may take it first, perhaps for this very key, so a lost CAS probes
      // again (probe<true> waits for a claim of the key's tag and tests it).
      for (;;) {
        if (stop.table == t && t->claim(stop.slot, hv.bucket_bits())) break;  // as (K1)
        stop = {};
        if (entry_t* e = find_for_write(v, hv, eq, stop)) return e;
      }
      t->count_claimed(1);
      key_slot<Key> k{};
      std::uint64_t w = 0;
      try {
        k = make_key_slot(make_key);
        try {
          w = make_w();
        } catch (...) {
          free_key_slot(k);
          throw;
        }
      } catch (...) {
        t->abandon(stop.slot);
        throw;
      }
      // (T2) inside fill. Readers probing t see the slot or not; both are right, since the
      // key was absent until this store, and the view needs no change (design.md, "direct
      // insertion").
      t->fill(stop.slot, hv.bucket_bits(), k, w);
      add_size(rec, 1);
      grant_credits_locked(t, rec);
      return nullptr;
    }
    if (probe_again) {
      // Into the dirty map while t is current: no lock-free claim may publish in t from
      // now on (C1)/(C2), and one that did before is found by probing t again after the
      // fence (table.hpp, close). If the stop is still empty, no claim of the key is there.
      // After a failed rebuild t is closed already (close() again is harmless): its freeze
      // (F1)/(F2) made every claim that saw t open visible to this probe, as (C1)/(C2) do.
      // Once t is closed, the next holders' probes (find_locked) come after this fence in
      // happens-before (through mu_), and see every claim that saw t open: a claim that a
      // probe after a seq_cst fence does not see would be coherence-ordered after that
      // probe, so after the fence in the total order ([atomics.order]), while the claimer's
      // load of the state, which read open, put it before. So only the closing insert
      // probes again.
      t->close();
      if (entry_t* e = find_in_table_locked(v, hv, eq, stop)) return e;
    }
    if (!dirty_->fits(1)) grow_dirty_locked();
    const key_slot<Key> k = make_key_slot(make_key);  // may throw: nothing inserted yet
    std::uint64_t w = 0;
    try {
      w = make_w();
    } catch (...) {
      free_key_slot(k);
      throw;
    }
    dirty_->emplace(hv.bucket_bits(), k, w);
    add_size(rec, 1);
    if (!v.amended()) publish(v.table(), true);
    // Promote once the dirty map holds max(64, an eighth of the table's live keys). The
    // live count sums every thread's record (size()), so it is taken only when the dirty
    // map reaches the threshold last computed, not at every insert; between two checks
    // the threshold may drift by the keys deleted meanwhile, and a miss-driven promotion
    // (miss_locked) does not wait for it.
    if (dirty_->used() < promote_check_) return nullptr;
    const std::size_t at = std::max<std::size_t>(64, live_in_table_locked() / 8);
    if (dirty_->used() >= at) {
      (void)promote_locked();
    } else {
      promote_check_ = at;
    }
    return nullptr;
  }

  // ---- helping: writers that wait for mu_ during a rebuild copy part of it ------------
  //
  // A rebuild holds mu_ while it copies the old table, and a thread that needs mu_ (a writer
  // with a fresh key or a frozen entry, a lookup that missed into the dirty map, a range
  // that promotes) would sleep until the copy is done. Instead it copies chunks of the old
  // table into the new one too (decisions.md D51). The copy of
  // a table of at least 4 * copy_chunk_min slots is cut into chunks, and job_ says which
  // are left (chunks << 16 | next; 0 when no copy is on). Each copier (the rebuilder, and
  // any writer waiting for mu_: lock_helping) claims the next chunk with a CAS of job_ and
  // copies that chunk's present entries into the new table, taking each slot there with a
  // CAS of its tag (emplace_copy_shared); the rebuilder then waits until every chunk is
  // done and goes on as before (grow, dirty keys, publish). Why the copy stays right:
  // - What a helper reads of the old table is what the rebuilder would read: the helper's
  //   loads of entries and tags come after the freeze's (F2) in happens-before (F2, the
  //   release store of job_, the claim's acquire), and the pairs of freeze, (F1)/(F2)
  //   against (L1)/(F3) and (K1)/(K2), are stated for a fence that happens before the loads
  //   ([atomics.order]; C++20 wording, which compilers implement for C++17 too).
  // - What a helper writes into the new table happens before it is published: each chunk
  //   ends with a release increment of job_done_, and the rebuilder's acquire load sees
  //   them all before (S3).
  // - Lifetime: a claimed chunk holds the rebuild back until it is done, so the tables and
  //   job fields a helper reads stay those of the rebuild whose chunk it claimed. A stale
  //   word cannot claim a chunk of another rebuild: the CAS succeeds only if job_ still
  //   holds that word, and then the claim is of the rebuild that job_ describes now.
  // - No deadlock: a rebuild waits for claims to settle, for entry locks and for chunks,
  //   never for a mutex, and a thread waiting for mu_ holds no entry lock and no claimed
  //   slot of this shard's tables (it abandons or fills them before it goes to mu_). A
  //   make() of load_or_compute that calls another map holds its own map's shard mutex,
  //   and perhaps a slot it claimed there; no rebuild of that shard can be running.

  /// Takes mu_. While it waits, a writer copies chunks of the copy of a rebuild in
  /// progress (adaptive_mutex::lock's idle function: at each spin, and before each sleep;
  /// the rebuild wakes sleepers once its chunks are there). Returns mu_, locked.
  adaptive_mutex& lock_helping() noexcept {
    mu_.lock([this] { help_rebuild(); });
    return mu_;
  }

  /// Copies chunks of a rebuild's copy until none is left to claim.
  void help_rebuild() noexcept {
    // Relaxed: only a claim's CAS, which acquires, makes a copier read the job's fields.
    std::uint64_t w = job_.load(std::memory_order_relaxed);
    std::size_t chunk = 0;
    bool helped = false;
    while (claim_chunk(w, chunk)) {
      copy_chunk(chunk);
      helped = true;
    }
    if (helped) helped_.fetch_add(1, std::memory_order_relaxed);  // a count, for tests
  }

  /// Slots per chunk of a rebuild's copy that waiting writers may help with, or 0 for a
  /// table too small to share, which its rebuilder copies alone.
  static std::size_t copy_chunk_slots(std::size_t capacity) noexcept {
    if (capacity < 4 * copy_chunk_min) return 0;
    return std::max(copy_chunk_min, capacity >> 15);  // at most 32768 chunks (16 bits)
  }

  static std::size_t job_chunks(std::uint64_t w) noexcept { return (w >> 16) & 0xffffU; }
  static std::size_t job_next(std::uint64_t w) noexcept { return w & 0xffffU; }

  /// Claims the next chunk of the copy in job_ (w: the word last seen, updated); false if
  /// none is left.
  bool claim_chunk(std::uint64_t& w, std::size_t& chunk) noexcept {
    while (job_next(w) < job_chunks(w)) {
      // (H2) acquire: the job's fields, written before the rebuilder's release store of job_,
      // are read after this (the CAS reads from that store's release sequence, which the
      // other copiers' claims continue). A failed CAS loads w again; relaxed, since no
      // field is read on its strength.
      if (job_.compare_exchange_weak(w, w + 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
        chunk = job_next(w);
        ++w;
        return true;
      }
    }
    return false;
  }

  /// Copies chunk `chunk` of the job's old table into its new one, then counts it done.
  void copy_chunk(std::size_t chunk) noexcept {
    table_t* const from = job_from_;
    table_t* const to = job_to_;
    const std::size_t cs = job_chunk_slots_;
    std::uint64_t placed = 0;
    // Relaxed: hints. The copy is thrown away once a copier overflowed the new table, and
    // past the maximum load (counting the chunks done so far) it would be too, so the
    // copier stops there rather than fill the table to its last slot.
    bool fit = !job_overflow_.load(std::memory_order_relaxed);
    const std::uint64_t before = job_placed_.load(std::memory_order_relaxed);
    if (fit) {
      from->for_each_settled_in(chunk * cs, (chunk + 1) * cs, [&](entry_t& e) {
        if (!fit) return;
        const snapshot s = e.read();
        if (s.state != state_present) return;
        if (within_max_load(before + placed + 1, to->capacity()) &&
            to->emplace_copy_shared(e, s.word)) {
          ++placed;
        } else {
          fit = false;
        }
      });
    }
    // Relaxed: the rebuilder reads both after its acquire of job_done_.
    if (placed != 0) job_placed_.fetch_add(placed, std::memory_order_relaxed);
    if (!fit) job_overflow_.store(true, std::memory_order_relaxed);
    // (H3) release: this chunk's writes into `to` (tags, entries) and the counts above happen
    // before the rebuilder's acquire load that sees the chunk done, so before it publishes
    // `to` (S3), and before it frees `to` or writes the job's fields again.
    job_done_.fetch_add(1, std::memory_order_release);
  }

  /// A rebuild's copy of t (frozen) into nt (unpublished, empty) in chunks of `cs` slots,
  /// some of which writers that wait for mu_ meanwhile may take (lock_helping). Counts nt's
  /// slots. False if the copiers overflowed nt (the live count lagged): it then holds
  /// copies and owns nothing.
  bool copy_helped_locked(table_t* t, table_t* nt, std::size_t cs) noexcept {
    const std::size_t chunks = t->capacity() / cs;
    job_from_ = t;
    job_to_ = nt;
    job_chunk_slots_ = cs;
    job_placed_.store(0, std::memory_order_relaxed);
    job_overflow_.store(false, std::memory_order_relaxed);
    job_done_.store(0, std::memory_order_relaxed);
    std::uint64_t w = std::uint64_t{chunks} << 16;
    // (H1) release: the fields above before any copier's claim ((H2), claim_chunk).
    job_.store(w, std::memory_order_release);
    mu_.wake_waiters();  // writers asleep on mu_ come to help
    std::size_t chunk = 0;
    while (claim_chunk(w, chunk)) copy_chunk(chunk);
    // Every chunk is claimed; wait for the helpers' ones. (H4) acquire: pairs with (H3),
    // for each chunk. A chunk takes microseconds; a helper descheduled in one is
    // waited for with yields (backoff, as for an entry's writer).
    for (backoff wait; job_done_.load(std::memory_order_acquire) != chunks;) wait();
    // No chunk is left to claim; 0 says so for any later rebuild's word. Relaxed: a word
    // without chunks makes no copier read anything.
    job_.store(0, std::memory_order_relaxed);
    if (job_overflow_.load(std::memory_order_relaxed)) return false;
    nt->count_claimed(job_placed_.load(std::memory_order_relaxed));
    return nt->fits(0);
  }

  /// Replaces t, a table no one else can reach yet (a rebuild's new one), by one twice as
  /// large, or larger, so that `more` entries fit besides t's; t's entries are copied and t
  /// freed alone (its keys and values move to the new table). False, t unchanged, if no
  /// memory can be had.
  bool grow_unpublished(table_t*& t, std::size_t more) noexcept {
    table_t* bigger = nullptr;
    try {
      bigger = new_table(std::max(t->capacity() * 2, capacity_for(t->used() + more)));
    } catch (...) {
      return false;
    }
    t->for_each([bigger](entry_t& e) {
      bigger->emplace_copy(e, e.word.load(std::memory_order_relaxed));  // unshared: as it is
    });
    free_table(t);
    t = bigger;
    return true;
  }

  void grow_dirty_locked() {
    table_t* t = new_table(dirty_->capacity() * 2);
    copy_dirty_into(t);
    free_table(dirty_);  // only ever read under mu_: free at once; its keys changed hands
    dirty_ = t;
  }

  /// Copies every dirty entry into t (each published by its (T2)); the keys and values
  /// change hands, the dirty slots are left for the caller to clear or free. Dirty entries
  /// are present and change only under mu_: they are copied as they are.
  void copy_dirty_into(table_t* t) noexcept {
    dirty_->for_each(
        [t](entry_t& e) { t->emplace_copy(e, e.word.load(std::memory_order_relaxed)); });
  }

  /// Removes a dirty-map entry (present by the invariants); returns its word, which the
  /// caller retires. Only mu_ holders ever reach a dirty entry, so its key needs no epoch:
  /// it goes to `later`, freed once mu_ is released.
  std::uint64_t drop_dirty_locked(entry_t* e, thread_record* rec,
                                  free_after_unlock& later) noexcept {
    const std::uint64_t w = e->word.load(std::memory_order_relaxed);  // dirty: mu_ orders it
    later.key(e->stored_key);
    dirty_->erase(e);  // moves other dirty entries: e is gone
    add_size(rec, -1);
    return w;
  }

  /// Counts keys added (d > 0) or removed, in the calling thread's record: no line that
  /// another thread writes (a shared counter per shard moved between two threads that
  /// insert and erase in the same shard with nearly every operation; decisions.md D26).
  NUMAMAP_ALWAYS_INLINE void add_size(thread_record* rec, std::int64_t d) const noexcept {
    bump(rec, counter(ctr_size), static_cast<std::uint64_t>(d));  // two's complement
  }

  void miss_locked() {
    misses_total_.store(misses_total_.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);  // written under mu_ only
    if (++misses_ < dirty_->used()) return;
    (void)promote_locked();
  }

  /// Whether deleted entries outnumber the live ones in t (current, mu_ held): the test
  /// with which promote_locked chooses a rebuild over an append.
  bool crowded_locked(const table_t* t) const noexcept {
    return crowded(t->used(), live_in_table_locked());
  }
  /// Whether a table with `used` full slots, `live` of them live keys, is crowded by the
  /// deleted rest (crowded_locked, promote_locked).
  static bool crowded(std::size_t used, std::size_t live) noexcept {
    const std::size_t dead = used > live ? used - live : 0;
    return dead * 2 > used + 8;
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
    thread_record* rec = nullptr;
    try {
      rec = dom_->local_record();
    } catch (...) {
      return false;
    }
    const bool crowded_t = crowded(t->used(), live_t);
    if (t != empty_table() && t->fits(d) && !crowded_t) {
      // Append: the dirty entries into free slots of the current table, each claimed (t is
      // closed since its first dirty key: no lock-free claim of these keys publishes in
      // it); the dirty slots are just emptied.
      dirty_->for_each([t](entry_t& e) {
        // Relaxed: a dirty entry, written only under mu_ (held).
        t->emplace_claimed(e.hash, e.stored_key, e.word.load(std::memory_order_relaxed));
      });
      dirty_->clear();
      publish(t, false);
    } else {
      // The new table first, while lock-free writers still change t's entries (they wait
      // for nothing meanwhile, and a failure leaves nothing to undo; D51). It is sized for
      // the live count (size()), which lags writers in flight, so the copy grows it if it
      // fills (grow_unpublished); a counting pass over t, which an exact size needs, read
      // the whole table once more with mu_ held (decisions.md D26).
      // Then freeze t: from here no writer changes its entries (a lock-free writer that
      // locks one sees the flag and goes to mu_, held here, where it helps with the copy;
      // one that locked before finishes, and read() below waits for it). Claims in flight
      // are waited for below, and later ones see the flag (K2) and abandon their slots. The
      // shared empty table has nothing to freeze and is never written.
      const bool shared_empty = t == empty_table();
      const std::size_t cs = shared_empty ? 0 : copy_chunk_slots(t->capacity());
      table_t* nt = nullptr;
      try {
        rec->bag.reserve_more(1);
        // A small table crowded by deleted entries (a shard whose keys churn) gets twice
        // the room: there a rebuild's fixed costs (the allocation, the freeze's fence, the
        // publication, the old table's retirement) outweigh copying a few dozen entries,
        // and a 1K-key map's 128-slot tables filled again after about 40 fresh keys
        // (decisions.md D52). Larger tables are sized for the live count alone, as the
        // memory per entry matters more there than the rebuilds' rate.
        std::size_t cap = capacity_for(live_t + d);
        if (crowded_t && cap < crowded_double_below) cap *= 2;
        nt = new_table(cap);
      } catch (...) {
        return false;  // t not frozen yet: nothing to undo
      }
      if (!shared_empty) t->freeze();
      // Copy the present entries (their values no longer change); deleted ones stay behind.
      // Readers that still reach t see each entry as it is now, which is what nt holds.
      // Claims in flight are waited for (for_each_settled). A table large enough is copied
      // in chunks that writers waiting for mu_ share (copy_helped_locked); a smaller one,
      // or a copy again after the copiers overflowed nt, by this thread alone.
      bool room = true;
      bool copied = false;
      if (cs != 0) {
        copied = copy_helped_locked(t, nt, cs);
        if (!copied) {
          // The copiers overflowed nt (the live count lagged): nt holds copies and owns
          // nothing; start again alone, into a table twice as large.
          try {
            table_t* bigger = new_table(nt->capacity() * 2);
            free_table(nt);
            nt = bigger;
          } catch (...) {
            room = false;
          }
        }
      }
      if (room && !copied) {
        t->for_each_settled([this, &nt, &room](entry_t& e) {
          if (!room) return;
          const snapshot s = e.read();
          if (s.state != state_present) return;
          if (!nt->fits(1) && !(room = grow_unpublished(nt, 1))) return;
          nt->emplace_copy(e, s.word);
        });
      }
      if (room && !nt->fits(d)) room = grow_unpublished(nt, d);
      if (!room) {
        // No memory to grow: nt was never published and owns nothing (t's entries keep
        // their keys and values until nt is), so it is freed alone and t thawed, as above.
        free_table(nt);
        if (!shared_empty) t->thaw();
        return false;
      }
      copy_dirty_into(nt);
      dirty_->clear();
      publish(nt, false);
      // Unreachable from the new view now: the old table, with the keys of the entries it
      // left behind (a present entry's key and value now belong to nt), retired whole.
      retire_table(t);
      // Relaxed: a count written under mu_ only (the field's comment).
      rebuilds_.store(rebuilds_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    shrink_dirty_locked();
    misses_ = 0;
    promote_check_ = 64;
    // Relaxed: a count written under mu_ only (the field's comment).
    promotions_.store(promotions_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return true;
  }

  /// After a promotion emptied it: a dirty map that grew large gives its memory back (it
  /// grows again by doubling if it must; a big shard's dirty map reaches an eighth of the
  /// table). Keeps the old one if no memory can be had.
  void shrink_dirty_locked() noexcept {
    if (dirty_->capacity() <= 16 * table_t::min_capacity) return;
    try {
      table_t* small = new_table(table_t::min_capacity);
      free_table(dirty_);  // empty, and only ever read under mu_
      dirty_ = small;
    } catch (...) {
      // keep the empty, large one
    }
  }

  // ---- memory -------------------------------------------------------------------------

  void* alloc(std::size_t bytes, std::size_t align) {
    void* p = mem_->allocate(bytes, align, node_);
    // Relaxed: a count for stats(); no memory is read through it (design.md §3).
    bytes_->fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
    return p;
  }
  void dealloc(void* p, std::size_t bytes, std::size_t align) noexcept {
    mem_->deallocate(p, bytes, align, node_);
    // Relaxed: as in alloc.
    bytes_->fetch_sub(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
  }

  table_t* new_table(std::size_t capacity) {
    const std::size_t bytes = table_t::bytes_for(capacity);
    void* mem = alloc(bytes, alignof(table_t));
    // create_at writes every slot now, mostly with mu_ held (a rebuild, a dirty map's
    // growth): fault the pages in with one call instead of a trap per page (D38).
    prefault_for_write(mem, bytes);
    return table_t::create_at(mem, capacity, next_gen_++);
  }
  /// The read table of a shard with no keys: shared by every shard, never written (a
  /// promotion into it always builds a new table) and never freed.
  static table_t* empty_table() noexcept {
    alignas(table_t) static unsigned char storage[table_t::bytes_for(table_t::min_capacity)];
    static table_t* const t = table_t::create_at(storage, table_t::min_capacity, 0);
    return t;
  }

  /// Retires a table with its contents (free_table_and_contents), weighed by its size for
  /// the epoch's collection pace (epoch_domain::retire, decisions.md D21). The caller is
  /// pinned and has reserved the retirement.
  void retire_table(table_t* t) {
    dom_->retire(t, &free_table_and_contents_fn, this,
                 epoch_domain::weight_of(table_t::bytes_for(t->capacity())));
  }

  void free_table(table_t* t) noexcept {
    if (t == empty_table()) return;
    const std::size_t bytes = table_t::bytes_for(t->capacity());
    t->~table_t();
    dealloc(t, bytes, alignof(table_t));
  }
  std::uintptr_t pack(table_t* t, bool amended) const noexcept {
    unsigned log2 = 0;
    while ((std::size_t{1} << log2) < t->capacity()) ++log2;
    return reinterpret_cast<std::uintptr_t>(t) | (amended ? 1U : 0U) |
           (tags_.contains(t->capacity()) ? 2U : 0U) |
           (static_cast<std::uintptr_t>(64 - log2) << view::shift_at);
  }
  view load_view(std::memory_order o) const noexcept { return view{read_.load(o)}; }
  /// Publishes a view (mu_ held).
  void publish(table_t* t, bool amended) noexcept {
    // (S3) release: pairs with (S1); the table, its slots and the entries they point to are
    //      built before a reader can reach them through this view.
    read_.store(pack(t, amended), std::memory_order_release);
  }

  // Keys: inline in the slot, or an immutable node from the shard's memory.
  using key_node = detail::key_node<Key>;
  /// The key slot for a new entry, made with make_key(construct). May throw (the key's
  /// constructor, the node's allocation); then nothing is left allocated.
  template <class MakeKey>
  key_slot<Key> make_key_slot(const MakeKey& make_key) {
    key_slot<Key> out{};
    if constexpr (key_inline<Key>) {
      make_key([&](auto&&... key_args) {
        return ::new (static_cast<void*>(out.bytes))
            Key(std::forward<decltype(key_args)>(key_args)...);
      });
    } else {
      void* p = alloc(sizeof(key_node), alignof(key_node));
      try {
        out.node = make_key([&](auto&&... key_args) {
          return ::new (p) key_node{Key(std::forward<decltype(key_args)>(key_args)...)};
        });
      } catch (...) {
        dealloc(p, sizeof(key_node), alignof(key_node));
        throw;
      }
    }
    return out;
  }
  /// Frees a key slot that no entry took (nothing for inline keys).
  void free_key_slot(const key_slot<Key>& k) noexcept {
    if constexpr (!key_inline<Key>) {
      key_node* n = k.node;
      n->~key_node();
      dealloc(n, sizeof(key_node), alignof(key_node));
    } else {
      (void)k;
    }
  }
  /// Frees an entry's key node (nothing for inline keys). The entry must be unreachable for
  /// others, or dropped in a table that is being freed.
  void free_key(const entry_t& e) noexcept { free_key_slot(e.stored_key); }

  /// Frees a table and what its entries own: every entry that was not moved out owns its
  /// key, and its word when that is a value node (present entries; a deleted entry's word
  /// is 0; an entry clear dropped kept its word, freed here). A frozen table is a rebuild's
  /// old one: its present entries were copied into the new table, which owns their keys and
  /// values now (a rebuild that failed thawed its table).
  void free_table_and_contents(table_t* t) noexcept {
    if (t == empty_table()) return;
    // Inline keys and inline values own nothing outside the slot: no walk over the table.
    if constexpr (!key_inline<Key> || !inline_values) {
      const bool moved_out = t->is_frozen();
      t->for_each([this, moved_out](entry_t& e) {
        const std::uint32_t c = e.ctl.load(std::memory_order_relaxed);  // the freer: alone
        if (moved_out && (c & state_mask) == state_present) return;
        const std::uint64_t w = e.word.load(std::memory_order_relaxed);
        if (!inline_values && w != 0) free_word(w);
        free_key(e);
      });
    }
    free_table(t);
  }

  void reserve_retire(thread_record* rec, std::size_t n) { rec->bag.reserve_more(n); }

  static void free_node_fn(void* self, void* p) {
    static_cast<shard*>(self)->free_word(reinterpret_cast<std::uintptr_t>(p));
  }
  /// A retired table: a rebuild's old table (its present entries skipped) or clear's (all).
  static void free_table_and_contents_fn(void* self, void* p) {
    static_cast<shard*>(self)->free_table_and_contents(static_cast<table_t*>(p));
  }

  // ---- fields -------------------------------------------------------------------------

  // Read-only after construction, and the read view pointer: the lines every reader loads.
  Memory* const mem_;
  epoch_domain* const dom_;
  const node_id node_;
  const std::size_t index_;
  const tag_window tags_;
  const std::size_t credits_;  // options::insert_credits
  // The read view, kept by the map beside the other shards' (see the constructor). Loaded
  // by any thread at any time (S1); stored only with mu_ held (S3).
  detail::atomic<std::uintptr_t>& read_;

  // Writers' state, on its own line(s): taking mu_ does not invalidate read_'s line.
  alignas(cacheline_size) adaptive_mutex mu_;
  table_t* dirty_ = nullptr;  // guarded by mu_
  std::size_t misses_ = 0;    // guarded by mu_; reset by promotion
  // The dirty map's size at which insert_new_locked next weighs a promotion; guarded by
  // mu_, reset by promotion and clear.
  std::size_t promote_check_ = 64;
  // The next table's generation (entry_table::gen; 0 is the shared empty table's). Guarded
  // by mu_, or the constructor's before the shard is shared.
  std::uint64_t next_gen_ = 1;
  // Written under mu_ only; atomics so stats() may read them without it.
  detail::atomic<std::uint64_t> misses_total_{0};
  detail::atomic<std::uint64_t> promotions_{0};
  detail::atomic<std::uint64_t> rebuilds_{0};
  // A rebuild's copy that writers waiting for mu_ may help with (copy_helped_locked), on a
  // line of its own: chunks << 16 | next chunk, or 0 when there is none.
  static constexpr std::size_t copy_chunk_min = 1024;
  alignas(cacheline_size) detail::atomic<std::uint64_t> job_{0};
  detail::atomic<std::uint64_t> job_done_{0};    // chunks copied in this rebuild
  detail::atomic<std::uint64_t> job_placed_{0};  // entries they put into job_to_
  detail::atomic<bool> job_overflow_{false};     // a copier found job_to_ full
  // Written by the rebuilder (mu_ held) before job_'s release store, read by copiers after
  // their claim's acquire, and not written again until every chunk is done.
  table_t* job_from_ = nullptr;
  table_t* job_to_ = nullptr;
  std::size_t job_chunk_slots_ = 0;
  // Times a waiting writer copied chunks of a rebuild (helped()).
  detail::atomic<std::uint64_t> helped_{0};
  // Live keys: not here, but per thread, in each epoch record (ctr_size; see size()).
  // Bytes held from the memory resource (frees come from any thread's reclamation).
  cache_padded<detail::atomic<std::int64_t>> bytes_{0};
};

}  // namespace detail
NUMAMAP_END_NAMESPACE
