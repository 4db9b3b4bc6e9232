// numamap/detail/epoch.hpp — epoch-based memory reclamation, one domain per map.
//
// The problem. A reader finds a snapshot, an entry or a value node through atomic pointers
// and uses it without a lock. A writer that unlinks such an object cannot free it at once:
// a reader may still hold the pointer. Reclamation must wait until no reader can.
//
// The scheme (Fraser's epochs, shaped like crossbeam-epoch):
// - The domain keeps a global epoch E. Each thread that uses the domain owns a record on
//   its own cache line holding (epoch << 1 | active).
// - `pin()` announces "active at E" in the thread's record; pins nest (a nested pin sees
//   the active bit and does nothing) and the outermost guard unpins when it dies.
// - `retire(p)` puts p into the calling thread's bag, stamped with the global epoch read
//   after p was unlinked.
// - E may advance from e to e + 1 only when every active record announces e. Hence, while a
//   thread stays pinned at e, E <= e + 1; an object retired at r is unreachable for every
//   reader once E >= r + 2, and is freed then.
//
// The cost on the read path. Announcing must be ordered before the reader's loads of shared
// pointers (a StoreLoad order): classically a full fence per pin. Here the fence is
// asymmetric, as in liburcu's memb flavour and folly's hazard pointers: the reader issues a
// compiler barrier only, and the rare thread that advances the epoch calls
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full barrier on every CPU that
// runs a thread of this process. Where the kernel refuses membarrier, both sides fall back
// to std::atomic_thread_fence(seq_cst). ThreadSanitizer does not model fences; it needs none
// here, because every happens-before edge it must see goes through release/acquire pairs:
// a reader's unpin (D4) or next pin (D2) -> a scan (D6) -> the advance (D7) -> the epoch
// load of the thread that frees (D12); see docs/design.md.
//
// No registration is asked of the user's threads: a thread's first pin on a domain claims a
// free record (or adds one), a thread-local cache remembers it, and a thread-exit hook gives
// the record back, with what the thread retired and could not free yet left in its bag
// ("leftovers"): the next thread that claims the record, or any thread's collect, frees
// them. A thread that uses a map after its cache was destroyed (from a thread_local's or, on
// the main thread, a static object's destructor) claims a record per operation and gives it
// back at the operation's end (pin). The domain's destructor frees every retired object and
// every record, so destroying a map frees all.
//
// Bound: a thread tries to advance and collect at the end of the pin in which its
// retirements reached `collect_every` (a big object, such as a rebuild's old table, counts
// one per KiB), so a bag holds at most the
// objects of the last two epochs plus one batch — unless a thread stays pinned, which holds
// back every object retired meanwhile. A thread preempted while pinned
// (threads outnumbering cores) is the common case: a thread whose bag passes `high_water`
// and finds the epoch blocked by another thread yields a few times to let it run (see
// collect). A long `range` callback is the other: it keeps its thread pinned, and memory
// waits for it. A thread that exits frees what the epoch allows and leaves the rest in its
// record for the next claimer or collector.
//
// Frees run users' destructors, which may call a map, this one included: retire() never
// frees (it may run with a shard's mutex held), a collect runs where the thread holds no
// lock of the map (at the end of its outermost pin, or unpinned), and a bag's frees are
// reentrant (retire_bag::free_before). Decisions.md D44.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "atomic.hpp"
#include "cacheline.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

// ---------------------------------------------------------------------------------------
// Asymmetric fences.

/// Whether membarrier(PRIVATE_EXPEDITED) works in this process; registers on first call.
inline bool membarrier_usable() noexcept {
#if defined(__linux__) && defined(SYS_membarrier) && !NUMAMAP_TSAN
  // Values from <linux/membarrier.h>, kept here so no kernel header reaches users.
  constexpr int cmd_query = 0;
  constexpr int cmd_private_expedited = 1 << 3;
  constexpr int cmd_register_private_expedited = 1 << 4;
  static const bool usable = [] {
    const long cmds = ::syscall(SYS_membarrier, cmd_query, 0, 0);
    if (cmds < 0 || (cmds & cmd_private_expedited) == 0) return false;
    return ::syscall(SYS_membarrier, cmd_register_private_expedited, 0, 0) == 0;
  }();
  return usable;
#else
  // Under TSan the fence fallback is used: TSan does not see the IPIs membarrier sends.
  return false;
#endif
}

/// The reader's half: cheap when the writer's half is membarrier.
inline void light_fence(bool membarrier) noexcept {
  if (membarrier) {
    std::atomic_signal_fence(std::memory_order_seq_cst);  // compiler barrier only
  } else {
    fence_seq_cst();
  }
}

/// The advancing thread's half: a full barrier on every CPU running one of our threads.
inline void heavy_fence(bool membarrier) noexcept {
#if defined(__linux__) && defined(SYS_membarrier) && !NUMAMAP_TSAN
  if (membarrier) {
    constexpr int cmd_private_expedited = 1 << 3;
    // Cannot fail once registered (membarrier_usable). If it ever did, readers that rely
    // on it would be unprotected: stop rather than free memory a reader may hold.
    if (::syscall(SYS_membarrier, cmd_private_expedited, 0, 0) != 0) std::terminate();
    return;
  }
#else
  (void)membarrier;
#endif
  fence_seq_cst();
}

// ---------------------------------------------------------------------------------------
// Records and the thread-local cache.

class epoch_domain;

/// A retired object: `free_fn(ctx, p)` frees it once the epoch allows.
struct retired {
  void* p;
  void (*free_fn)(void* ctx, void* p);
  void* ctx;
  std::uint64_t epoch;
};

/// A thread's retired objects in the order retired. The stamps never decrease (each is a
/// load of the monotonic global epoch by the same thread), so what an epoch allows to free
/// is always a prefix: freeing costs O(freed), not O(bag), however many objects a rebuild
/// retired at once. The freed prefix is dropped lazily, when it outweighs the rest.
class retire_bag {
 public:
  std::size_t size() const noexcept { return items_.size() - head_; }
  bool empty() const noexcept { return size() == 0; }
  /// Makes room for n more push_back calls, so that they cannot throw.
  /// Inline when there is room (every write calls this; vector::reserve is an out-of-line
  /// call of some 25 instructions even when it has nothing to do), forced: GCC 12 made the
  /// whole function a call of its own in the shard's write paths. Grows geometrically:
  /// reserve() alone allocates exactly what is asked, so reserving one more per retirement
  /// would copy the whole bag each time.
  NUMAMAP_ALWAYS_INLINE void reserve_more(std::size_t n) {
    if (items_.capacity() - items_.size() < n) grow(n);
  }
  void push_back(const retired& x) { items_.push_back(x); }
  const retired* begin() const noexcept { return items_.data() + head_; }
  const retired* end() const noexcept { return items_.data() + items_.size(); }
  /// The stamp of the i-th oldest object; i < size().
  std::uint64_t stamp(std::size_t i) const noexcept { return items_[head_ + i].epoch; }

  /// Frees the objects retired before epoch e - 1 (stamp + 2 <= e).
  /// Reentrant: a free_fn runs a user's destructor, which may call a map and so retire into
  /// this bag (a push_back that may move items_) and collect again. The nested call frees
  /// nothing (this one goes on, past what it appended: stamped at the current epoch, which
  /// is at least e, so not freeable by e); each object is copied out and counted freed
  /// before its free_fn runs, and the prefix is dropped once the loop is done.
  void free_before(std::uint64_t e) noexcept {
    if (freeing_) return;
    freeing_ = true;
    while (head_ < items_.size() && items_[head_].epoch + 2 <= e) {
      const retired x = items_[head_];
      ++head_;
      x.free_fn(x.ctx, x.p);
    }
    freeing_ = false;
    if (head_ == items_.size()) {
      items_.clear();
      head_ = 0;
    } else if (head_ >= 64 && head_ >= size()) {
      // Moves at most as many objects as were freed: amortised O(1) each. Allocates nothing.
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  /// Frees everything.
  void free_all() noexcept { free_before(~std::uint64_t{0}); }

 private:
  /// reserve_more()'s growth, out of line. May throw std::bad_alloc (the bag is unchanged).
  NUMAMAP_NOINLINE void grow(std::size_t n) {
    items_.reserve(std::max(items_.size() + n, 2 * items_.capacity()));
  }

  std::vector<retired> items_;
  std::size_t head_ = 0;  // items_[0, head_) are freed
  bool freeing_ = false;  // free_before is running (on this thread: the bag is owner-only)
};

/// One thread's announcement, alone on its cache lines, followed in the same allocation by
/// `counter_count` owner-written statistics counters (the map's per-shard load counts).
struct alignas(cacheline_size) thread_record {
  // (epoch << 1) | active. Written by the owner only; read by threads that advance.
  detail::atomic<std::uint64_t> word{0};
  // Claimed by a live thread. CAS false->true to claim (acquire), store false to release
  // (release): the handover orders the previous owner's writes to the fields below before
  // the next owner's.
  detail::atomic<bool> in_use{true};
  // The bag was not empty when the record was given back: a hint for collect's adoption
  // (adopt_leftovers), read and written relaxed. Written only by the record's owner (the
  // thread that holds in_use) before it gives the record back, so the release store of
  // in_use orders it for the next claimer; a stale value costs a skipped or a useless try.
  detail::atomic<bool> leftovers{false};
  // Next record in the domain's list; immutable once the record is published.
  thread_record* next = nullptr;
  // Owner-only fields.
  std::size_t since_collect = 0;
  retire_bag bag;
  std::size_t counter_count = 0;

  detail::atomic<std::uint64_t>* counters() noexcept {
    return reinterpret_cast<detail::atomic<std::uint64_t>*>(this + 1);
  }
  static std::size_t bytes_for(std::size_t counters) noexcept {
    return sizeof(thread_record) + counters * sizeof(detail::atomic<std::uint64_t>);
  }
};

/// Which domains are alive, so that a dying thread touches only live ones.
struct domain_registry {
  std::mutex mu;
  std::unordered_map<std::uint64_t, epoch_domain*> live;

  static domain_registry& get() {
    // Never destroyed: threads may exit after static destruction began.
    static auto* r = new domain_registry;
    return *r;
  }
};

/// Per thread: the records this thread holds, by domain id. The destructor (thread exit)
/// gives them back to the domains that are still alive.
struct thread_cache {
  struct slot {
    std::uint64_t id;
    thread_record* rec;
  };
  std::vector<slot> slots;
  thread_cache() = default;
  thread_cache(const thread_cache&) = delete;
  thread_cache& operator=(const thread_cache&) = delete;
  thread_cache(thread_cache&&) = delete;
  thread_cache& operator=(thread_cache&&) = delete;
  ~thread_cache();
};

/// The last domain this thread used: trivially destructible, so reading it needs no TLS guard,
/// and it stays readable after the thread's thread_cache is destroyed.
struct thread_fast_slot {
  std::uint64_t id = 0;
  thread_record* rec = nullptr;
  // The thread's thread_cache is being or has been destroyed (thread exit, or on the main
  // thread exit()): pins claim a record per outermost pin and give it back at its unpin.
  bool cache_gone = false;
};

inline thread_fast_slot& fast_slot() noexcept {
  static thread_local thread_fast_slot s;
  return s;
}

/// Once the thread's thread_cache is gone: the records this thread holds for the pins in
/// progress (one per map, claimed by the outermost pin and given back at its unpin), so that
/// a nested call reaching the same map again (retire, a nested pin) finds its record after
/// the fast slot moved to another map. Trivially destructible, as the fast slot.
struct thread_late_slots {
  static constexpr int capacity = 16;
  std::uint64_t id[capacity];
  thread_record* rec[capacity];
  int n;
};

inline thread_late_slots& late_slots() noexcept {
  static thread_local thread_late_slots s;  // zero-initialised (static storage duration)
  return s;
}

// ---------------------------------------------------------------------------------------

class epoch_domain {
 public:
  /// `counters` statistics counters are kept in every thread record (owner-written).
  explicit epoch_domain(std::size_t counters = 0)
      : membarrier_(membarrier_usable()), counters_(counters) {
    static std::atomic<std::uint64_t> next_id{1};
    // Relaxed: ids only need to be unique.
    id_ = next_id.fetch_add(1, std::memory_order_relaxed);
    auto& reg = domain_registry::get();
    std::lock_guard<std::mutex> lk(reg.mu);
    reg.live.emplace(id_, this);
  }

  epoch_domain(const epoch_domain&) = delete;
  epoch_domain& operator=(const epoch_domain&) = delete;
  epoch_domain(epoch_domain&&) = delete;
  epoch_domain& operator=(epoch_domain&&) = delete;

  /// Frees everything retired and every record. No thread may use the domain concurrently
  /// (a thread may exit concurrently: the registry lock orders that).
  ~epoch_domain() {
    drain();
    // (D11) acquire, as every walk of the list: each record was initialised before it was
    // pushed.
    thread_record* r = head_.load(std::memory_order_acquire);
    while (r != nullptr) {
      thread_record* next = r->next;
      destroy_record(r);
      r = next;
    }
  }

  /// Frees every retired object now. Only when no thread is pinned or can pin. First
  /// leaves the registry, so a thread that exits meanwhile no longer hands its record (and
  /// its bag) back here: the drain is alone with the records.
  void drain() noexcept {
    {
      auto& reg = domain_registry::get();
      std::lock_guard<std::mutex> lk(reg.mu);
      reg.live.erase(id_);
    }
    // A thread that found the domain live in the registry before the erase may still be
    // giving its record back (thread_cache's destructor, release_record): wait for it.
    // Acquire: pairs with its release decrement; what it freed and wrote is done.
    while (exiting_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    // (D11) acquire: as in the destructor.
    for (thread_record* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      r->bag.free_all();
      r->leftovers.store(false, std::memory_order_relaxed);
    }
  }

  /// Keeps the thread pinned while it lives. Only the outermost guard of a thread unpins;
  /// guards must die in the reverse order of their creation (scopes do that).
  class guard {
   public:
    /// give_back: r was claimed for this pin alone, after the thread's cache was gone, and
    /// goes back at the unpin (give_back_late).
    guard(epoch_domain* d, thread_record* r, std::uint64_t unpinned_word,
          bool give_back = false) noexcept
        : d_(d), r_(r), unpinned_(unpinned_word), give_back_(give_back) {}
    guard(guard&& o) noexcept
        : d_(o.d_),
          r_(o.r_),
          unpinned_(std::exchange(o.unpinned_, nested)),
          give_back_(std::exchange(o.give_back_, false)) {}
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    guard& operator=(guard&&) = delete;
    NUMAMAP_ALWAYS_INLINE ~guard() {
      if (unpinned_ != nested) {
        // The pin's retirements reached the pace: collect now, still pinned (collect's
        // back-pressure reads the pin) and holding no lock of the map, since every lock a
        // map takes is released before the outermost guard that covers it dies.
        if (r_->since_collect >= collect_every) d_->collect_due(r_);
        // (D4) release: every access this thread made while pinned happens before a
        //      thread that reads this value in a scan (D6) and then frees.
        r_->word.store(unpinned_, std::memory_order_release);
        if (give_back_) give_back_late(r_);
      }
    }
    thread_record* record() const noexcept { return r_; }
    static constexpr std::uint64_t nested_word() noexcept { return nested; }

   private:
    static constexpr std::uint64_t nested = ~std::uint64_t{0};
    epoch_domain* d_;
    thread_record* r_;
    std::uint64_t unpinned_;  // the word to store when unpinning; `nested`: nothing to do
    bool give_back_;
  };

  /// Pins the calling thread: objects it reaches stay allocated until the guard dies.
  /// Reentrant. Wait-free after the thread's first pin on this domain (which may allocate
  /// a record and throw std::bad_alloc).
  NUMAMAP_ALWAYS_INLINE guard pin() {
    thread_record* r = local_record();
    // Relaxed: only this thread writes its own word.
    if ((r->word.load(std::memory_order_relaxed) & 1U) != 0) {
      return {this, r, guard::nested_word()};  // already pinned: nested, no cost
    }
    const std::uint64_t unpinned = announce(r);
    // Once the thread's cache is gone, r was claimed for this pin (local_record_slow): the
    // guard gives it back when it unpins.
    return {this, r, unpinned, fast_slot().cache_gone};
  }

  /// Unpins the thread at its destruction, unconditionally: the guard of try_pin_outer().
  /// It stores 0, an inactive word, whatever epoch the pin announced: no one reads the
  /// epoch of an inactive record (a scan (D6) skips it; collect() reads its own word while
  /// pinned), and a constant keeps the read path from holding the word in a register or on
  /// the stack across its probe.
  class outer_guard {
   public:
    explicit outer_guard(thread_record* r) noexcept : r_(r) {}
    outer_guard(const outer_guard&) = delete;
    outer_guard& operator=(const outer_guard&) = delete;
    outer_guard(outer_guard&&) = delete;
    outer_guard& operator=(outer_guard&&) = delete;
    NUMAMAP_ALWAYS_INLINE ~outer_guard() {
      r_->word.store(0, std::memory_order_release);  // (D4), as guard's
    }

   private:
    thread_record* r_;
  };

  /// The read path's pin: pin() for a thread that is not pinned yet and whose record for
  /// this domain is the one its fast slot caches, without a call and without the nesting
  /// word in the guard. Returns true with the record in `rec`, for an outer_guard to
  /// unpin; or false, pinning nothing, when this thread has no
  /// cached record for this domain (its first pin here, or it used another map last) or is
  /// already pinned (a call from inside range's or visit's callback): then the caller
  /// takes pin(). Pins taken while this one holds are nested ones, as under pin().
  NUMAMAP_ALWAYS_INLINE bool try_pin_outer(thread_record*& rec) noexcept {
    const thread_fast_slot& fs = fast_slot();
    if (fs.id != id_) return false;
    rec = fs.rec;
    // Relaxed: only this thread writes its own word.
    if ((rec->word.load(std::memory_order_relaxed) & 1U) != 0) return false;
    (void)announce(rec);
    return true;
  }

  /// retire()'s weight for an object of `bytes`: one per KiB, so that 64 KiB retired start
  /// a collection as 64 small objects do.
  static constexpr std::size_t weight_of(std::size_t bytes) noexcept { return 1 + bytes / 1024; }

  /// Hands p to the reclaimer. p must be unreachable for threads that pin from now on.
  /// The caller must be pinned (by a guard of pin(): its end collects). May throw
  /// std::bad_alloc (the bag grows); then p is not retired and the caller still owns it.
  /// `weight` counts p against collect_every: 1 for a small object, weight_of(bytes) for a
  /// big one (a retired table), so that a thread that retires big objects collects soon and
  /// their memory comes back while it is still warm, instead of after 64 of them.
  /// Frees nothing itself: the caller may hold a shard's mutex (a rebuild retires the old
  /// table under it), and a free runs a user's destructor, which may call the map and take
  /// that mutex. The collect comes at the end of the caller's outermost pin (guard), where
  /// the thread holds no lock of the map (decisions.md D44).
  void retire(void* p, void (*free_fn)(void*, void*), void* ctx, std::size_t weight = 1) {
    thread_record* r = local_record();
    // (D8) seq_cst fence: orders the caller's unlinking store before the load of E below,
    //      so the stamp is at least the epoch in force when p was unlinked.
    fence_seq_cst();
    const std::uint64_t e = global_->load(std::memory_order_relaxed);
    r->bag.push_back(retired{p, free_fn, ctx, e});
    r->since_collect += weight;
  }

  /// Makes room for n more retire() calls by the record's owner, so that they cannot fail.
  /// May throw std::bad_alloc.
  static void reserve_retire(thread_record* r, std::size_t n) { r->bag.reserve_more(n); }

  /// Tries to advance the epoch and frees what it can (the caller's bag and the leftovers of
  /// records given back).
  void flush() {
    guard g = pin();
    collect(g.record());
  }

  /// For a thread that is not pinned (the end of an operation that retired much at once,
  /// such as clear): advances the epoch twice, as far as other threads' pins allow, and
  /// frees what that allows from its bag and from leftovers. Without it what the thread
  /// just retired would wait for its next retirement, or its exit: an idle thread's bag is
  /// freed by no one else. Does nothing when the thread is pinned (a call from a range
  /// callback: its own pin would hold the epoch) or its cache is gone (a record claimed
  /// here would not be given back).
  void collect_unpinned() {
    if (fast_slot().cache_gone) return;
    thread_record* r = local_record();
    // Relaxed: only this thread writes its own word.
    if ((r->word.load(std::memory_order_relaxed) & 1U) != 0) return;
    collect_not_pinned(r);
  }

  /// Objects retired and not yet freed (all threads). Exact when no thread runs.
  std::size_t pending() const {
    std::size_t n = 0;
    // (D11) acquire: a record reached is initialised.
    for (thread_record* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      n += r->bag.size();
    }
    return n;
  }

  /// Records of this domain, and how many of them a thread holds (tests; exact when no
  /// thread runs).
  std::pair<std::size_t, std::size_t> record_counts() const noexcept {
    std::size_t all = 0;
    std::size_t held = 0;
    // (D11) acquire: a record reached is initialised.
    for (thread_record* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      ++all;
      held += r->in_use.load(std::memory_order_relaxed) ? 1 : 0;  // relaxed: a count
    }
    return {all, held};
  }

  /// Sums counter i over every record (statistics; relaxed reads, approximate while running).
  std::uint64_t sum_counter(std::size_t i) const noexcept {
    std::uint64_t s = 0;
    // (D11) acquire: a record reached is initialised.
    for (thread_record* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      // Relaxed: a statistic; no other memory is read through it.
      s += r->counters()[i].load(std::memory_order_relaxed);
    }
    return s;
  }

  /// The calling thread's record (created if needed), [begin, end) of its bytes.
  std::pair<const void*, const void*> own_slot() {
    thread_record* r = local_record();
    const char* b = reinterpret_cast<const char*>(r);
    return {b, b + thread_record::bytes_for(counters_)};
  }

  /// The calling thread's record. The fast path is one thread-local load and a compare.
  NUMAMAP_ALWAYS_INLINE thread_record* local_record() {
    thread_fast_slot& fs = fast_slot();
    if (fs.id == id_) return fs.rec;
    return local_record_slow();
  }

  /// Gives a dying thread's record back (thread_cache's destructor, which counted this
  /// thread in exiting_ under the registry lock and holds no lock now: the frees below run
  /// the users' destructors, which may destroy other maps or use this one). The thread is
  /// not pinned: advance twice if nobody else holds the epoch back, and free what that
  /// allows, from this bag and from records given back with leftovers. Without this, what
  /// an exiting thread retired (a filling thread's last replaced tables, say) would wait
  /// for the next writer's collect. What is left stays in the record (leftovers).
  void release_record(thread_record* r) noexcept {
    collect_not_pinned(r);
    give_back(r);
  }

  /// The end of a pin that claimed its record after the thread's cache was gone (pin): the
  /// record is given back, with what the pin retired as leftovers (still pinned-fresh: no
  /// epoch allows freeing it yet), and forgotten by this thread.
  static void give_back_late(thread_record* r) noexcept {
    thread_late_slots& ls = late_slots();
    for (int i = 0; i < ls.n; ++i) {
      if (ls.rec[i] == r) {
        ls.id[i] = ls.id[ls.n - 1];
        ls.rec[i] = ls.rec[ls.n - 1];
        --ls.n;
        break;
      }
    }
    thread_fast_slot& fs = fast_slot();
    if (fs.rec == r) {
      fs.id = 0;
      fs.rec = nullptr;
    }
    give_back(r);
  }

 private:
  static constexpr std::size_t collect_every = 64;
  static constexpr std::size_t high_water = 1024;

  NUMAMAP_NOINLINE thread_record* local_record_slow() {
    if (fast_slot().cache_gone) return late_record();
    static thread_local thread_cache cache;
    for (const thread_cache::slot& s : cache.slots) {
      if (s.id == id_) {
        fast_slot() = {id_, s.rec};
        return s.rec;
      }
    }
    prune(cache);
    cache.slots.reserve(cache.slots.size() + 1);  // may throw before anything is claimed
    thread_record* r = claim_record();
    cache.slots.push_back({id_, r});
    fast_slot() = {id_, r};
    return r;
  }

  /// local_record after the thread's cache is gone (thread exit; exit() on the main thread):
  /// the record of a pin of this domain in progress on this thread, or one claimed now for
  /// the next pin, which gives it back (pin, give_back_late). Throws std::bad_alloc where
  /// claim_record does. Past thread_late_slots::capacity maps pinned at once, the record is
  /// not remembered: the outermost pin still gives it back, but a nested call that reaches
  /// the map again after another map's pin claims one more, which then stays claimed, its
  /// bag freed when the map is destroyed.
  thread_record* late_record() {
    thread_late_slots& ls = late_slots();
    for (int i = 0; i < ls.n; ++i) {
      if (ls.id[i] == id_) {
        fast_slot().id = id_;
        fast_slot().rec = ls.rec[i];
        return ls.rec[i];
      }
    }
    thread_record* r = claim_record();
    if (ls.n < thread_late_slots::capacity) {
      ls.id[ls.n] = id_;
      ls.rec[ls.n] = r;
      ++ls.n;
    }
    fast_slot().id = id_;
    fast_slot().rec = r;
    return r;
  }

  /// collect() for r's owner when it is not pinned: no pin of its own holds the epoch, so two
  /// advances may free everything it retired, unless other threads' pins hold them back.
  void collect_not_pinned(thread_record* r) noexcept {
    (void)try_advance();
    const std::uint64_t e = try_advance();
    r->bag.free_before(e);
    adopt_leftovers(r, e);
  }

  /// Gives r back, its owner not pinned: the next claimer, or a collect (adopt_leftovers),
  /// frees what its bag still holds.
  static void give_back(thread_record* r) noexcept {
    // Relaxed: ordered for the next claimer by the release store below.
    r->leftovers.store(!r->bag.empty(), std::memory_order_relaxed);
    // (D9) release: pairs with (D10), the acquire CAS of the next owner, and with (D13).
    r->in_use.store(false, std::memory_order_release);
  }

  /// Frees, from the bags of records given back (not in use), what epoch e allows: each
  /// record is claimed for the time of its frees, so no other thread touches its bag. e is
  /// an epoch this thread read with acquire (try_advance, (D12)), as for its own bag.
  void adopt_leftovers(const thread_record* self, std::uint64_t e) noexcept {
    // (D11) acquire: a record reached is initialised.
    for (thread_record* q = head_.load(std::memory_order_acquire); q != nullptr; q = q->next) {
      // Relaxed: hints; the CAS decides.
      if (q == self || !q->leftovers.load(std::memory_order_relaxed) ||
          q->in_use.load(std::memory_order_relaxed)) {
        continue;
      }
      bool expected = false;
      // (D13) acquire: pairs with (D9); the bag as its last owner left it is visible.
      if (!q->in_use.compare_exchange_strong(expected, true, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
        continue;
      }
      q->bag.free_before(e);
      give_back(q);
    }
  }

  /// Drops slots of dead domains so a long-lived thread does not collect them.
  static void prune(thread_cache& cache) {
    if (cache.slots.size() < 8) return;
    auto& reg = domain_registry::get();
    std::lock_guard<std::mutex> lk(reg.mu);
    cache.slots.erase(std::remove_if(cache.slots.begin(), cache.slots.end(),
                                     [&](const thread_cache::slot& s) {
                                       return reg.live.find(s.id) == reg.live.end();
                                     }),
                      cache.slots.end());
  }

  thread_record* claim_record() {
    // (D11) acquire: a record reached is initialised.
    for (thread_record* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      bool expected = false;
      // (D10) acquire: pairs with (D9); the previous owner's bag and counters are visible.
      // The relaxed load first is a hint that skips records in use; the CAS decides.
      if (!r->in_use.load(std::memory_order_relaxed) &&
          r->in_use.compare_exchange_strong(expected, true, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
        return r;
      }
    }
    void* mem = ::operator new(thread_record::bytes_for(counters_),
                               std::align_val_t(alignof(thread_record)));
    auto* r = new (mem) thread_record;
    r->counter_count = counters_;
    for (std::size_t i = 0; i < counters_; ++i) {
      new (&r->counters()[i]) detail::atomic<std::uint64_t>(0);
    }
    // Relaxed: the CAS below checks it; a push's release CAS continues the release
    // sequence of the pushes before it, so readers that see this record see theirs too.
    thread_record* h = head_.load(std::memory_order_relaxed);
    do {
      r->next = h;
      // (D11) release: a thread that reaches r through head_ (acquire) sees it initialised.
    } while (
        !head_.compare_exchange_weak(h, r, std::memory_order_release, std::memory_order_relaxed));
    return r;
  }

  static void destroy_record(thread_record* r) noexcept {
    r->~thread_record();
    ::operator delete(r, std::align_val_t(alignof(thread_record)));
  }

  /// Advances E if every active record announces it. Returns the epoch now in force.
  std::uint64_t try_advance() noexcept {
    // (D12) acquire: pairs with (D7). The caller frees by the epoch returned, often one that
    //       another thread advanced to; that thread's scan read the unpins (D6) that allowed
    //       it, and this acquire carries them over, so every access of those pins happens
    //       before the frees. (Relaxed here and in the CAS's failure order left the frees
    //       unordered after the readers' accesses in the C++ model, if not on x86-64:
    //       ThreadSanitizer found it.)
    std::uint64_t e = global_->load(std::memory_order_acquire);
    heavy_fence(membarrier_);  // (D5) pairs with every reader's (D3)
    // (D11) acquire: a record reached is initialised.
    for (thread_record* r = head_.load(std::memory_order_acquire); r != nullptr; r = r->next) {
      // (D6) acquire: pairs with (D4); a record seen inactive or at e has finished every
      //      access made under an older announcement.
      const std::uint64_t w = r->word.load(std::memory_order_acquire);
      if ((w & 1U) != 0 && (w >> 1) != e) return e;
    }
    // (D7) acq_rel: pairs with (D1) and (D12). A failed CAS means another thread advanced:
    //      fine; its failure load is acquire, as (D12), since e is then that thread's epoch.
    if (global_->compare_exchange_strong(e, e + 1, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
      return e + 1;
    }
    return e;
  }

  /// The end of an outermost pin whose retirements reached collect_every (guard).
  NUMAMAP_NOINLINE void collect_due(thread_record* r) noexcept {
    r->since_collect = 0;
    collect(r);
  }

  /// Frees what the epoch allows from r's bag and from the bags of records given back with
  /// leftovers (adopt_leftovers). r's owner is pinned.
  void collect(thread_record* r) noexcept {
    std::uint64_t e = try_advance();
    r->bag.free_before(e);
    // Back-pressure. While r's owner stays pinned at p, E <= p + 1. If E is still p after
    // the try, another thread pinned at p - 1 blocks the advance: most often one preempted
    // in the middle of an operation when threads outnumber cores. When the bag is this
    // full, yield to let the blocker run to its unpin, until the epoch moves. (Once E is
    // p + 1 only this thread's own pin holds the rest back, and yielding cannot help: a
    // rebuild that retires much in one operation does not wait here.) A few tries only:
    // the blocker may be long-pinned (a slow range callback), and then memory waits, as
    // with any epoch scheme.
    const std::uint64_t p = r->word.load(std::memory_order_relaxed) >> 1;  // own word
    for (int tries = 0; tries < 16 && e == p && r->bag.size() >= high_water; ++tries) {
      std::this_thread::yield();
      e = try_advance();
      r->bag.free_before(e);
    }
    adopt_leftovers(r, e);
  }

  /// Announces the thread, not pinned until now, active at the current epoch (pin()'s
  /// second half); returns the word that unpins it.
  NUMAMAP_ALWAYS_INLINE std::uint64_t announce(thread_record* r) noexcept {
    // (D1) acquire: the loads that follow the pin stay after this load, so the epoch
    //      announced is never older than what the reader then reads. Pairs with (D7).
    const std::uint64_t e = global_->load(std::memory_order_acquire);
    // (D2) store + (D3) fence: the announcement is ordered before every later load of a
    //      shared pointer by light_fence here and heavy_fence in try_advance (D5): either
    //      the advancing thread sees this announcement, or this thread's later loads see
    //      everything unlinked before that heavy fence.
    //      release: a scan (D6) that reads this announcement must also see every access of
    //      this thread's earlier pins, as one that reads the unpin (D4) does. A scan that
    //      reads it lets the epoch advance past objects this thread reached in its previous
    //      pin, and the unpin's release does not carry over to a later relaxed store (C++20
    //      dropped same-thread stores from release sequences; ThreadSanitizer found it).
    //      On x86-64 a plain store, as relaxed.
    r->word.store((e << 1) | 1U, std::memory_order_release);
    light_fence(membarrier_);  // (D3)
    return e << 1;
  }

  // The global epoch, alone on its line: every pin reads it, advances write it.
  cache_padded<detail::atomic<std::uint64_t>> global_{std::uint64_t{1}};
  // Records, newest first; push-only until the domain dies.
  detail::atomic<thread_record*> head_{nullptr};
  const bool membarrier_;
  const std::size_t counters_;
  std::uint64_t id_ = 0;
  // Threads giving their record back at exit (thread_cache's destructor) right now: counted
  // under the registry lock while the domain is live there, so drain, which leaves the
  // registry first, waits for them before it frees.
  std::atomic<int> exiting_{0};

  friend struct thread_cache;
};

inline thread_cache::~thread_cache() {
  // From here this thread's pins claim a record each and give it back (pin): the users'
  // destructors that the frees below run, and thread_locals destroyed after this one (or,
  // on the main thread, static objects), may use a map, and must not touch `slots`.
  thread_fast_slot& fs = fast_slot();
  fs = thread_fast_slot{};
  fs.cache_gone = true;
  auto& reg = domain_registry::get();
  for (const slot& s : slots) {
    epoch_domain* d = nullptr;
    {
      std::lock_guard<std::mutex> lk(reg.mu);
      auto it = reg.live.find(s.id);
      if (it == reg.live.end()) continue;  // destroyed: its records and bags went with it
      d = it->second;
      // Relaxed: the registry lock orders it before drain's load (drain erases the domain
      // under the same lock, after this).
      d->exiting_.fetch_add(1, std::memory_order_relaxed);
    }
    // No lock held: release_record runs the users' destructors (decisions.md D43).
    d->release_record(s.rec);
    // Release: pairs with drain's acquire load; the frees above are done before it frees.
    d->exiting_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
