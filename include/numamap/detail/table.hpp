// numamap/detail/table.hpp — the flat, open-addressing table of entry pointers.
//
// One array of 64-bit slots, linear probing. A slot holds `tag << 48 | entry pointer`
// (0 = empty), so a probe reads 8 slots per 64-byte line and dereferences an entry only
// when its 16-bit tag matches: a hit costs one slot line and one entry line.
//
// Two uses:
// - the read snapshot's table: readers probe it without a lock while the shard's writer
//   (holding the shard mutex) may fill empty slots. Slots only ever go from empty to full;
//   a table that must lose entries is replaced by a new one (see shard.hpp).
// - the dirty map: only touched with the shard mutex held; it also erases (backward shift).
//
// The table and its slots are one allocation from the shard's node memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#include "../config.hpp"
#include "atomic.hpp"
#include "cacheline.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

inline constexpr unsigned tag_shift = 48;
inline constexpr std::uint64_t pointer_mask = (std::uint64_t{1} << tag_shift) - 1;

inline std::uint64_t make_slot(const void* e, std::uint16_t tag) noexcept {
  return (std::uint64_t{tag} << tag_shift) | reinterpret_cast<std::uintptr_t>(e);
}
inline std::uint16_t slot_tag(std::uint64_t w) noexcept {
  return static_cast<std::uint16_t>(w >> tag_shift);
}
template <class E>
E* slot_entry(std::uint64_t w) noexcept {
  return reinterpret_cast<E*>(static_cast<std::uintptr_t>(w & pointer_mask));
}

/// E must have a member `std::uint32_t hash` (the bucket bits).
template <class E>
class entry_table {
 public:
  static constexpr std::size_t min_capacity = 8;

  static constexpr std::size_t bytes_for(std::size_t capacity) noexcept {
    return sizeof(entry_table) + capacity * sizeof(detail::atomic<std::uint64_t>);
  }

  /// Builds a table of `capacity` (a power of two) empty slots in memory `mem` of
  /// bytes_for(capacity) bytes.
  static entry_table* create_at(void* mem, std::size_t capacity) noexcept {
    auto* t = new (mem) entry_table(capacity);
    for (std::size_t i = 0; i < capacity; ++i)
      new (&t->slots()[i]) detail::atomic<std::uint64_t>(0);
    return t;
  }

  std::size_t capacity() const noexcept { return mask_ + 1; }
  /// Full slots. Writer-only (shard mutex).
  std::size_t used() const noexcept { return used_; }
  /// Whether `n` more entries fit under the maximum load (3/4).
  bool fits(std::size_t n) const noexcept { return (used_ + n) * 4 <= capacity() * 3; }

  /// Finds the entry with this hash for which `eq(entry)` holds. Lock-free, writes nothing.
  template <class Eq>
  E* find(std::uint32_t bucket_bits, std::uint16_t tag, const Eq& eq) const {
    return find_masked(this, mask_, bucket_bits, tag, eq);
  }

  /// find() with the mask given by the caller (the read view carries it).
  template <class Eq>
  NUMAMAP_ALWAYS_INLINE static E* find_masked(const entry_table* t, std::size_t mask,
                                              std::uint32_t bucket_bits, std::uint16_t tag,
                                              const Eq& eq) {
    const detail::atomic<std::uint64_t>* slots = t->slots();
    std::size_t i = bucket_bits & mask;
    for (;;) {
      // (T1) acquire: pairs with (T2). Seeing the slot full means seeing the entry's
      //      immutable fields (key, hash) that were written before it was published.
      const std::uint64_t w = slots[i].load(std::memory_order_acquire);
      if (w == 0) return nullptr;
      if (slot_tag(w) == tag) {
        E* e = slot_entry<E>(w);
        if (eq(*e)) return e;
      }
      i = (i + 1) & mask;
    }
  }

  /// Inserts a slot word whose key is not in the table. Writer-only; must fit.
  void insert(std::uint64_t w) noexcept {
    std::size_t i = slot_entry<E>(w)->hash & mask_;
    while (slots()[i].load(std::memory_order_relaxed) != 0) i = (i + 1) & mask_;
    // (T2) release: pairs with (T1); the entry is fully built before a reader can see it.
    slots()[i].store(w, std::memory_order_release);
    ++used_;
  }

  /// Removes the slot holding `e` (backward-shift deletion). Only for tables no reader
  /// probes without the lock (the dirty map). Returns whether e was there.
  bool erase(const E* e) noexcept {
    std::size_t i = e->hash & mask_;
    for (;;) {
      const std::uint64_t w = slots()[i].load(std::memory_order_relaxed);
      if (w == 0) return false;
      if (slot_entry<E>(w) == e) break;
      i = (i + 1) & mask_;
    }
    std::size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      const std::uint64_t w = slots()[j].load(std::memory_order_relaxed);
      if (w == 0) break;
      const std::size_t home = slot_entry<E>(w)->hash & mask_;
      // Move w back into the hole at i unless its home lies cyclically in (i, j].
      const bool home_between = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
      if (!home_between) {
        slots()[i].store(w, std::memory_order_relaxed);
        i = j;
      }
    }
    slots()[i].store(0, std::memory_order_relaxed);
    --used_;
    return true;
  }

  /// Calls f(slot word) for every full slot, in slot order. Safe without the lock when
  /// only inserts run concurrently (each slot is read once).
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i <= mask_; ++i) {
      const std::uint64_t w = slots()[i].load(std::memory_order_acquire);  // as (T1)
      if (w != 0) f(w);
    }
  }

  /// for_each for walks that touch every entry (rebuilds, frees): the entry of the slot
  /// `ahead` places on is prefetched, so the entries' cache misses overlap instead of
  /// queueing behind each other (a rebuild's CAS per deleted entry would otherwise wait for
  /// each miss in turn). Same guarantees as for_each.
  template <class F>
  void for_each_prefetched(F&& f) const {
    constexpr std::size_t ahead = 8;
    for (std::size_t i = 0; i <= mask_; ++i) {
      if (i + ahead <= mask_) {
        // Relaxed: the word only feeds a prefetch, which reads nothing the program sees.
        const std::uint64_t a = slots()[i + ahead].load(std::memory_order_relaxed);
        if (a != 0) prefetch_for_write(slot_entry<E>(a));
      }
      const std::uint64_t w = slots()[i].load(std::memory_order_acquire);  // as (T1)
      if (w != 0) f(w);
    }
  }

  /// Empties the table. Writer-only, for tables no reader probes without the lock.
  void clear() noexcept {
    for (std::size_t i = 0; i <= mask_; ++i) slots()[i].store(0, std::memory_order_relaxed);
    used_ = 0;
  }

 private:
  explicit entry_table(std::size_t capacity) noexcept : mask_(capacity - 1) {}

  detail::atomic<std::uint64_t>* slots() noexcept {
    return reinterpret_cast<detail::atomic<std::uint64_t>*>(this + 1);
  }
  const detail::atomic<std::uint64_t>* slots() const noexcept {
    return reinterpret_cast<const detail::atomic<std::uint64_t>*>(this + 1);
  }

  std::size_t mask_;
  std::size_t used_ = 0;  // writer-only
};

/// The smallest power of two >= n (n >= 1).
inline std::size_t ceil_pow2(std::size_t n) noexcept {
  std::size_t c = 1;
  while (c < n) c <<= 1;
  return c;
}

/// Capacity for n entries at load <= 1/2 (room to grow to 3/4 before the next rebuild).
inline std::size_t capacity_for(std::size_t n) noexcept {
  const std::size_t c = ceil_pow2(n * 2);
  return c < 8 ? 8 : c;
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
