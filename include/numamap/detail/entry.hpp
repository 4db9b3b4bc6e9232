// numamap/detail/entry.hpp — one key's entry: the key's single linearization point.
//
// Every key present in a shard has exactly one live entry. Its state and value sit in two
// words guarded by a sequence lock:
//
//   ctl   [count:29][lock:1][state:2]   state: present, deleted, expunged
//   word  the value's bits (trivially copyable values of up to 8 bytes: "inline"), or a
//         pointer to an immutable heap node holding the value ("out of line")
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
// - expunged: the entry is no longer in the shard's current structures (a rebuild dropped
//   it, the dirty map lost it, or clear ran). Final: a writer that finds it takes the shard
//   mutex and looks again. Only entries in abandoned tables are ever expunged.
#pragma once

#include <cstdint>
#include <thread>
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
inline constexpr std::uint32_t count_one = 8;

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

  detail::atomic<std::uint32_t> ctl{state_present};
  const std::uint32_t hash;  // bucket bits (hash_mix.hpp); immutable
  detail::atomic<std::uint64_t> word;
  const Key key;  // immutable

  template <class... A>
  entry(std::uint32_t h, std::uint64_t w, A&&... key_args)
      : hash(h), word(w), key(std::forward<A>(key_args)...) {}

  /// A consistent (state, word) pair. Writes nothing.
  NUMAMAP_ALWAYS_INLINE snapshot read() const noexcept {
    backoff wait;
    for (;;) {
      // (E1) acquire: pairs with (E6); seeing an unlock means seeing the word (and the value
      //      node) it published.
      const std::uint32_t c1 = ctl.load(std::memory_order_acquire);
      if ((c1 & lock_bit) == 0) {
        const std::uint64_t w = word.load(std::memory_order_relaxed);  // (E2)
        // (E3) acquire fence: pairs with (E5); if (E2) read a word stored after a lock,
        //      (E4) sees that lock or later and the pair is rejected.
        fence_acquire();
        const std::uint32_t c2 = ctl.load(std::memory_order_relaxed);  // (E4)
        if (c1 == c2) return {c1 & state_mask, w};
      }
      wait();
    }
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
