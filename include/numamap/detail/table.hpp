// numamap/detail/table.hpp — the flat, open-addressing table of entries.
//
// One array of entries (entry.hpp), linear probing. An entry lives in its slot: a probe reads
// the slot's control word, hash and key, and a hit finds the entry's value word on the same
// line. An empty slot is all zero; a slot is published by the release store of its control
// word (with the `full` bit), after its hash, key and value word were written.
//
// After the slots, a tag byte per slot (decisions.md D32): 0 for an empty slot, else 0x80 |
// the top 7 of the key's 32 bucket bits. A probe matches 16 tags at a time and reads only
// the entries whose tag matches, up to the group of the first empty tag: a hit's slot lies
// k slots past its home at random (1.6 on average at a load of 0.76), and the tags find it
// without a branch on k; a miss usually ends on the tags alone. The tags of a 100K-key map
// (128 KiB) stay in the L2 cache; the home entry's line is prefetched as the probe starts,
// so its miss overlaps the tag load.
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
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>
#if defined(__unix__)
#include <unistd.h>
#endif
// Tags are matched with SSE2 compares unless the target lacks it or a test asks for the
// SWAR fallback (NUMAMAP_TAGS_SWAR).
#if defined(__SSE2__) && !defined(NUMAMAP_TAGS_SWAR)
#define NUMAMAP_TAGS_SSE2 1
#include <emmintrin.h>
#else
#define NUMAMAP_TAGS_SSE2 0
#endif

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

/// The high bit of each byte of x that is 0, exactly (no borrow from byte to byte): the
/// tag match without SSE2 (entry_table::match_group).
constexpr std::uint64_t zero_lanes(std::uint64_t x) noexcept {
  constexpr std::uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL;
  return ~(((x & low7) + low7) | x | low7);
}
/// The high bits of x's eight bytes as eight bits (byte k's to bit k).
constexpr std::uint32_t lane_bits(std::uint64_t x) noexcept {
  return static_cast<std::uint32_t>(((x >> 7U) * 0x0102040810204080ULL) >> 56U);
}
static_assert(lane_bits(zero_lanes(0x00ff0001ff000100ULL)) == 0xa5, "lanes 0, 2, 5 and 7 are 0");

/// Whether match_group loads a tag group with one movdqu (x86-64 with SSE2, GCC or Clang),
/// rather than with two relaxed loads: not in the builds whose tools must see every load
/// (ThreadSanitizer, AddressSanitizer, the instrumented atomics of the tests).
#if NUMAMAP_TAGS_SSE2 && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !NUMAMAP_TSAN && !NUMAMAP_ASAN && !NUMAMAP_INSTRUMENTED_ATOMICS
#define NUMAMAP_TAG_LOAD_ASM 1
#else
#define NUMAMAP_TAG_LOAD_ASM 0
#endif

/// The fewest slots a table has (entry_table::min_capacity, capacity_for).
inline constexpr std::size_t table_min_capacity = 16;

/// A rebuild of a table crowded by deleted entries doubles a new table that would have
/// fewer slots than this (shard::promote_locked, decisions.md D52).
inline constexpr std::size_t crowded_double_below = 1024;

/// Which lines a writer's probe asks for, ahead of its first load: `read` (a read prefetch of
/// the home entry's line, as readers do), or `owned` (the home entry's and the home tag
/// group's lines asked for owned, prefetch_for_write), for a writer that will likely claim
/// a slot. A line loaded first and written after comes from the core that last wrote it
/// twice, once to read and once to own (decisions.md D37). Writers that may well not write
/// ask for nothing owned: that takes the line from the other cores' caches for a write
/// that may not come.
enum class probe_lines : unsigned char { read, owned };

template <class Key>
class entry_table {
 public:
  using entry_t = entry<Key>;
  /// A probe reads the tags 16 at a time, a group aligned to 16 slots: a table has at
  /// least one group.
  static constexpr std::size_t min_capacity = table_min_capacity;

  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return sizeof(entry_table) + capacity * (sizeof(entry_t) + 1);  // + a tag byte per slot
  }

  /// Builds a table of `capacity` (a power of two, at least min_capacity) empty slots in memory
  /// `mem` of bytes_for(capacity) bytes; `gen` is its generation (gen()).
  static entry_table* create_at(void* mem, std::size_t capacity, std::uint64_t gen) noexcept {
    auto* t = new (mem) entry_table(capacity, gen);
    // The slots and tags are zeroed with one memset first, then each entry and tag word is
    // constructed in place, which writes the same zeros again into lines now in the cache.
    // The constructors' stores alone, eight bytes at a time into a table whose lines were
    // cold, took 2-3 % of a two-thread churn's time, with the shard's mutex held by the
    // rebuild and the other thread waiting on it; with the library's memset (block stores)
    // first, churn ran 2-5 % faster in alternating runs (decisions.md D50).
    std::memset(static_cast<void*>(t->slots()), 0, capacity * (sizeof(entry_t) + 1));
    for (std::size_t i = 0; i < capacity; ++i) new (&t->slots()[i]) entry_t();
    tag_word* tw = tags_of(t->slots(), t->mask_);
    for (std::size_t g = 0; g < capacity / 8; ++g) new (&tw[g]) tag_word(0);
    return t;
  }

  std::size_t capacity() const noexcept { return mask_ + 1; }

  /// The table's claim state (claims_): open, closed or frozen. Lock-free claims of empty
  /// slots (claim) publish only in an open table; every other write path holds the shard
  /// mutex, which is also what closes or freezes a table.
  ///
  /// Closed: the shard mutex holder will put a key into the dirty map while this table is
  /// current, and from now on no lock-free claim may publish a key here (closing is final for
  /// the table). (C1) seq_cst store and (C2) seq_cst fence, then the holder's probe of the
  /// table for its key; against a claimer's (K1) seq_cst tag CAS, then (K2) seq_cst load of
  /// the state (claims_open): the store-buffering pattern of freeze below, so either the
  /// claimer sees the table closed (and abandons its slot), or the holder's probe sees the
  /// claim (and waits for it to settle, then compares its key). A key never has an entry in
  /// both the table and the dirty map. (C1) alone could be relaxed: (C2) orders it against
  /// (K2) ([atomics.order]: a store sequenced before a seq_cst fence is seen by every
  /// seq_cst load that follows the fence in the total order). It stays seq_cst so that the
  /// proofs may place it in that order ((T0), match_group), at no cost that shows: it runs
  /// once per table closed, next to a full fence.
  void close() noexcept {
    claims_.store(claim_state_closed, std::memory_order_seq_cst);  // (C1)
    fence_seq_cst();                                               // (C2)
  }
  /// Whether the table is open, for the shard mutex holder (who alone changes the state).
  bool claims_open_locked() const noexcept {
    return claims_.load(std::memory_order_relaxed) == claim_state_open;
  }
  /// Whether a claimer may publish the slot it claimed: the table is open. (K2) after (K1).
  bool claims_open() const noexcept {
    return claims_.load(std::memory_order_seq_cst) == claim_state_open;  // (K2)
  }

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
  /// The same pairs hold for a lock-free claim of an empty slot ((K1), (K2)): either the
  /// claimer sees the table frozen and abandons its slot, or the rebuild's pass over the
  /// tags (for_each_settled) sees the claim and waits for it to settle. (F1) is seq_cst for
  /// the reason (C1) is (close), once per rebuild or clear.
  void freeze() noexcept {
    claims_.store(claim_state_frozen, std::memory_order_seq_cst);  // (F1)
    fence_seq_cst();                                               // (F2)
  }
  /// Undoes freeze() (a rebuild that could not get memory; shard mutex held throughout, so
  /// no writer acted on the flag other than by waiting for the mutex). The table comes back
  /// closed, not open: a claimer that saw it frozen abandoned its slot, and closed is the
  /// state that keeps lock-free claims out without a proof about the frozen interval.
  void thaw() noexcept { claims_.store(claim_state_closed, std::memory_order_relaxed); }
  bool is_frozen() const noexcept {
    return claims_.load(std::memory_order_seq_cst) == claim_state_frozen;  // (F3)
  }
  /// The table's generation: unique among the tables of its shard (the shard numbers them
  /// as it makes them). Credits for lock-free claims name it (shard.hpp).
  std::uint64_t gen() const noexcept { return gen_; }
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
    std::size_t at = 0;
    return probe<true>(slots(), mask_, bucket_bits, eq, c, at);
  }

  /// find() with the mask given by the caller (the read view carries it); `c` receives the
  /// found entry's ctl as the probe loaded it, so a reader can finish its seqlock read from
  /// there (entry::read_from) without loading ctl again.
  template <class Eq>
  NUMAMAP_ALWAYS_INLINE static entry_t* find_masked(entry_table* t, std::size_t mask,
                                                    std::uint32_t bucket_bits, const Eq& eq,
                                                    std::uint32_t& c) {
    std::size_t at = 0;
    return probe<false>(t->slots(), mask, bucket_bits, eq, c, at);
  }

  /// find_masked() without the tags: linear probing over the slots' control words from
  /// the home slot, as before D32 (decisions.md D33). The read probe of tables whose tags
  /// would not fit the cache (tag_window): there the tags only add a line to wait for.
  /// Lock-free, writes nothing; the same slots in the same order
  /// as probe() (which also reads matching lanes past the first empty one in its group,
  /// D39: the answers differ only for a key whose claim races the probe, and both are then
  /// right).
  ///
  /// A slot whose ctl is 0 ends the probe only if its tag is 0 too: a slot claimed without
  /// the shard mutex (claim) has its tag set before its ctl, and a writer that passed it may
  /// have published its own key beyond it. That writer read the tag before publishing, so a
  /// reader that came after the publication reads the tag as set (read-read coherence). A
  /// slot whose ctl lacks the full bit (an abandoned claim) is passed like another key's.
  /// ForWrite: the home entry's line is asked for owned (an erase, which locks what it
  /// finds; probe_lines).
  template <class Eq, bool ForWrite = false>
  NUMAMAP_ALWAYS_INLINE static entry_t* find_linear(entry_table* t, std::size_t mask,
                                                    std::uint32_t bucket_bits, const Eq& eq,
                                                    std::uint32_t& c) {
    constexpr bool hash_first = hash_first_v<Eq>;
    entry_t* slots = t->slots();
    std::size_t i = bucket_bits & mask;
    if constexpr (ForWrite) prefetch_for_write(&slots[i]);
    {
      // The home slot first, apart: whether the probe goes on from it or from the next slot
      // is computed, not branched on. A hit's slot is k slots past its home, k = 0, 1, 2,
      // ... at random, and a branch taken at the k-th slot is one no predictor learns: it
      // missed about once a lookup. From here the loop's first test finds the key when k
      // <= 1, the common case (decisions.md D30).
      const entry_t& s = slots[i];
      c = s.ctl.load(std::memory_order_acquire);  // (T1), as below
      if ((c & full_bit) == 0) {
        if (c == 0 && tag_at(slots, mask, i) == 0) return nullptr;
        i = (i + 1) & mask;
      } else {
        const bool maybe_here = hash_first ? s.hash == bucket_bits : eq(s);
        i = (i + static_cast<std::size_t>(!maybe_here)) & mask;
      }
    }
    for (;;) {
      entry_t& s = slots[i];
      // (T1) acquire, as in probe().
      c = s.ctl.load(std::memory_order_acquire);
      if ((c & full_bit) != 0) {
        if ((!hash_first || s.hash == bucket_bits) && eq(s)) return &s;
      } else if (c == 0 && tag_at(slots, mask, i) == 0) {
        return nullptr;
      }
      i = (i + 1) & mask;
    }
  }

  /// A writer's probe: find(), and, when the key is absent, where the probe stopped (`stop`:
  /// the first empty slot on the key's path, which is where the key would be claimed).
  /// Lock-free, writes nothing; waits for claims in flight whose tag is the key's (probe).
  /// `lines`: which lines the probe asks for owned (probe_lines).
  template <class Eq>
  entry_t* find_or_stop(std::uint32_t bucket_bits, const Eq& eq, std::size_t& stop,
                        probe_lines lines = probe_lines::read) {
    std::uint32_t c = 0;
    return probe<true>(slots(), mask_, bucket_bits, eq, c, stop, lines);
  }

  /// Whether slot i is empty: its tag is 0 (no claim). Stable only while it holds: a slot
  /// once claimed is never empty again in a table readers probe.
  bool is_empty_slot(std::size_t i) const noexcept { return tag_at(slots(), mask_, i) == 0; }

  /// Claims empty slot i for a key with these bucket bits: (K1) a CAS of the slot's tag from
  /// 0 to the key's tag, the slot's one claim. False if another writer claimed it first.
  /// The claimer then publishes the slot (fill) or abandons it, and nothing else: until
  /// then readers pass the slot as another key's (probe, find_linear), writers probing for
  /// a key with the same tag wait for it (probe<true>), and a rebuild waits for it
  /// (for_each_settled). Every write path claims the slots of a table others can reach:
  /// lock-free inserts with credits (shard.hpp), and the shard mutex holder's.
  /// (K1) seq_cst: the claim against a closing (C1)/(C2) or a freezing (F1)/(F2) mutex
  /// holder; the claimer's (K2) follows (close).
  bool claim(std::size_t i, std::uint32_t bucket_bits) noexcept {
    return claim_tag(i, bucket_bits, std::memory_order_seq_cst);
  }

  /// Publishes claimed slot i as a new present entry (hash, key, word). The key slot `k` is
  /// copied (inline bytes, or the key node's pointer, which the table then owns).
  entry_t* fill(std::size_t i, std::uint32_t bucket_bits, const key_slot<Key>& k,
                std::uint64_t w) noexcept {
    entry_t& s = slots()[i];
    s.hash = bucket_bits;
    s.stored_key.copy_from(k);
    s.word.store(w, std::memory_order_relaxed);
    // (T2) release: pairs with (T1); the slot's fields are written before a reader can see
    //      the slot full.
    s.ctl.store(full_bit | state_present, std::memory_order_release);
    return &s;
  }

  /// Gives up claimed slot i for good: its ctl becomes nonzero without the full bit, which
  /// every probe passes and every walk skips. Its tag stays; the slot is not reused (it was
  /// counted against the table's room when it was claimed).
  void abandon(std::size_t i) noexcept {
    // Relaxed: publishes nothing (the claimer wrote none of the slot's fields), and a
    // writer or rebuild waiting on the slot (settle) only needs to see its ctl nonzero,
    // after which it skips the slot without reading more of it. Ends waits on it.
    slots()[i].ctl.store(abandoned_ctl, std::memory_order_relaxed);
  }

  /// Claims and fills the first empty slot on the key's path, with the shard mutex held, in
  /// a table others may claim in: a promotion's append of dirty keys (which no claim of
  /// theirs can publish: their table was closed before they went into the dirty map).
  /// Counts the slot. Must fit.
  entry_t* emplace_claimed(std::uint32_t bucket_bits, const key_slot<Key>& k,
                           std::uint64_t w) noexcept {
    std::size_t i = bucket_bits & mask_;
    for (;;) {
      if (is_empty_slot(i) && claim(i, bucket_bits)) break;
      i = (i + 1) & mask_;
    }
    ++used_;
    return fill(i, bucket_bits, k, w);
  }

  /// Counts a slot claimed by the shard mutex holder (claim, then fill), or `n` slots of
  /// credit handed to a thread for claims of its own (shard.hpp). Writer-only (shard mutex).
  void count_claimed(std::size_t n) noexcept { used_ += n; }

  /// Puts a new present entry into the first free slot on its key's path and publishes
  /// it, with plain stores: only for tables no other thread claims in (the dirty map, a
  /// rebuild's table before it is published). Writer-only; must fit.
  entry_t* emplace(std::uint32_t bucket_bits, const key_slot<Key>& k, std::uint64_t w) noexcept {
    const std::size_t i = free_slot(bucket_bits);
    set_tag(i, tag_of(bucket_bits));
    ++used_;
    return fill(i, bucket_bits, k, w);
  }

  /// Copies entry `e` of another table, present with word `w`, into a free slot of a table
  /// no other thread claims in (a rebuild's move, a dirty map's growth). Must fit.
  entry_t* emplace_copy(const entry_t& e, std::uint64_t w) noexcept {
    return emplace(e.hash, e.stored_key, w);
  }

  /// emplace_copy() into a rebuild's new table, unpublished, while other threads that help
  /// the rebuild copy into it too (shard.hpp, "helping"): the first empty slot on the key's
  /// path is taken with a relaxed CAS of its tag, which only has to make the slot one
  /// copier's (the table is published later, after every copier's release of its chunk and
  /// the rebuilder's acquire of them). Does not count the slot (the rebuilder counts all).
  /// False, having written nothing, if no empty slot is left (the copiers overflowed it).
  bool emplace_copy_shared(const entry_t& e, std::uint64_t w) noexcept {
    std::size_t i = e.hash & mask_;
    for (std::size_t n = 0; n <= mask_; ++n, i = (i + 1) & mask_) {
      if (is_empty_slot(i) && claim_tag(i, e.hash, std::memory_order_relaxed)) {
        fill(i, e.hash, e.stored_key, w);
        return true;
      }
    }
    return false;
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
        relocate(i, j);
        i = j;
      }
    }
    clear_slot(i);
    --used_;
    return true;
  }

  /// Calls f(entry&) for every full slot, in slot order. Safe without the lock when only
  /// inserts run concurrently (each slot is looked at once; a claim still in flight is an
  /// insert not yet done, and is not visited).
  template <class F>
  void for_each(F&& f) {
    entry_t* s = slots();
    for (std::size_t i = 0; i <= mask_; ++i) {
      if ((s[i].ctl.load(std::memory_order_acquire) & full_bit) != 0) f(s[i]);  // as (T1)
    }
  }

  /// for_each() for a rebuild or a clear, after freeze(): every claimed slot (tag set) is
  /// waited for until its claimer has filled or abandoned it, so a claim that did not see
  /// the table frozen is visited. The tag loads follow (F2): the store-buffering pair of
  /// freeze.
  template <class F>
  void for_each_settled(F&& f) {
    for_each_settled_in(0, capacity(), std::forward<F>(f));
  }
  /// for_each_settled() over slots [from, to), both multiples of 8.
  template <class F>
  void for_each_settled_in(std::size_t from, std::size_t to, F&& f) {
    entry_t* s = slots();
    const tag_word* tw = tags_of(s, mask_);
    for (std::size_t g = from >> 3; g < (to >> 3); ++g) {  // eight tags a word
      std::uint64_t w = tw[g].load(std::memory_order_relaxed);
      while (w != 0) {
        const auto lane = static_cast<unsigned>(__builtin_ctzll(w)) / 8U;
        w &= ~(std::uint64_t{0xff} << (lane * 8U));
        entry_t& e = s[g * 8 + lane];
        const std::uint32_t c = settle(e);
        if ((c & full_bit) != 0) f(e);
      }
    }
  }

  /// Empties the table without freeing what the entries point to (their keys and values
  /// changed hands). Writer-only, for tables no reader probes without the lock.
  void clear() noexcept {
    for (std::size_t i = 0; i <= mask_; ++i) clear_entry(slots()[i]);
    // The tags a word at a time (clear_slot's load and store per slot, eight per word).
    tag_word* tw = tags_of(slots(), mask_);
    for (std::size_t g = 0; g <= (mask_ >> 3); ++g) tw[g].store(0, std::memory_order_relaxed);
    used_ = 0;
  }

 private:
  /// The CAS of slot i's tag from 0 to the key's tag (claim, emplace_copy_shared), with
  /// `order` on success. False if the slot is taken. Another slot's claim in the same word
  /// makes the CAS fail with the new word: then look again.
  bool claim_tag(std::size_t i, std::uint32_t bucket_bits, std::memory_order order) noexcept {
    tag_word& tw = tags_of(slots(), mask_)[i >> 3];
    const unsigned sh = static_cast<unsigned>(i & 7U) * 8U;
    // Relaxed, this load and the CAS's failure: a guess at the word that the CAS checks.
    // A claim that fails because slot i is taken reads that claim without (T0)'s seq_cst,
    // and only emplace_claimed goes past slot i on the strength of it, with the mutex held
    // in a table already closed (no later closer needs (T0) there; the mutex orders it).
    // claim_new goes to the mutex and probes again there (seq_cst, as a writer),
    // insert_new_locked probes again, and emplace_copy_shared's table is unpublished.
    std::uint64_t old = tw.load(std::memory_order_relaxed);
    for (;;) {
      if (((old >> sh) & 0xffU) != 0) return false;
      if (tw.compare_exchange_weak(old, old | (tag_of(bucket_bits) << sh), order,
                                   std::memory_order_relaxed)) {
        return true;
      }
    }
  }

  entry_table(std::size_t capacity, std::uint64_t gen) noexcept : mask_(capacity - 1), gen_(gen) {}

  entry_t* slots() noexcept { return reinterpret_cast<entry_t*>(this + 1); }
  const entry_t* slots() const noexcept { return reinterpret_cast<const entry_t*>(this + 1); }

  /// Linear probing from the home slot, decided on the tags 16 slots at a time: the entry
  /// for which eq holds (`at` its slot, `c` its ctl as loaded), or null at the first empty
  /// slot (`at` that slot). Only entries whose tag matches are read, up to the group that
  /// holds the first empty tag; in that group the matching lanes past the empty one are
  /// read too (D39): in a table readers probe no key lies past an empty slot of its path,
  /// except one whose claim the probe saw before an earlier claim's tag (the two halves of
  /// the group load are not ordered), which is then a key present during the probe. A
  /// false match there costs one entry read in 128 such lanes; not masking them saves
  /// about 3 instructions a lookup. Lock-free, writes nothing. Tests the stored hash before eq
  /// unless Eq says not to (key_test).
  ///
  /// A probe may find a tag whose slot's ctl lacks the full bit: a claim in flight (ctl 0)
  /// or abandoned. A reader (Settle false) passes it as another key's slot: an abandoned
  /// claim holds no key, and a key being claimed is not present yet (an insert not done).
  /// It must not end there: writers may have claimed and published slots beyond it (claim).
  /// A writer (Settle true) that finds a claim in flight with its key's tag waits for it to
  /// be filled or abandoned (settle) and then tests it: the claim may be of its own key,
  /// and passing it would let the key be claimed twice.
  template <bool Settle, class Eq>
  NUMAMAP_ALWAYS_INLINE static entry_t* probe(entry_t* slots, std::size_t mask,
                                              std::uint32_t bucket_bits, const Eq& eq,
                                              std::uint32_t& c, std::size_t& at,
                                              probe_lines lines = probe_lines::read) {
    constexpr bool hash_first = hash_first_v<Eq>;
    const tag_word* tags = tags_of(slots, mask);
    const std::uint64_t tag = tag_of(bucket_bits);
    std::size_t i = bucket_bits & mask;
    // The home entry's line, asked for now: a hit's entry is there about half the time, and
    // its miss then overlaps the tag load instead of waiting for the match.
    if (lines == probe_lines::read) {
      __builtin_prefetch(&slots[i]);
    } else {
      prefetch_for_write(&slots[i]);
      prefetch_for_write(tags + ((i & ~std::size_t{15}) >> 3));
    }
    // The group's lanes from the home slot on; later groups: all lanes.
    std::uint32_t lanes = ~std::uint32_t{0} << (i & 15U);
    i &= ~std::size_t{15};
    for (;;) {
      std::uint32_t match = 0;
      std::uint32_t empty = 0;
      // The group starts at tag byte i, a multiple of 16 (its byte address, not a word
      // index: i >> 3 << 3 would cost an instruction).
      match_group<Settle>(
          reinterpret_cast<const tag_word*>(reinterpret_cast<const unsigned char*>(tags) + i), tag,
          match, empty);
      empty &= lanes;
      match &= lanes;
      while (match != 0) {
        const std::size_t j = i + static_cast<unsigned>(__builtin_ctz(match));
        entry_t& s = slots[j];
        // (T1) acquire: pairs with (T2), and as (E1) with entry's (E6). Seeing the slot full
        //      means seeing its hash and key (immutable from then on) and the word it was
        //      published (or last released) with.
        c = s.ctl.load(std::memory_order_acquire);
        if constexpr (Settle) {
          if (c == 0) c = settle(s);
        }
        if ((c & full_bit) != 0 && (!hash_first || s.hash == bucket_bits) && eq(s)) {
          at = j;
          return &s;
        }
        match &= match - 1;
      }
      if (empty != 0) {
        at = i + static_cast<unsigned>(__builtin_ctz(empty));
        return nullptr;
      }
      i = (i + 16) & mask;
      lanes = ~std::uint32_t{0};
    }
  }

  // ---- tags -------------------------------------------------------------------------------
  //
  // Slot i's tag is byte i % 8 of tag word i / 8. In a table other threads reach, a tag goes
  // from 0 to the key's tag once, by the CAS that claims the slot (claim), before the slot's
  // ctl is written, and never changes again. In a table only the shard mutex holder reaches
  // (the dirty map, a rebuild's new table before it is published) it is set with a load and
  // a store (set_tag), and moved or cleared with its slot by a dirty-map erase. Readers'
  // probes load tag words relaxed: a tag only points a probe at a slot, whose ctl the probe
  // then loads with acquire (T1); and an empty tag ends a probe, which is right by coherence
  // alone (find_linear). Writers' probes load them seq_cst (T0), for the claims (match_group).
  using tag_word = detail::atomic<std::uint64_t>;

  static tag_word* tags_of(entry_t* slots, std::size_t mask) noexcept {
    return reinterpret_cast<tag_word*>(slots + mask + 1);
  }
  static const tag_word* tags_of(const entry_t* slots, std::size_t mask) noexcept {
    return reinterpret_cast<const tag_word*>(slots + mask + 1);
  }
  static std::uint64_t tag_of(std::uint32_t bucket_bits) noexcept {
    return 0x80U | (bucket_bits >> 25);  // bits the index uses only past 2^25 slots
  }
  /// Sets slot i's tag: a load and a store of its word (no other thread writes it).
  void set_tag(std::size_t i, std::uint64_t tag) noexcept {
    tag_word& w = tags_of(slots(), mask_)[i >> 3];
    const unsigned sh = static_cast<unsigned>(i & 7U) * 8U;
    const std::uint64_t old = w.load(std::memory_order_relaxed);
    w.store((old & ~(std::uint64_t{0xff} << sh)) | (tag << sh), std::memory_order_relaxed);
  }
  /// For the group of 16 tags at g (its words g[0] and g[1]): bit k of `match` says lane k
  /// holds `tag`, bit k of `empty` that it is 0.
  ///
  /// On x86-64 one 16-byte load (movdqu, in inline assembly), elsewhere, and in the
  /// sanitizer and instrumented-atomics builds, two relaxed loads of the words (decisions.md
  /// D39). The assembly is what the relaxed loads mean: each tag is a byte, and every load
  /// reads each byte whole, so a lane holds either the tag it had or the one a claim's CAS
  /// gave it. Nothing orders the two halves, as nothing ordered the two word loads; the
  /// probe's reasoning asks only for coherence per tag (find_linear). A plain C++ read of
  /// the 16 bytes would be a data race on atomic objects, hence the assembly, which the
  /// compiler neither splits nor moves past the probe's loads that depend on its result.
  /// It saves about 4 instructions a lookup.
  ///
  /// Writer: the probe of a writer, who may claim the first empty slot it reports. (T0) Its
  /// loads are seq_cst, not relaxed: a writer C that reads another writer X's claim of slot
  /// s (a seq_cst CAS, (K1)) and claims past s, seeing its table open ((K2) before the
  /// closing store (C1)), must put X's claim before (C1) in the total order, so that the
  /// shard mutex holder that closes the table and then finds s still empty after its fence
  /// (C2) may conclude that no claim lies past s (insert_new_locked). With relaxed loads,
  /// a claim C saw need not precede (C2), and the holder could miss it: the C++ model is not
  /// multi-copy atomic (write-to-read causality). x86-64 and ARMv8 are, and compile a
  /// seq_cst load as they do a relaxed one (x86-64: mov, as the movdqu) or an acquire one
  /// (ARMv8: ldar); the reviewed proof asked for it (decisions.md D42).
  template <bool Writer = false>
  NUMAMAP_ALWAYS_INLINE static void match_group(const tag_word* g, std::uint64_t tag,
                                                std::uint32_t& match,
                                                std::uint32_t& empty) noexcept {
#if NUMAMAP_TAG_LOAD_ASM
    // The operand is the group's 16 bytes as bytes (Clang 14 crashed on a vector type).
    struct group_bytes {
      unsigned char b[16];
    };
    __m128i v;
    asm volatile("movdqu %1, %0" : "=x"(v) : "m"(*reinterpret_cast<const group_bytes*>(g)));
#else
    constexpr std::memory_order order =
        Writer ? std::memory_order_seq_cst : std::memory_order_relaxed;  // (T0)
    const std::uint64_t w0 = g[0].load(order);
    const std::uint64_t w1 = g[1].load(order);
#if NUMAMAP_TAGS_SSE2
    const __m128i v = _mm_set_epi64x(static_cast<long long>(w1), static_cast<long long>(w0));
#endif
#endif
#if NUMAMAP_TAGS_SSE2
    match = static_cast<std::uint32_t>(
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(tag)))));
    empty = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())));
#else
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    match =
        lane_bits(zero_lanes(w0 ^ (ones * tag))) | (lane_bits(zero_lanes(w1 ^ (ones * tag))) << 8U);
    empty = lane_bits(zero_lanes(w0)) | (lane_bits(zero_lanes(w1)) << 8U);
#endif
  }

  std::size_t free_slot(std::uint32_t bucket_bits) const noexcept {
    std::size_t i = bucket_bits & mask_;
    while (!is_empty_slot(i)) i = (i + 1) & mask_;
    return i;
  }

  /// Slot i's tag byte (a relaxed load of its word: see the tags' section).
  NUMAMAP_ALWAYS_INLINE static std::uint64_t tag_at(const entry_t* slots, std::size_t mask,
                                                    std::size_t i) noexcept {
    const tag_word& tw = tags_of(slots, mask)[i >> 3];
    return (tw.load(std::memory_order_relaxed) >> ((i & 7U) * 8U)) & 0xffU;
  }

  /// Waits until claimed slot s has been filled or abandoned; returns its ctl (acquire, as
  /// (T1): seeing it full means seeing its fields). A claimer's window is a few stores, but
  /// it may be preempted in it: spin politely, as for an entry's lock.
  static std::uint32_t settle(const entry_t& s) noexcept {
    backoff wait;
    for (;;) {
      const std::uint32_t c = s.ctl.load(std::memory_order_acquire);
      if (c != 0) return c;
      wait();
    }
  }

  /// Slot d (empty) takes slot s's entry; s is left to the caller. Writer-only (dirty map).
  void relocate(std::size_t d, std::size_t s) noexcept {
    entry_t& dst = slots()[d];
    const entry_t& src = slots()[s];
    dst.hash = src.hash;
    dst.stored_key.copy_from(src.stored_key);
    dst.word.store(src.word.load(std::memory_order_relaxed), std::memory_order_relaxed);
    dst.ctl.store(src.ctl.load(std::memory_order_relaxed), std::memory_order_relaxed);
    set_tag(d, tag_of(src.hash));
  }
  void clear_slot(std::size_t i) noexcept {
    clear_entry(slots()[i]);
    set_tag(i, 0);
  }
  /// A slot's fields back to empty (its tag is the caller's). Relaxed: writer-only (a table
  /// only the shard mutex holder reaches), which the mutex orders.
  static void clear_entry(entry_t& s) noexcept {
    s.ctl.store(0, std::memory_order_relaxed);
    s.word.store(0, std::memory_order_relaxed);
    s.hash = 0;
  }

  static constexpr std::uint32_t claim_state_open = 0;
  static constexpr std::uint32_t claim_state_closed = 1;
  static constexpr std::uint32_t claim_state_frozen = 2;

  // mask_, gen_ and claims_ are read by lock-free writers (every probe, every lock of an
  // entry, every claim); used_ changes with every insert under the mutex, so it has a line
  // of its own: on theirs, each insert by one thread took the line from the other's
  // lock-free writers (decisions.md D26).
  std::size_t mask_;
  std::uint64_t gen_;
  detail::atomic<std::uint32_t> claims_{claim_state_open};
  alignas(cacheline_size) std::size_t used_ = 0;  // writer-only (shard mutex)
};

/// The smallest power of two >= n (n >= 1).
inline std::size_t ceil_pow2(std::size_t n) noexcept {
  std::size_t c = 1;
  while (c < n) c <<= 1;
  return c;
}

/// The table capacities whose read probe starts on the tags (decisions.md D33, D54): those
/// whose map's tags (one such table per shard) fit a quarter of the cache (the rest is for
/// the entry lines that stream through). Past that a lookup waits for two lines, the tag
/// group's and the entry's, instead of one (1M keys: 0.74-0.82x absl against 0.90-1.06x
/// slot by slot; 10M: 1.13 against 1.39; at 300K keys, tags of half the cache, no better).
/// Below it the tags pay whether the entries fit the cache or not: where they miss it (100K
/// keys) the match finds the one entry line to wait for, and where they fit it (1K, 10K
/// keys) it takes 17 instructions more than the slot-by-slot probe and saves most of its
/// mispredicted branches on the probe's length (0.23 -> 0.04 a lookup at 1K keys; Intel
/// VM: 1.05-1.43x the slot probe's speed at 1K and 10K keys). Writers' probes use the tags
/// at every size.
struct tag_window {
  std::size_t max_capacity = 0;  ///< the largest capacity in the window (0: none)
  bool contains(std::size_t capacity) const noexcept { return capacity <= max_capacity; }
  /// The window for `shards` tables against a cache of `cache_bytes` (per core: one
  /// thread's probes go to every shard): every capacity up to the last whose shards' tags
  /// fit a quarter of it (none: an empty window).
  static tag_window sized(std::size_t cache_bytes, std::size_t shards) noexcept {
    const std::size_t tags_fit = cache_bytes / 4 / shards;
    return {ceil_pow2(tags_fit + 1) >> 1U};
  }
  static tag_window all() noexcept { return {~std::size_t{0}}; }
  static tag_window none() noexcept { return {0}; }
};

/// The size of one core's L2 cache as the C library reports it, or 1 MiB where it does not
/// (some virtual machines and non-x86 systems report 0).
inline std::size_t l2_cache_bytes() noexcept {
#if defined(_SC_LEVEL2_CACHE_SIZE)
  const long n = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (n > 0) return static_cast<std::size_t>(n);
#endif
  return std::size_t{1} << 20U;
}

/// Capacity for n entries at load <= 1/2 (room to grow to the maximum load, 13/16, before
/// the next rebuild).
inline std::size_t capacity_for(std::size_t n) noexcept {
  const std::size_t c = ceil_pow2(n * 2);
  return c < table_min_capacity ? table_min_capacity : c;
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
