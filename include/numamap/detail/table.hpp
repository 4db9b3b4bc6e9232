// numamap/detail/table.hpp — the flat, open-addressing table of entries.
//
// One array of entries (entry.hpp), linear probing. An entry lives in its slot: a probe reads
// the slot's control word, hash and key, and a hit finds the entry's value word on the same
// line. An empty slot is all zero; a slot is published by the release store of its control
// word (with the `full` bit), after its hash, key and value word were written.
//
// Two uses:
// - the read snapshot's table: readers probe it without a lock while the shard's writer
//   (holding the shard mutex) may fill empty slots. Slots only ever go from empty to full
//   and a full slot's hash and key never change; a table that must lose entries is replaced
//   by a new one, into which a rebuild copies the live entries (see shard.hpp).
// - the dirty map: only touched with the shard mutex held; it also erases (backward shift,
//   moving entries between slots).
//
// The table and its slots are one allocation from the shard's node memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include "../config.hpp"
#include "atomic.hpp"
#include "entry.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

/// The most a table may be filled, as max_load_num / max_load_den of its capacity (13/16).
/// Linear probing costs more the fuller the table: at load a a hit reads about
/// (1 + 1/(1-a))/2 slots and a miss (1 + 1/(1-a)^2)/2, so at 13/16 about 3 and 15 (at 3/4
/// they were 2.5 and 8.5). What a lower limit costs instead is memory, and a table that is
/// half empty right after it doubled: at 3/4 a 100K-key map of 16 shards had 16384 slots of
/// 24 bytes per shard (load 0.38, 6.3 MB), three times absl's footprint for the same keys,
/// and its hits missed the last-level cache (decisions.md D28).
inline constexpr std::size_t max_load_num = 13;
inline constexpr std::size_t max_load_den = 16;

/// Whether `entries` full slots stay within the maximum load of `capacity` slots.
constexpr bool within_max_load(std::size_t entries, std::size_t capacity) noexcept {
  return entries * max_load_den <= capacity * max_load_num;
}

/// A probe's key test: eq(entry) says whether the entry holds the key. hash_first: test the
/// entry's stored hash before calling eq. concurrent_map::equal_to sets it false for keys
/// kept in the slot whose equality is a compare of their bits, where the hash test costs
/// what the key test does and a hit paid both (key_test_only, decisions.md D30).
template <class Eq, bool HashFirst>
struct key_test {
  static constexpr bool hash_first = HashFirst;
  Eq eq;
  template <class Entry>
  bool operator()(const Entry& e) const {
    return eq(e);
  }
};

/// Whether a probe with key test Eq tests the stored hash first: Eq::hash_first, else true.
template <class Eq, class = void>
inline constexpr bool hash_first_v = true;
template <class Eq>
inline constexpr bool hash_first_v<Eq, std::void_t<decltype(Eq::hash_first)>> = Eq::hash_first;

template <class Key>
class entry_table {
 public:
  using entry_t = entry<Key>;
  static constexpr std::size_t min_capacity = 8;

  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return sizeof(entry_table) + capacity * sizeof(entry_t);
  }

  /// Builds a table of `capacity` (a power of two) empty slots in memory `mem` of
  /// bytes_for(capacity) bytes.
  static entry_table* create_at(void* mem, std::size_t capacity) noexcept {
    auto* t = new (mem) entry_table(capacity);
    for (std::size_t i = 0; i < capacity; ++i) new (&t->slots()[i]) entry_t();
    return t;
  }

  std::size_t capacity() const noexcept { return mask_ + 1; }

  /// Frozen: a rebuild is copying (or has copied) this table's entries into a new one, and
  /// no writer may change an entry any more. A writer that locks an entry it reached without
  /// the shard mutex checks this after its lock CAS and, if set, releases the entry
  /// unchanged and goes to the mutex (shard.hpp). Freezing is final once the new table is
  /// published.
  ///
  /// (F1) seq_cst store and (F2) seq_cst fence, then the rebuild's loads of each entry's
  /// ctl; against a writer's (L1) seq_cst lock CAS, then (F3) seq_cst load of this flag
  /// (entry::lock, is_frozen): the store-buffering pattern, so either the writer sees the
  /// flag, or the rebuild's read of the entry sees the writer's lock (and waits for its
  /// unlock, then reads what it wrote). No entry changes after the rebuild has read it (a
  /// writer that backs off stores the ctl it found back, unchanged).
  void freeze() noexcept {
    frozen_.store(1, std::memory_order_seq_cst);  // (F1)
    fence_seq_cst();                              // (F2)
  }
  /// Undoes freeze() (a rebuild that could not get memory; shard mutex held throughout, so
  /// no writer acted on the flag other than by waiting for the mutex).
  void thaw() noexcept { frozen_.store(0, std::memory_order_relaxed); }
  bool is_frozen() const noexcept { return frozen_.load(std::memory_order_seq_cst) != 0; }  // (F3)
  /// Full slots. Writer-only (shard mutex).
  std::size_t used() const noexcept { return used_; }
  /// Asks for the line of used() ahead of the shard mutex (a hint): a writer that will
  /// insert takes both lines, and the last inserter, often another thread, wrote both.
  void prefetch_used() const noexcept { prefetch_for_write(&used_); }
  /// Whether `n` more entries fit under the maximum load (max_load_num / max_load_den).
  bool fits(std::size_t n) const noexcept { return within_max_load(used_ + n, capacity()); }

  /// Finds the entry with these bucket bits for which `eq(entry)` holds. Lock-free, writes
  /// nothing.
  template <class Eq>
  entry_t* find(std::uint32_t bucket_bits, const Eq& eq) {
    std::uint32_t c = 0;
    return find_masked(this, mask_, bucket_bits, eq, c);
  }

  /// find() with the mask given by the caller (the read view carries it); `c` receives the
  /// found entry's ctl as the probe loaded it, so a reader can finish its seqlock read from
  /// there (entry::read_from) without loading ctl again.
  template <class Eq>
  NUMAMAP_ALWAYS_INLINE static entry_t* find_masked(entry_table* t, std::size_t mask,
                                                    std::uint32_t bucket_bits, const Eq& eq,
                                                    std::uint32_t& c) {
    std::size_t at = 0;
    return probe(t->slots(), mask, bucket_bits, eq, c, at);
  }

  /// A writer's probe: find(), and, when the key is absent, where the probe stopped (`stop`:
  /// the first empty slot on the key's path, which is where emplace would put it). Lock-free,
  /// writes nothing.
  template <class Eq>
  entry_t* find_or_stop(std::uint32_t bucket_bits, const Eq& eq, std::size_t& stop) {
    std::uint32_t c = 0;
    return probe(slots(), mask_, bucket_bits, eq, c, stop);
  }

  /// Whether slot i is empty. Stable only for the table's writer (shard mutex held).
  bool is_empty_slot(std::size_t i) const noexcept { return !slots()[i].is_full(); }

  /// Puts a new present entry (hash, key, word) into a free slot and publishes it. The key
  /// slot `k` is copied (inline bytes, or the key node's pointer, which the table then owns).
  /// Writer-only; must fit.
  entry_t* emplace(std::uint32_t bucket_bits, const key_slot<Key>& k, std::uint64_t w) noexcept {
    return emplace_at(free_slot(bucket_bits), bucket_bits, k, w);
  }

  /// emplace() into slot i, which the caller found to be the first empty slot on the key's
  /// path (find_or_stop, and nothing inserted since). Writer-only; must fit.
  entry_t* emplace_at(std::size_t i, std::uint32_t bucket_bits, const key_slot<Key>& k,
                      std::uint64_t w) noexcept {
    entry_t& s = slots()[i];
    s.hash = bucket_bits;
    s.stored_key.copy_from(k);
    s.word.store(w, std::memory_order_relaxed);
    // (T2) release: pairs with (T1); the slot's fields are written before a reader can see
    //      the slot full.
    s.ctl.store(full_bit | state_present, std::memory_order_release);
    ++used_;
    return &s;
  }

  /// Copies entry `e` of another table, present with word `w`, into a free slot (a rebuild's
  /// move, a promotion's append, a dirty map's growth). Writer-only; must fit.
  entry_t* emplace_copy(const entry_t& e, std::uint64_t w) noexcept {
    return emplace(e.hash, e.stored_key, w);
  }

  /// Removes entry `e` (backward-shift deletion; entries after it may move back one slot, so
  /// no pointer into the table survives this call). Only for tables no reader probes
  /// without the lock (the dirty map). Returns whether e was there.
  bool erase(const entry_t* e) noexcept {
    std::size_t i = e->hash & mask_;
    for (;;) {
      const entry_t& s = slots()[i];
      if (!s.is_full()) return false;
      if (&s == e) break;
      i = (i + 1) & mask_;
    }
    std::size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      entry_t& sj = slots()[j];
      if (!sj.is_full()) break;
      const std::size_t home = sj.hash & mask_;
      // Move sj back into the hole at i unless its home lies cyclically in (i, j].
      const bool home_between = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
      if (!home_between) {
        relocate(slots()[i], sj);
        i = j;
      }
    }
    clear_slot(slots()[i]);
    --used_;
    return true;
  }

  /// Calls f(entry&) for every full slot, in slot order. Safe without the lock when only
  /// inserts run concurrently (each slot is looked at once).
  template <class F>
  void for_each(F&& f) {
    entry_t* s = slots();
    for (std::size_t i = 0; i <= mask_; ++i) {
      if (s[i].ctl.load(std::memory_order_acquire) != 0) f(s[i]);  // as (T1)
    }
  }

  /// Empties the table without freeing what the entries point to (their keys and values
  /// changed hands). Writer-only, for tables no reader probes without the lock.
  void clear() noexcept {
    for (std::size_t i = 0; i <= mask_; ++i) clear_slot(slots()[i]);
    used_ = 0;
  }

 private:
  explicit entry_table(std::size_t capacity) noexcept : mask_(capacity - 1) {}

  entry_t* slots() noexcept { return reinterpret_cast<entry_t*>(this + 1); }
  const entry_t* slots() const noexcept { return reinterpret_cast<const entry_t*>(this + 1); }

  /// Linear probing from the home slot: the entry for which eq holds (`at` its slot, `c` its
  /// ctl as loaded), or null at the first empty slot (`at` that slot). Lock-free, writes
  /// nothing. Tests the stored hash before eq unless Eq says not to (key_test).
  template <class Eq>
  NUMAMAP_ALWAYS_INLINE static entry_t* probe(entry_t* slots, std::size_t mask,
                                              std::uint32_t bucket_bits, const Eq& eq,
                                              std::uint32_t& c, std::size_t& at) {
    constexpr bool hash_first = hash_first_v<Eq>;
    std::size_t i = bucket_bits & mask;
    {
      // The home slot first, apart: whether the probe goes on from it or from the next slot
      // is computed, not branched on. A hit's slot is k slots past its home, k = 0, 1, 2,
      // ... at random, and a branch taken at the k-th slot is one no predictor learns: it
      // missed about once a lookup. From here the loop's first test finds the key when k
      // <= 1, the common case (decisions.md D30).
      entry_t& s = slots[i];
      c = s.ctl.load(std::memory_order_acquire);  // (T1), as below
      if (c == 0) {
        at = i;
        return nullptr;
      }
      const bool maybe_here = hash_first ? s.hash == bucket_bits : eq(s);
      i = (i + static_cast<std::size_t>(!maybe_here)) & mask;
    }
    for (;;) {
      entry_t& s = slots[i];
      // (T1) acquire: pairs with (T2), and as (E1) with entry's (E6). Seeing the slot full
      //      means seeing its hash and key (immutable from then on) and the word it was
      //      published (or last released) with.
      c = s.ctl.load(std::memory_order_acquire);
      if (c == 0) {
        at = i;
        return nullptr;
      }
      if ((!hash_first || s.hash == bucket_bits) && eq(s)) {
        at = i;
        return &s;
      }
      i = (i + 1) & mask;
    }
  }

  std::size_t free_slot(std::uint32_t bucket_bits) const noexcept {
    std::size_t i = bucket_bits & mask_;
    while (slots()[i].is_full()) i = (i + 1) & mask_;
    return i;
  }

  /// dst (empty) takes src's entry; src is left to the caller. Writer-only (dirty map).
  static void relocate(entry_t& dst, const entry_t& src) noexcept {
    dst.hash = src.hash;
    dst.stored_key.copy_from(src.stored_key);
    dst.word.store(src.word.load(std::memory_order_relaxed), std::memory_order_relaxed);
    dst.ctl.store(src.ctl.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  static void clear_slot(entry_t& s) noexcept {
    s.ctl.store(0, std::memory_order_relaxed);
    s.word.store(0, std::memory_order_relaxed);
    s.hash = 0;
  }

  // mask_ and frozen_ are read by lock-free writers (every probe, every lock of an entry);
  // used_ changes with every insert, so it has a line of its own: on theirs, each insert
  // by one thread took the line from the other's lock-free writers (decisions.md D26).
  std::size_t mask_;
  detail::atomic<std::uint32_t> frozen_{0};
  alignas(cacheline_size) std::size_t used_ = 0;  // writer-only (shard mutex)
};

/// The smallest power of two >= n (n >= 1).
inline std::size_t ceil_pow2(std::size_t n) noexcept {
  std::size_t c = 1;
  while (c < n) c <<= 1;
  return c;
}

/// Capacity for n entries at load <= 1/2 (room to grow to the maximum load, 13/16, before
/// the next rebuild).
inline std::size_t capacity_for(std::size_t n) noexcept {
  const std::size_t c = ceil_pow2(n * 2);
  return c < 8 ? 8 : c;
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
