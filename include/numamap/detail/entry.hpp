// numamap/detail/entry.hpp — one key's entry: the key's single linearization point.
//
// Entries live inside the slots of a shard's tables (table.hpp): a probe that finds the key
// has the entry's line already. Every key present in a shard has exactly one live entry.
// Its state and value sit in two words guarded by a sequence lock:
//
//   ctl   [count:27][moved:1][full:1][lock:1][state:2]   0: an empty slot
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
// - expunged: the entry is no longer in the shard's current structures. Final: a writer that
//   finds it takes the shard mutex and looks again in the current view. Only entries of
//   tables that stopped being current are expunged. Two kinds:
//   - dropped (a rebuild left a deleted entry out, or clear ran): readers see it absent;
//   - moved (the `moved` bit, with the state bits left at present): a rebuild froze the
//     present entry and copied it into the new table. Readers that still reach the old copy
//     see it present with its frozen value, which was the key's value when the rebuild froze
//     it, a moment inside their operation (they loaded the old view before the new one was
//     published). Writers see it expunged (locked::state).
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
inline constexpr std::uint32_t full_bit = 8;    // the slot holds an entry (never cleared in a
                                                // table readers probe)
inline constexpr std::uint32_t moved_bit = 16;  // expunged by a move: frozen, reads present
inline constexpr std::uint32_t count_one = 32;

/// Keys stored in the slot itself.
template <class Key>
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
    std::uint32_t state;  // as readers see it: a moved entry is present
    std::uint64_t word;
  };
  /// What a locked writer found.
  struct locked {
    std::uint32_t ctl;
    std::uint64_t word;
    /// The state a writer acts on: a moved entry is expunged (see unlock_moved).
    std::uint32_t state() const noexcept {
      return (ctl & moved_bit) != 0 ? state_expunged : (ctl & state_mask);
    }
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
  bool is_full() const noexcept { return ctl.load(std::memory_order_relaxed) != 0; }

  /// The state a reader sees: a moved entry keeps the state bits of present (unlock_moved),
  /// so one mask does it.
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

  /// Takes the writer lock; returns what the entry held.
  locked lock() noexcept {
    backoff wait;
    std::uint32_t c = ctl.load(std::memory_order_relaxed);
    for (;;) {
      if ((c & lock_bit) == 0 &&
          // acquire: orders this writer after the previous writer's unlock (E6).
          ctl.compare_exchange_weak(c, c | lock_bit, std::memory_order_acquire,
                                    std::memory_order_relaxed)) {
        // (E5) release fence: the word store that follows cannot be seen by a reader
        //      without that reader also seeing the lock bit (pairs with (E3)).
        fence_release();
        return {c, word.load(std::memory_order_relaxed)};
      }
      if ((c & lock_bit) != 0) {
        wait();
        c = ctl.load(std::memory_order_relaxed);
      }
    }
  }

  /// Publishes `w` in state `s` and releases the lock.
  void unlock(const locked& l, std::uint64_t w, std::uint32_t s) noexcept {
    word.store(w, std::memory_order_relaxed);
    // (E6) release: the word (and a new value node) before the new ctl.
    ctl.store(((l.ctl + count_one) & ~(lock_bit | state_mask)) | s, std::memory_order_release);
  }

  /// A rebuild, holding the lock of a present entry it has copied: freezes it (moved, the
  /// word kept for readers that still reach it) and releases the lock. The state bits stay
  /// those of present, which is what readers see (visible_state); writers see the moved bit
  /// as expunged (locked::state) and go to the shard mutex. transition() leaves it alone: it
  /// only acts on deleted or expunged state bits.
  void unlock_moved(const locked& l) noexcept {
    // (E6) as unlock. The count moves, so a reader's (E1)..(E4) sees the change.
    ctl.store(((l.ctl + count_one) & ~(lock_bit | state_mask)) | moved_bit | state_present,
              std::memory_order_release);
  }

  /// deleted -> expunged in one step, without the lock (a rebuild, shard mutex held).
  /// Returns false, changing nothing, when the entry is present. The count moves, so a
  /// reader's (E1)..(E4) sees the change; a writer's lock CAS fails and retries.
  bool try_expunge_deleted() noexcept { return transition(state_deleted, state_expunged); }
  /// expunged -> deleted: undoes try_expunge_deleted (shard mutex held throughout).
  void unexpunge() noexcept { (void)transition(state_expunged, state_deleted); }

  /// Releases the lock without a change.
  void unlock_unchanged(const locked& l) noexcept {
    ctl.store(l.ctl, std::memory_order_release);  // as (E6)
  }

 private:
  /// from -> to if the entry is in state `from` (waiting out a writer's lock).
  bool transition(std::uint32_t from, std::uint32_t to) noexcept {
    backoff wait;
    std::uint32_t c = ctl.load(std::memory_order_relaxed);
    for (;;) {
      if ((c & lock_bit) != 0) {
        wait();
        c = ctl.load(std::memory_order_relaxed);
        continue;
      }
      if ((c & state_mask) != from) return false;
      // Relaxed is enough: the word does not change (deleted and expunged entries hold no
      // value), so there is nothing to publish with this store, and the rebuild's own
      // later accesses are ordered by the shard mutex, not by this entry.
      if (ctl.compare_exchange_weak(c, ((c + count_one) & ~state_mask) | to,
                                    std::memory_order_relaxed, std::memory_order_relaxed)) {
        return true;
      }
    }
  }
};

}  // namespace detail
NUMAMAP_END_NAMESPACE
