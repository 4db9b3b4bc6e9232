// numamap/detail/entry.hpp — one key's entry: the key's single linearization point.
//
// Entries live inside the slots of a shard's tables (table.hpp): a probe that finds the key
// has the entry's line already. Every key present in a shard has exactly one live entry.
// Its state and value sit in two words guarded by a sequence lock:
//
//   ctl   [count:28][full:1][lock:1][state:2]   0: an empty slot (or one claimed and not yet
//         filled, table.hpp); without the full bit but not 0: a claim given up
//   hash  the key's bucket bits; written before the slot is published, then immutable
//   word  the value's bits (trivially copyable values of up to 8 bytes: "inline"), or a
//         pointer to an immutable heap node holding the value ("out of line")
//   key   the key itself when trivially copyable and at most 8 bytes, else a pointer to an
//         immutable key node (so moving an entry to another table never copies a key)
//
// Readers never write: they read ctl, word, ctl again and retry if ctl changed or was
// locked (a seqlock). Writers of one entry serialise on the lock bit, change word and state,
// and bump the count. A writer's critical section is a few instructions and never runs user
// code; values are built (and nodes allocated) before it and freed after it.
//
// States, as in Go's sync.Map:
// - present: the key maps to `word`.
// - deleted: the key is absent, but the entry is still in the shard's current read table;
//   a store revives it without the shard mutex.
// - expunged: clear() dropped the entry; readers see it absent. Final: a writer that finds
//   it takes the shard mutex and looks again in the current view.
// A rebuild does not change entries: it freezes their table (table.hpp, freeze) and copies
// the present ones into the new table. A writer that locks an entry of a frozen table
// releases it unchanged and goes to the shard mutex, as for an expunged one. Readers that
// still reach the old copy see it as it was when frozen: a present entry with the key's
// value at that moment, a moment inside their operation (they loaded the old view before
// the new one was published).
#pragma once

#include <cstdint>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>

#include "../config.hpp"
#include "atomic.hpp"
#include "cacheline.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

inline constexpr std::uint32_t state_present = 0;
inline constexpr std::uint32_t state_deleted = 1;
inline constexpr std::uint32_t state_expunged = 2;
inline constexpr std::uint32_t state_mask = 3;
inline constexpr std::uint32_t lock_bit = 4;
inline constexpr std::uint32_t full_bit = 8;  // the slot holds an entry (never cleared in a
                                              // table readers probe)
inline constexpr std::uint32_t count_one = 16;
/// The ctl of a slot claimed and then given up (table.hpp, abandon): nonzero, so it ends
/// no probe and no wait, and without the full bit, so no probe or walk takes it for an
/// entry.
inline constexpr std::uint32_t abandoned_ctl = state_expunged;

/// Keys stored in the slot itself.
template <class Key>
// NOLINTNEXTLINE(misc-redundant-expression): sizeof and alignof are equal for many Key
inline constexpr bool key_inline = std::is_trivially_copyable_v<Key> && sizeof(Key) <= 8 &&
                                   alignof(Key) <= 8;

/// Where an entry keeps its key: the key's bytes, or a pointer to an immutable node.
template <class Key, bool Inline = key_inline<Key>>
struct key_slot {
  alignas(Key) unsigned char bytes[sizeof(Key)];
  const Key& get() const noexcept { return *std::launder(reinterpret_cast<const Key*>(bytes)); }
  /// Copies another slot's key (trivially copyable: cannot throw).
  void copy_from(const key_slot& o) noexcept { new (bytes) Key(o.get()); }
};
/// A key kept apart from its slot: immutable, allocated from the shard's node memory.
template <class Key>
struct key_node {
  Key k;
};
template <class Key>
struct key_slot<Key, false> {
  key_node<Key>* node;
  const Key& get() const noexcept { return node->k; }
  void copy_from(const key_slot& o) noexcept { node = o.node; }  // the node changes hands
};

/// Spins politely: pause first, then yield (a writer holding an entry may be preempted).
struct backoff {
  unsigned n = 0;
  void operator()() noexcept {
    if (++n < 64) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
};

template <class Key>
struct entry {
  struct snapshot {
    std::uint32_t state;
    std::uint64_t word;
  };
  /// What a locked writer found.
  struct locked {
    std::uint32_t ctl;
    std::uint64_t word;
    std::uint32_t state() const noexcept { return ctl & state_mask; }
  };

  // An empty slot: all zero. The table constructs every slot so before it is shared, and
  // fills a slot's fields before publishing it with a release store of ctl (table.hpp).
  detail::atomic<std::uint32_t> ctl{0};
  std::uint32_t hash = 0;  // bucket bits (hash_mix.hpp); immutable once published
  detail::atomic<std::uint64_t> word{0};
  key_slot<Key> stored_key;  // immutable once published

  entry() noexcept : stored_key() {}
  ~entry() = default;
  // An entry is its slot: it never moves as an object (moves copy fields, see table.hpp).
  entry(const entry&) = delete;
  entry& operator=(const entry&) = delete;
  entry(entry&&) = delete;
  entry& operator=(entry&&) = delete;

  const Key& key() const noexcept { return stored_key.get(); }
  /// Whether the slot holds an entry. Relaxed: for slots only the shard mutex holder
  /// writes (the dirty map, an unpublished table), which the mutex orders.
  bool is_full() const noexcept { return (ctl.load(std::memory_order_relaxed) & full_bit) != 0; }

  static std::uint32_t visible_state(std::uint32_t c) noexcept { return c & state_mask; }

  /// A consistent (state, word) pair. Writes nothing.
  NUMAMAP_ALWAYS_INLINE snapshot read() const noexcept {
    backoff wait;
    snapshot out{};
    for (;;) {
      // (E1) acquire: pairs with (E6); seeing an unlock means seeing the word (and the value
      //      node) it published.
      if (read_from(ctl.load(std::memory_order_acquire), out)) return out;
      wait();
    }
  }

  /// The rest of read() for a reader whose probe loaded ctl as `c1` (acquire, as (E1)):
  /// false, when the entry was locked or changed since; then the caller reads again.
  NUMAMAP_ALWAYS_INLINE bool read_from(std::uint32_t c1, snapshot& out) const noexcept {
    if ((c1 & lock_bit) != 0) return false;
    const std::uint64_t w = word.load(std::memory_order_relaxed);  // (E2)
    // (E3) acquire fence: pairs with (E5); if (E2) read a word stored after a lock, (E4)
    //      sees that lock or later and the pair is rejected.
    fence_acquire();
    if (ctl.load(std::memory_order_relaxed) != c1) return false;  // (E4)
    out = {visible_state(c1), w};
    return true;
  }

  /// Takes the writer lock; returns what the entry held. The first try is inline (a load
  /// and a CAS, what a lock of an entry no other writer holds costs); waiting for a holder
  /// is a call (lock_contended). GCC 12 made the whole function a call.
  NUMAMAP_ALWAYS_INLINE locked lock() noexcept {
    // Relaxed, here and in lock_contended: only a guess at ctl for the CAS, which reads it
    // again and orders (L1); nothing is read on the strength of these loads.
    std::uint32_t c = ctl.load(std::memory_order_relaxed);
    if (try_lock_from(c)) return acquired(c);
    return lock_contended(c);
  }

  /// Publishes `w` in state `s` and releases the lock.
  void unlock(const locked& l, std::uint64_t w, std::uint32_t s) noexcept {
    // Relaxed: the lock is held; a reader that sees this word then sees the lock bit or a
    // later ctl ((E5), (E3), (E4)) and rejects it, and the (E6) release below publishes it
    // with the new ctl.
    word.store(w, std::memory_order_relaxed);
    // (E6) release: the word (and a new value node) before the new ctl.
    ctl.store(((l.ctl + count_one) & ~(lock_bit | state_mask)) | s, std::memory_order_release);
  }

  /// Releases the lock without a change.
  void unlock_unchanged(const locked& l) noexcept {
    ctl.store(l.ctl, std::memory_order_release);  // as (E6)
  }

 private:
  /// One try at the lock from ctl's guessed value c: false, with c refreshed by the failed
  /// CAS, if the lock is held or ctl moved (or the weak CAS failed spuriously).
  NUMAMAP_ALWAYS_INLINE bool try_lock_from(std::uint32_t& c) noexcept {
    // (L1) acquire: orders this writer after the previous writer's unlock (E6).
    //      seq_cst: a writer that reached the entry without the shard mutex then loads its
    //      table's frozen flag (F3); against the rebuild's (F1)/(F2) either the writer sees
    //      the flag or the rebuild sees this lock (table.hpp, freeze). On x86-64 the same
    //      instruction as acquire. Failure relaxed: a failed CAS only refreshes c for the
    //      next try, and nothing is read on its strength.
    return (c & lock_bit) == 0 &&
           ctl.compare_exchange_weak(c, c | lock_bit, std::memory_order_seq_cst,
                                     std::memory_order_relaxed);
  }
  /// What lock() returns once (L1) succeeded with ctl c.
  NUMAMAP_ALWAYS_INLINE locked acquired(std::uint32_t c) noexcept {
    // (E5) release fence: the word store that follows cannot be seen by a reader without
    //      that reader also seeing the lock bit (pairs with (E3)).
    fence_release();
    // Relaxed: (L1)'s acquire already orders this load after the word's last store,
    // published by the previous writer's (E6), or for a new entry by (T2) or a rebuild's
    // publication (H3, S3); writers are serialised by the lock.
    return {c, word.load(std::memory_order_relaxed)};
  }
  /// lock() after its first try failed (c: ctl as that try left it): waits politely while
  /// another writer holds the lock, and tries again.
  NUMAMAP_NOINLINE locked lock_contended(std::uint32_t c) noexcept {
    backoff wait;
    for (;;) {
      if ((c & lock_bit) != 0) {
        wait();
        c = ctl.load(std::memory_order_relaxed);
      }
      if (try_lock_from(c)) return acquired(c);
    }
  }
};

}  // namespace detail
NUMAMAP_END_NAMESPACE
