// numamap/memory.hpp — node memory resources: where the map's memory comes from.
//
// The NodeMemory requirement (SPEC "Memory placement"), for a type M and m of type M&:
//   void* m.allocate(std::size_t bytes, std::size_t align, node_id node);   // throws
//   std::bad_alloc void  m.deallocate(void* p, std::size_t bytes, std::size_t align, node_id node)
//   noexcept; M is copy-constructible, and copies share state (the map holds its own copy and frees
//   everything it allocated before that copy is destroyed).
// Optional members the map's stats() uses when present:
//   std::string name() const;                         e.g. "numa_memory(preferred)"
//   std::string note() const;                         why a fallback was taken, "" if none
//   page_placement verify_placement(node_id) const;   move_pages over the node's memory
// numamap::is_node_memory_v<M> tells whether M qualifies; detail::check_node_memory<M> fails
// to compile with a message naming what is missing.
//
// Provided:
//   heap_memory          operator new; the node is ignored (placement is first touch).
//   numa_memory          per-node arenas on mbind'ed chunks; policies preferred (default),
//                        bind, interleave; falls back to heap memory, with the reason in
//                        note(), where NUMA policies cannot be used.
//   default_memory       numa_memory when built with libnuma, else heap_memory.
//   counting_memory<M>   counts live bytes and allocations per node around another resource.
// See docs/memory.md and docs/numa.md.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/libnuma.hpp"
#include "detail/numa_arena.hpp"
#include "detail/numa_syscalls.hpp"
#include "fwd.hpp"
#include "stats.hpp"
#include "topology.hpp"

NUMAMAP_BEGIN_NAMESPACE

namespace detail {
/// operator new for a node memory resource: a request or an alignment above 2^62 bytes
/// throws std::bad_alloc before it is passed on. libstdc++'s aligned operator new rounds the
/// size up to the alignment, which wraps for sizes near SIZE_MAX and returned a pointer to a
/// block of 0 bytes (aligned_alloc(8, 0)); the sanitizers' allocators abort on such sizes.
inline void* heap_allocate(std::size_t bytes, std::size_t align) {
  if (bytes > arena_large_max || align > arena_large_max) throw std::bad_alloc();
  return ::operator new(bytes, std::align_val_t(align));
}
}  // namespace detail

/// Node memory from operator new: no binding, the node argument is ignored.
class heap_memory {
 public:
  /// Throws std::bad_alloc. Thread-safe; may block in the global allocator.
  // NOLINTNEXTLINE(readability-convert-member-functions-to-static): the NodeMemory interface
  void* allocate(std::size_t bytes, std::size_t align, node_id /*node*/) {
    return detail::heap_allocate(bytes, align);
  }
  // NOLINTNEXTLINE(readability-convert-member-functions-to-static): the NodeMemory interface
  void deallocate(void* p, std::size_t /*bytes*/, std::size_t align, node_id /*node*/) noexcept {
    ::operator delete(p, std::align_val_t(align));  // unsized: clang has no sized delete by default
  }
  static constexpr const char* name() noexcept { return "heap_memory"; }
};

/// How numa_memory places a node's memory.
enum class numa_policy {
  /// MPOL_PREFERRED | MPOL_F_STATIC_NODES: the node first; when it is full the kernel takes
  /// the nearest node with room. Never fails for lack of memory on the node. The default.
  preferred,
  /// MPOL_BIND | MPOL_F_STATIC_NODES: the node only. A chunk is taken only when the node's free
  /// memory exceeds it plus a headroom (else std::bad_alloc), and is populated at once. A
  /// residual risk remains: if the node fills up anyway, the kernel OOM-kills (docs/numa.md).
  bind,
  /// MPOL_INTERLEAVE over every node of the topology that accepted the probe: pages spread
  /// round-robin (2 MiB units under transparent huge pages). The node argument only picks the
  /// arena.
  interleave,
};

inline const char* to_string(numa_policy p) noexcept {
  switch (p) {
    case numa_policy::preferred:
      return "preferred";
    case numa_policy::bind:
      return "bind";
    case numa_policy::interleave:
      return "interleave";
  }
  return "?";
}

namespace detail {

// env_flag: topology.hpp.
inline bool env_disables_numa() noexcept { return env_flag("NUMAMAP_DISABLE_NUMA"); }
/// NUMAMAP_NO_HUGE_PAGES=1: no MADV_HUGEPAGE on large mappings (see numa_arena.hpp).
inline bool env_disables_huge_pages() noexcept { return env_flag("NUMAMAP_NO_HUGE_PAGES"); }

// The shared state of numa_memory handles: one arena per node, created at construction for the
// topology's nodes (after an mbind probe) and on first use for any other node id.
class numa_state {
 public:
  numa_state(numa_policy policy, const topology& topo) : policy_(policy) {
    std::string why;
    if (env_disables_numa()) {
      set_fallback("disabled by NUMAMAP_DISABLE_NUMA=1");
      return;
    }
    if (!numa_usable(why)) {
      set_fallback(why);
      return;
    }
    std::vector<node_id> good;
    std::string failures;
    for (const node_info& n : topo.nodes()) {
      const int e = probe(n.id);
      if (e == 0) {
        good.push_back(n.id);
      } else {
        failures += (failures.empty() ? "" : "; ") + probe_failure(n.id, e);
        if (n.id < max_numa_nodes) {
          // relaxed: the constructor runs before any handle is shared; publishing the
          // shared_ptr to other threads orders this store.
          slots_[n.id].store(heap_slot, std::memory_order_relaxed);
        }
      }
    }
    if (good.empty()) {
      set_fallback("mbind refused on every node of the " + std::string(topo.source()) +
                   " topology: " + failures);
      return;
    }
    for (node_id n : good) interleave_set_.set(n);
    for (node_id n : good) create_arena(n);
    note_ = failures;
  }

  numa_state(const numa_state&) = delete;
  numa_state& operator=(const numa_state&) = delete;
  numa_state(numa_state&&) = delete;
  numa_state& operator=(numa_state&&) = delete;

  ~numa_state() {
    for (auto& s : slots_) {
      // relaxed: the last handle is being destroyed; no other thread uses the state.
      const std::uintptr_t v = s.load(std::memory_order_relaxed);
      if (v > heap_slot) delete reinterpret_cast<node_arena*>(v);
    }
  }

  void* allocate(std::size_t bytes, std::size_t align, node_id node) {
    if (fallback_) return detail::heap_allocate(bytes, align);
    node_arena* a = arena(node);
    if (a == nullptr) return detail::heap_allocate(bytes, align);
    return a->allocate(bytes, align);
  }

  void deallocate(void* p, std::size_t bytes, std::size_t align, node_id node) noexcept {
    if (p == nullptr) return;
    node_arena* a = fallback_ ? nullptr : existing_arena(node);
    if (a == nullptr) {
      ::operator delete(p,
                        std::align_val_t(align));  // unsized: clang has no sized delete by default
    } else {
      a->deallocate(p, bytes, align);
    }
  }

  bool fallback() const noexcept { return fallback_; }
  numa_policy policy() const noexcept { return policy_; }

  std::string note() const {
    std::lock_guard<std::mutex> lock(note_mu_);
    std::string s = note_;
    if (!fallback_) {
      for (const auto& slot : slots_) {
        // acquire: pairs with the release that published the arena.
        const std::uintptr_t v = slot.load(std::memory_order_acquire);
        if (v <= heap_slot) continue;
        const auto* a = reinterpret_cast<const node_arena*>(v);
        if (a->mbind_failures() != 0) {
          s += (s.empty() ? "" : "; ") + std::string("node ") + std::to_string(a->node()) +
               ": mbind failed for " + std::to_string(a->mbind_failures()) + " mapping(s) (" +
               errno_name(a->last_mbind_errno()) + "); their pages are placed by first touch";
        }
      }
    }
    return s;
  }

  page_placement verify(node_id node) const {
    if (fallback_) return page_placement{};
    const node_arena* a = existing_arena(node);
    return a == nullptr ? page_placement{} : a->verify();
  }

  std::size_t mapped_bytes(node_id node) const noexcept {
    const node_arena* a = fallback_ ? nullptr : existing_arena(node);
    return a == nullptr ? 0 : a->mapped_bytes();
  }

 private:
  static constexpr std::uintptr_t heap_slot = 1;  // slot value: this node gets heap memory

  int mode_bits() const noexcept {
    switch (policy_) {
      case numa_policy::bind:
        return mpol_bind | mpol_f_static_nodes;
      case numa_policy::interleave:
        return mpol_interleave | mpol_f_static_nodes;
      case numa_policy::preferred:
        break;
    }
    return mpol_preferred | mpol_f_static_nodes;
  }

  int probe(node_id node) const noexcept { return probe_mbind(mode_bits(), node); }

  std::string probe_failure(node_id node, int e) const {
    std::string s = "node " + std::to_string(node) + ": mbind(" + to_string(policy_) +
                    ") failed with " + errno_name(e);
    if (e == EPERM) s += " (refused, e.g. by a container's seccomp profile without CAP_SYS_NICE)";
    if (e == ENOSYS) s += " (kernel without NUMA support)";
    if (e == EINVAL) s += " (no such node here, no memory on it, or not allowed)";
    return s + "; heap memory is used for it";
  }

  void set_fallback(const std::string& why) {
    fallback_ = true;
    note_ = why;
  }

  void create_arena(node_id node) {
    placement_policy p;
    p.mode = mode_bits();
    p.strict = policy_ == numa_policy::bind;
    p.huge_pages = !env_disables_huge_pages();
    if (policy_ == numa_policy::interleave) {
      p.mask = interleave_set_;
    } else {
      p.mask.set(node);
    }
    auto* a = new node_arena(node, p);
    // release: publishes the constructed arena to threads that load the slot with acquire.
    slots_[node].store(reinterpret_cast<std::uintptr_t>(a), std::memory_order_release);
  }

  // The arena of `node`, creating it on first use for a node the topology did not list;
  // nullptr when the node gets heap memory.
  node_arena* arena(node_id node) {
    if (node >= max_numa_nodes) {
      std::lock_guard<std::mutex> lock(note_mu_);
      if (!beyond_noted_) {
        note_ += (note_.empty() ? "" : "; ") + std::string("node ") + std::to_string(node) +
                 " is beyond the " + std::to_string(max_numa_nodes) +
                 " nodes numamap can bind; heap memory is used for it";
        beyond_noted_ = true;
      }
      return nullptr;
    }
    // acquire: pairs with the release in create_arena (the arena is fully constructed).
    std::uintptr_t v = slots_[node].load(std::memory_order_acquire);
    if (v == 0) {
      std::lock_guard<std::mutex> lock(note_mu_);
      // relaxed: note_mu_ orders this against the creator, which stores under the same lock.
      v = slots_[node].load(std::memory_order_relaxed);
      if (v == 0) {
        const int e = probe(node);
        if (e == 0 && (policy_ != numa_policy::interleave || !interleave_set_.empty())) {
          create_arena(node);
        } else {
          note_ +=
              (note_.empty() ? "" : "; ") + probe_failure(node, e) + " (node not in the topology)";
          // Relaxed: a heap slot publishes nothing (no arena); a thread that sees it uses
          // the heap, and reads note_ only under note_mu_.
          slots_[node].store(heap_slot, std::memory_order_relaxed);
        }
        // relaxed: we just stored it under the lock.
        v = slots_[node].load(std::memory_order_relaxed);
      }
    }
    return v > heap_slot ? reinterpret_cast<node_arena*>(v) : nullptr;
  }

  node_arena* existing_arena(node_id node) const noexcept {
    if (node >= max_numa_nodes) return nullptr;
    // acquire: pairs with the release in create_arena.
    const std::uintptr_t v = slots_[node].load(std::memory_order_acquire);
    return v > heap_slot ? reinterpret_cast<node_arena*>(v) : nullptr;
  }

  const numa_policy policy_;
  bool fallback_ = false;  // set in the constructor only
  node_mask interleave_set_;
  mutable std::mutex note_mu_;  // guards note_, beyond_noted_ and arena creation
  std::string note_;
  bool beyond_noted_ = false;
  // Per node id: 0 not probed yet, heap_slot, or a node_arena*. Written once (0 -> value).
  std::array<std::atomic<std::uintptr_t>, max_numa_nodes> slots_{};
};

}  // namespace detail

/// Node memory from per-node arenas of mbind'ed chunks (see detail/numa_arena.hpp and
/// docs/memory.md). A handle: copies share the arenas, which are unmapped when the last
/// handle is destroyed. Every member is thread-safe. allocate/deallocate take a mutex of the
/// node's size class (or of its chunk list when a new chunk or a large mapping is needed).
// NOLINTNEXTLINE(cppcoreguidelines-special-member-functions): no move, by design (see below)
class numa_memory {
 public:
  /// preferred, on topology::system().
  numa_memory() : numa_memory(numa_policy::preferred) {}
  /// Probes mbind once per node of `topo`. Never throws for NUMA problems: it falls back to
  /// heap memory (for a node, or for everything) and says why in note(). Throws std::bad_alloc.
  explicit numa_memory(numa_policy policy, const topology& topo = topology::system())
      : state_(std::make_shared<detail::numa_state>(policy, topo)) {}
  numa_memory(const numa_memory&) = default;  // no move: a moved-from handle stays usable
  numa_memory& operator=(const numa_memory&) = default;
  ~numa_memory() = default;

  /// A block on `node` (per the policy). Throws std::bad_alloc (bind: also when the node lacks
  /// free memory for a new chunk).
  void* allocate(std::size_t bytes, std::size_t align, node_id node) {
    return state_->allocate(bytes, align, node);
  }
  /// Returns a block to its node's arena; `bytes`, `align` and `node` as given to allocate.
  void deallocate(void* p, std::size_t bytes, std::size_t align, node_id node) noexcept {
    state_->deallocate(p, bytes, align, node);
  }

  /// "numa_memory(preferred)", "numa_memory(bind)", "numa_memory(interleave)" or
  /// "numa_memory(fallback: heap)".
  std::string name() const {
    return state_->fallback() ? std::string("numa_memory(fallback: heap)")
                              : "numa_memory(" + std::string(to_string(state_->policy())) + ")";
  }
  /// Why heap memory is used for everything or for some nodes; "" when placement works.
  std::string note() const { return state_->note(); }
  /// Where this resource's pages for `node` lie, by move_pages(2) (sampled beyond
  /// detail::page_sample_cap pages). verified is false for heap memory or when move_pages is
  /// refused. Under interleave, on_node counts pages on any node of the interleave set.
  page_placement verify_placement(node_id node) const { return state_->verify(node); }

  numa_policy policy() const noexcept { return state_->policy(); }
  /// True when everything comes from the heap (see note()).
  bool is_fallback() const noexcept { return state_->fallback(); }
  /// Bytes mapped from the OS for `node` (chunks and large mappings).
  std::size_t mapped_bytes(node_id node) const noexcept { return state_->mapped_bytes(node); }

  /// Whether two handles share their arenas.
  friend bool operator==(const numa_memory& a, const numa_memory& b) noexcept {
    return a.state_ == b.state_;
  }
  friend bool operator!=(const numa_memory& a, const numa_memory& b) noexcept { return !(a == b); }

 private:
  std::shared_ptr<detail::numa_state> state_;
};

#if NUMAMAP_HAVE_LIBNUMA
using default_memory = numa_memory;
#else
using default_memory = heap_memory;
#endif

// ---- the NodeMemory requirement -------------------------------------------------------------

namespace detail {

template <class M, class = void>
struct memory_has_allocate : std::false_type {};
template <class M>
struct memory_has_allocate<
    M, std::void_t<decltype(std::declval<M&>().allocate(std::size_t{}, std::size_t{}, node_id{}))>>
    : std::is_same<decltype(std::declval<M&>().allocate(std::size_t{}, std::size_t{}, node_id{})),
                   void*> {};

template <class M, class = void>
struct memory_has_deallocate : std::false_type {};
template <class M>
struct memory_has_deallocate<
    M, std::void_t<decltype(std::declval<M&>().deallocate(
           static_cast<void*>(nullptr), std::size_t{}, std::size_t{}, node_id{}))>>
    : std::true_type {};

template <class M, bool = memory_has_deallocate<M>::value>
struct memory_deallocate_noexcept : std::false_type {};
template <class M>
struct memory_deallocate_noexcept<M, true>
    : std::bool_constant<noexcept(std::declval<M&>().deallocate(
          static_cast<void*>(nullptr), std::size_t{}, std::size_t{}, node_id{}))> {};

template <class M, class = void>
struct memory_has_name : std::false_type {};
template <class M>
struct memory_has_name<M, std::void_t<decltype(std::string(std::declval<const M&>().name()))>>
    : std::true_type {};

template <class M, class = void>
struct memory_has_note : std::false_type {};
template <class M>
struct memory_has_note<M, std::void_t<decltype(std::string(std::declval<const M&>().note()))>>
    : std::true_type {};

template <class M, class = void>
struct memory_has_verify : std::false_type {};
template <class M>
struct memory_has_verify<
    M, std::void_t<decltype(page_placement(std::declval<const M&>().verify_placement(node_id{})))>>
    : std::true_type {};

/// name() of a resource, or `fallback` when it has none.
template <class M>
std::string memory_name(const M& m, const char* fallback = "user memory resource") {
  if constexpr (memory_has_name<M>::value) {
    return std::string(m.name());
  } else {
    (void)m;
    return fallback;
  }
}
/// note() of a resource, or "" when it has none.
template <class M>
std::string memory_note(const M& m) {
  if constexpr (memory_has_note<M>::value) {
    return std::string(m.note());
  } else {
    (void)m;
    return {};
  }
}
/// verify_placement(node) of a resource, or an unverified page_placement when it has none.
template <class M>
page_placement memory_verify(const M& m, node_id node) {
  if constexpr (memory_has_verify<M>::value) {
    return m.verify_placement(node);
  } else {
    (void)m;
    (void)node;
    return page_placement{};
  }
}

/// Instantiate (e.g. `static_assert(detail::check_node_memory<M>::value)`) to get a message
/// naming what M lacks.
template <class M>
struct check_node_memory {
  static_assert(memory_has_allocate<M>::value,
                "numamap: the Memory type needs `void* allocate(std::size_t bytes, std::size_t "
                "align, numamap::node_id node)` (NodeMemory requirement, docs/memory.md)");
  static_assert(memory_has_deallocate<M>::value,
                "numamap: the Memory type needs `void deallocate(void* p, std::size_t bytes, "
                "std::size_t align, numamap::node_id node) noexcept` (NodeMemory requirement)");
  static_assert(!memory_has_deallocate<M>::value || memory_deallocate_noexcept<M>::value,
                "numamap: the Memory type's deallocate(void*, std::size_t, std::size_t, node_id) "
                "must be noexcept (NodeMemory requirement)");
  static_assert(std::is_copy_constructible<M>::value,
                "numamap: the Memory type must be copy-constructible, copies sharing state "
                "(the map keeps its own copy; NodeMemory requirement)");
  static constexpr bool value = true;
};

}  // namespace detail

/// Whether M meets the NodeMemory requirement (allocate, noexcept deallocate, copyable).
template <class M>
inline constexpr bool is_node_memory_v =
    detail::memory_has_allocate<M>::value&& detail::memory_has_deallocate<M>::value&&
        detail::memory_deallocate_noexcept<M>::value&& std::is_copy_constructible<M>::value;

// ---- counting_memory ------------------------------------------------------------------------

/// Wraps a node memory resource and counts live bytes and allocations per node. Copies share
/// the counters (and the inner resource's state, if it shares). name(), note() and
/// verify_placement() forward to the inner resource when it has them. Counters use relaxed
/// atomics: exact once the threads that allocate have been joined.
template <class Inner = default_memory>
// NOLINTNEXTLINE(cppcoreguidelines-special-member-functions): no move, by design (see below)
class counting_memory {
  static_assert(detail::check_node_memory<Inner>::value);

 public:
  counting_memory() : counting_memory(Inner{}) {}
  explicit counting_memory(Inner inner)
      : inner_(std::move(inner)), counters_(std::make_shared<counters>()) {}
  counting_memory(const counting_memory&) = default;  // no move: moved-from stays usable
  counting_memory& operator=(const counting_memory&) = default;
  ~counting_memory() = default;

  void* allocate(std::size_t bytes, std::size_t align, node_id node) {
    void* p = inner_.allocate(bytes, align, node);
    counters_->add(node, static_cast<std::int64_t>(bytes), 1);
    return p;
  }
  void deallocate(void* p, std::size_t bytes, std::size_t align, node_id node) noexcept {
    inner_.deallocate(p, bytes, align, node);
    counters_->add(node, -static_cast<std::int64_t>(bytes), -1);
  }

  /// Live bytes (allocated, not yet deallocated), in total or for one node.
  std::size_t live_bytes() const noexcept { return counters_->get(counters_->total_bytes); }
  std::size_t live_bytes(node_id node) const noexcept {
    return counters_->get(counters_->bytes[counters::slot(node)]);
  }
  /// Live allocations, in total or for one node.
  std::size_t live_allocations() const noexcept { return counters_->get(counters_->total_allocs); }
  std::size_t live_allocations(node_id node) const noexcept {
    return counters_->get(counters_->allocs[counters::slot(node)]);
  }
  /// Allocations ever made through this resource and its copies.
  std::size_t total_allocations() const noexcept {
    // relaxed: a statistic; nothing is published through it.
    return static_cast<std::size_t>(counters_->ever.load(std::memory_order_relaxed));
  }

  /// The inner resource's name(), or "counting_memory".
  std::string name() const { return detail::memory_name(inner_, "counting_memory"); }
  /// The inner resource's note(), or "".
  std::string note() const { return detail::memory_note(inner_); }
  /// Forwarded to the inner resource; present only when it has verify_placement.
  template <class I = Inner, class = std::enable_if_t<detail::memory_has_verify<I>::value>>
  page_placement verify_placement(node_id node) const {
    return inner_.verify_placement(node);
  }

  const Inner& inner() const noexcept { return inner_; }

 private:
  struct counters {
    // Node ids >= max_numa_nodes share the last slot.
    static std::size_t slot(node_id n) noexcept {
      return n < detail::max_numa_nodes ? n : detail::max_numa_nodes;
    }
    void add(node_id node, std::int64_t bytes_delta, std::int64_t count_delta) noexcept {
      // relaxed: counters only; readers are told the values are exact once allocating threads
      // are joined (the join synchronises).
      bytes[slot(node)].fetch_add(bytes_delta, std::memory_order_relaxed);
      allocs[slot(node)].fetch_add(count_delta, std::memory_order_relaxed);
      total_bytes.fetch_add(bytes_delta, std::memory_order_relaxed);
      total_allocs.fetch_add(count_delta, std::memory_order_relaxed);
      if (count_delta > 0) ever.fetch_add(1, std::memory_order_relaxed);
    }
    static std::size_t get(const std::atomic<std::int64_t>& a) noexcept {
      // relaxed: see add().
      const std::int64_t v = a.load(std::memory_order_relaxed);
      return v < 0 ? 0 : static_cast<std::size_t>(v);
    }
    std::array<std::atomic<std::int64_t>, detail::max_numa_nodes + 1> bytes{};
    std::array<std::atomic<std::int64_t>, detail::max_numa_nodes + 1> allocs{};
    std::atomic<std::int64_t> total_bytes{0};
    std::atomic<std::int64_t> total_allocs{0};
    std::atomic<std::uint64_t> ever{0};
  };

  Inner inner_;
  std::shared_ptr<counters> counters_;
};

static_assert(is_node_memory_v<heap_memory>, "heap_memory must meet NodeMemory");
static_assert(is_node_memory_v<numa_memory>, "numa_memory must meet NodeMemory");

NUMAMAP_END_NAMESPACE
