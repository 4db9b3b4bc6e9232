// numamap/detail/numa_arena.hpp — one node's arena of numa_memory.
//
// Why an arena: numa_alloc_onnode makes one mmap + mbind per call, so a 64-byte object costs a
// 4 KiB page (measured: 20,000 objects, 80 MB). The arena instead maps large chunks, binds
// each with mbind *before anything touches it* (placement happens at first touch; pages
// already present would stay where they are), and carves small objects out of them.
//
// Layout:
// - Chunks: anonymous private mappings, 2 MiB aligned (so transparent huge pages can back
//   them), growing geometrically 2, 4, 8, ... 64 MiB (few VMAs: chunks bound to different
//   nodes never merge, and vm.max_map_count is 65530). Chunks of 8 MiB and more and large
//   blocks of 4 MiB and more are advised MADV_HUGEPAGE unless NUMAMAP_NO_HUGE_PAGES=1.
// - Size classes 8 B .. 64 KiB (8-byte steps up to 64, then four classes per power of two).
//   Each class bump-allocates from runs carved page-aligned out of the current chunk and
//   keeps an intrusive free list of returned blocks. Blocks are packed at the class size (a
//   24-byte entry costs 24 bytes); a block's alignment is the largest power of two dividing
//   the class size (at most 4096), and a request goes to the smallest class that is large and
//   aligned enough.
// - Larger (or more aligned) requests get their own mapping, bound the same way. When one of
//   at most arena_spare_len_max bytes is freed, the arena keeps it mapped as a spare (at most
//   arena_spare_count, the oldest unmapped first) and hands it out again for a request of
//   the same length: a shard that rebuilds its table frees one of the size its next rebuild
//   asks for, and reusing it saves the munmap, the mmap and a page fault per page, all of
//   which the rebuild paid with its shard's mutex held (decisions.md D25).
// - Lanes: each class has arena_lanes independent copies (lock, free list, run); a thread
//   keeps to one lane, so concurrent writers rarely share a lock (the map allocates an entry
//   under a shard's lock, and reclamation frees from any thread).
// - Locks: one spin-then-sleep mutex per class and lane (each on its own 128-byte line), one
//   for the chunk list. Allocation is off the map's read path.
// - Memory is returned to the OS when the arena is destroyed (numa_memory's last handle);
//   blocks freed before go to their class's free list, large mappings are unmapped when
//   freed, except the few kept as spares.
// - bind mode: before mapping, the node's free memory (sysfs MemFree) must exceed the request
//   plus a headroom, else std::bad_alloc; the new mapping is then populated
//   (MADV_POPULATE_WRITE) so that the kernel's free count reflects what the arena holds.
//   Under MPOL_BIND a page fault on a full node OOM-kills the process instead of failing, and
//   the check cannot rule that out (another process may take the memory in between).
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "../stats.hpp"
#include "cacheline.hpp"
#include "numa_syscalls.hpp"
#include "page_query.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

inline constexpr std::size_t arena_chunk_min = std::size_t{2} << 20;
inline constexpr std::size_t arena_chunk_max = std::size_t{64} << 20;
inline constexpr std::size_t arena_chunk_align = std::size_t{2} << 20;
inline constexpr std::size_t arena_max_block_align = 4096;
/// Large blocks' mappings of at least this size are advised MADV_HUGEPAGE (see map_region).
inline constexpr std::size_t arena_huge_min = std::size_t{4} << 20;
/// Chunks of at least this size are advised MADV_HUGEPAGE: the third chunk on, so the first
/// 6 MiB of small blocks stay on 4 KiB pages (see carve; decisions.md D53).
inline constexpr std::size_t arena_huge_chunk_min = std::size_t{8} << 20;
/// Freed large mappings of at most this length are kept as spares, at most this many.
inline constexpr std::size_t arena_spare_len_max = std::size_t{8} << 20;
inline constexpr std::size_t arena_spare_count = 4;
/// Padding of per-class lock state (x86-64 adjacent-line prefetch pairs 64-byte lines).
inline constexpr std::size_t arena_line = 128;

inline constexpr std::uint32_t arena_size_classes[] = {
    8,     16,    24,    32,    40,    48,    56,    64,    80,    96,    112,   128,
    160,   192,   224,   256,   320,   384,   448,   512,   640,   768,   896,   1024,
    1280,  1536,  1792,  2048,  2560,  3072,  3584,  4096,  5120,  6144,  7168,  8192,
    10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536};
inline constexpr std::size_t arena_class_count =
    sizeof(arena_size_classes) / sizeof(arena_size_classes[0]);
inline constexpr std::size_t arena_small_max = 65536;
inline constexpr std::size_t arena_no_class = static_cast<std::size_t>(-1);

/// Alignment every block of a class has: the lowest set bit of its size, at most 4096.
constexpr std::size_t arena_class_alignment(std::size_t size) noexcept {
  const std::size_t low = size & (~size + 1);
  return low < arena_max_block_align ? low : arena_max_block_align;
}

/// The size class serving (bytes, align), or arena_no_class for a large request.
inline std::size_t arena_class_of(std::size_t bytes, std::size_t align) noexcept {
  if (bytes == 0) bytes = 1;
  if (bytes > arena_small_max || align > arena_max_block_align) return arena_no_class;
  std::size_t i = bytes <= 64 ? (bytes + 7) / 8 - 1 : 8;
  while (i < arena_class_count &&
         (arena_size_classes[i] < bytes || arena_class_alignment(arena_size_classes[i]) < align)) {
    ++i;
  }
  return i < arena_class_count ? i : arena_no_class;
}

inline std::size_t round_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) / to * to;
}

/// The largest request, and alignment, a node arena maps: 2^62 bytes, more than any address
/// space, so a request above it can only fail; below it the rounding to pages and to the
/// chunk alignment cannot wrap around.
inline constexpr std::size_t arena_large_max = std::size_t{1} << 62U;

/// Each size class has this many independent lanes (free list, bump run, lock); a thread
/// always uses the same lane, and threads are spread over the lanes round-robin, so threads
/// that allocate and free entries at once rarely wait for each other. A block freed by
/// another thread (reclamation) joins that thread's lane: all lanes are on the same node.
inline constexpr std::size_t arena_lanes = 4;

/// The calling thread's lane.
inline std::size_t arena_lane() noexcept {
  static std::atomic<std::size_t> next{0};
  // Relaxed: only spreads threads over lanes; any value is correct.
  static thread_local const std::size_t lane =
      next.fetch_add(1, std::memory_order_relaxed) % arena_lanes;
  return lane;
}

/// Bytes carved at once for a size class: at least 32 KiB and 8 blocks, whole pages.
inline std::size_t arena_run_size(std::size_t cls) noexcept {
  const std::size_t size = arena_size_classes[cls];
  return round_up(std::max<std::size_t>(std::size_t{32} << 10, 8 * size), os_page_size());
}

/// An anonymous private mapping of `len` bytes aligned to `align` (a power of two, at least a
/// page); nullptr when mmap fails. Nothing of it is touched.
inline void* map_aligned(std::size_t len, std::size_t align) noexcept {
  const std::size_t page = os_page_size();
  const std::size_t extra = align > page ? align : 0;
  if (len == 0 || len > std::numeric_limits<std::size_t>::max() - extra) return nullptr;
  void* p = ::mmap(nullptr, len + extra, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  if (extra == 0) return p;
  const auto base = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t aligned = (base + align - 1) & ~(static_cast<std::uintptr_t>(align) - 1);
  const std::size_t head = aligned - base;
  const std::size_t tail = extra - head;
  if (head != 0) ::munmap(p, head);
  if (tail != 0) ::munmap(reinterpret_cast<void*>(aligned + len), tail);
  return reinterpret_cast<void*>(aligned);
}

/// How a node's memory is placed.
struct placement_policy {
  int mode = mpol_preferred | mpol_f_static_nodes;  // mode | flags for mbind
  node_mask mask;          // the node (preferred, bind) or the interleave set
  bool strict = false;     // bind: check free memory, populate, fail instead of falling back
  bool huge_pages = true;  // MADV_HUGEPAGE on large mappings (arena_huge_min, _chunk_min)
};

/// The bind-mode headroom: what must stay free on the node beyond the request (the kernel's
/// watermarks and other users): 8 MiB or 1/32 of the node, whichever is larger.
inline std::uint64_t bind_headroom(std::uint64_t node_total) noexcept {
  return std::max<std::uint64_t>(std::uint64_t{8} << 20, node_total / 32);
}

class node_arena {
 public:
  node_arena(node_id node, const placement_policy& policy)
      : classes_(), node_(node), policy_(policy) {
    spares_.reserve(arena_spare_count);
  }
  node_arena(const node_arena&) = delete;
  node_arena& operator=(const node_arena&) = delete;
  node_arena(node_arena&&) = delete;
  node_arena& operator=(node_arena&&) = delete;

  ~node_arena() {
    for (const chunk& c : chunks_) ::munmap(c.base, c.len);
    for (const auto& l : large_) ::munmap(l.first, l.second);
    for (const auto& sp : spares_) ::munmap(sp.first, sp.second);
  }

  node_id node() const noexcept { return node_; }

  /// A block of at least `bytes` aligned to `align` (a power of two). Throws std::bad_alloc.
  void* allocate(std::size_t bytes, std::size_t align) {
    const std::size_t cls = arena_class_of(bytes, align);
    if (cls == arena_no_class) return allocate_large(bytes, align);
    const std::size_t size = arena_size_classes[cls];
    class_state& s = classes_[arena_lane()][cls];
    std::lock_guard<adaptive_mutex> lock(s.mu);
    if (s.free != nullptr) {
      void* p = s.free;
      std::memcpy(&s.free, p, sizeof(void*));
      // The next pop reads the new head's first word: a free block is usually cold (freed
      // by a reclamation long ago), so fetch it now and that miss overlaps the caller's work.
      if (s.free != nullptr) prefetch_for_write(s.free);
      return p;
    }
    if (static_cast<std::size_t>(s.end - s.cur) < size) {
      const std::size_t run = arena_run_size(cls);
      s.cur = carve(run);
      s.end = s.cur + run;
    }
    void* p = s.cur;
    s.cur += size;
    return p;
  }

  void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept {
    const std::size_t cls = arena_class_of(bytes, align);
    if (cls == arena_no_class) {
      deallocate_large(p, bytes);
      return;
    }
    class_state& s = classes_[arena_lane()][cls];
    std::lock_guard<adaptive_mutex> lock(s.mu);
    std::memcpy(p, &s.free, sizeof(void*));
    s.free = p;
  }

  /// Where the pages of this arena's chunks (the carved part) and large mappings lie.
  page_placement verify(std::size_t cap = page_sample_cap) const {
    std::vector<std::pair<const void*, std::size_t>> ranges;
    {
      std::lock_guard<std::mutex> lock(region_mu_);
      for (const chunk& c : chunks_) {
        if (c.used != 0) ranges.emplace_back(c.base, c.used);
      }
      for (const auto& l : large_) ranges.emplace_back(l.first, l.second);
    }
    return query_pages(ranges, policy_.mask, cap);
  }

  /// Bytes mapped for this node (chunks, large mappings and spares).
  std::size_t mapped_bytes() const noexcept {
    // relaxed: a statistic; nothing is published through it.
    return mapped_bytes_.load(std::memory_order_relaxed);
  }
  /// Mappings whose mbind failed after the construction probe had succeeded.
  std::size_t mbind_failures() const noexcept {
    // relaxed: a statistic; nothing is published through it.
    return mbind_failures_.load(std::memory_order_relaxed);
  }
  int last_mbind_errno() const noexcept {
    // relaxed: a statistic, read together with mbind_failures for a note.
    return last_mbind_errno_.load(std::memory_order_relaxed);
  }

 private:
  struct chunk {
    char* base;
    std::size_t len;
    std::size_t used;  // bytes carved from the front
  };
  struct alignas(arena_line) class_state {
    adaptive_mutex mu;
    void* free = nullptr;  // intrusive list: the first word of a free block points to the next
    char* cur = nullptr;   // bump range of the current run
    char* end = nullptr;
  };

  // Carves `len` bytes (whole pages) from the current chunk, mapping a new one if needed.
  char* carve(std::size_t len) {
    std::lock_guard<std::mutex> lock(region_mu_);
    if (chunks_.empty() || chunks_.back().len - chunks_.back().used < len) {
      const std::size_t need = round_up(len, arena_chunk_align);
      std::size_t size = std::max(next_chunk_, need);
      if (policy_.strict) {
        // Shrink the chunk (not below what the request needs) until the node has room for it.
        while (size / 2 >= std::max(arena_chunk_min, need) && !node_has_room(size)) size /= 2;
      }
      // A chunk is touched a run at a time, as small blocks are asked for: a huge page would
      // make the whole 2 MiB around a run resident at its first touch, however little of it
      // is used. So only chunks from the third on (8 MiB, after 6 MiB of small blocks) get
      // huge pages; the second (4 MiB) made a 100K-key map resident at 73 bytes per entry
      // instead of 59 (decisions.md D53).
      char* base = map_region(size, arena_chunk_align, arena_huge_chunk_min);
      chunks_.push_back(chunk{base, size, 0});
      next_chunk_ = std::min(arena_chunk_max, size * 2);
    }
    chunk& c = chunks_.back();
    char* p = c.base + c.used;
    c.used += len;
    return p;
  }

  void* allocate_large(std::size_t bytes, std::size_t align) {
    // No mapping can be this large (the address space is far smaller); refused before the
    // rounding below wraps around and maps a few pages for a request near SIZE_MAX.
    if (bytes > arena_large_max || align > arena_large_max) throw std::bad_alloc();
    const std::size_t len = round_up(bytes == 0 ? 1 : bytes, os_page_size());
    const std::size_t alignment =
        std::max(align, len >= arena_chunk_align ? arena_chunk_align : os_page_size());
    std::lock_guard<std::mutex> lock(region_mu_);
    char* p = take_spare(len, alignment);
    if (p == nullptr) p = map_region(len, alignment, arena_huge_min);
    try {
      large_.emplace(p, len);
    } catch (...) {
      ::munmap(p, len);
      mapped_bytes_.fetch_sub(len, std::memory_order_relaxed);  // relaxed: a statistic
      throw;
    }
    return p;
  }

  void deallocate_large(void* p, std::size_t bytes) noexcept {
    const std::size_t len = round_up(bytes == 0 ? 1 : bytes, os_page_size());
    std::pair<char*, std::size_t> unmap{nullptr, 0};
    {
      std::lock_guard<std::mutex> lock(region_mu_);
      large_.erase(static_cast<char*>(p));
      if (len > arena_spare_len_max) {
        unmap = {static_cast<char*>(p), len};
      } else {
        // Keep it (still bound, its pages resident); the oldest spare goes if full. The
        // array has its room from the constructor, so this cannot allocate.
        if (spares_.size() == arena_spare_count) {
          unmap = spares_.front();
          spares_.erase(spares_.begin());
        }
        spares_.emplace_back(static_cast<char*>(p), len);
      }
    }
    if (unmap.first != nullptr) {
      ::munmap(unmap.first, unmap.second);
      mapped_bytes_.fetch_sub(unmap.second, std::memory_order_relaxed);  // relaxed: a statistic
    }
  }

  /// A spare mapping of exactly `len` bytes aligned to `align`, taken out of the spares, or
  /// null. Caller holds region_mu_. Its contents are whatever its last user left.
  char* take_spare(std::size_t len, std::size_t align) noexcept {
    for (auto it = spares_.begin(); it != spares_.end(); ++it) {
      if (it->second == len && reinterpret_cast<std::uintptr_t>(it->first) % align == 0) {
        char* p = it->first;
        spares_.erase(it);
        return p;
      }
    }
    return nullptr;
  }

  // Whether the node can give `len` more bytes and keep its headroom. True when unknown.
  bool node_has_room(std::size_t len) const noexcept {
    std::uint64_t free_bytes = 0;
    std::uint64_t total = 0;
    if (!numa_syscalls().node_memory(node_, &free_bytes, &total)) return true;
    return free_bytes >= len && free_bytes - len >= bind_headroom(total);
  }

  // Maps, binds and (strict) populates a region, advised MADV_HUGEPAGE if it has at least
  // huge_min bytes. Caller holds region_mu_. Throws bad_alloc.
  char* map_region(std::size_t len, std::size_t align, std::size_t huge_min) {
    if (policy_.strict && !node_has_room(len)) throw std::bad_alloc();
    void* p = map_aligned(len, align);
    if (p == nullptr) throw std::bad_alloc();
    // mbind before the first touch: pages fault in under the policy.
    if (numa_syscalls().mbind(p, len, policy_.mode, policy_.mask.words, node_mask::maxnode(), 0) !=
        0) {
      const int e = errno;
      // relaxed: statistics for note(); nothing is published through them.
      mbind_failures_.fetch_add(1, std::memory_order_relaxed);
      last_mbind_errno_.store(e, std::memory_order_relaxed);
      if (policy_.strict) {
        ::munmap(p, len);
        throw std::bad_alloc();
      }
    }
    // Large mappings ask for transparent huge pages (where THP is "madvise" only,
    // they get none otherwise): a 10M-key map's tables and entries span hundreds of MiB, and
    // with 4 KiB pages nearly every lookup also misses the TLB. After mbind, before the
    // first touch, so huge pages come from the policy's node too. Small mappings (the first
    // chunks of a small map) stay on 4 KiB pages: a huge page would make a 1K-key map
    // resident in 2 MiB steps. Advice only: an error (no THP in the kernel) changes nothing.
    if (policy_.huge_pages && len >= huge_min) (void)::madvise(p, len, MADV_HUGEPAGE);
    if (policy_.strict && !populate(p, len)) {
      ::munmap(p, len);
      throw std::bad_alloc();
    }
    mapped_bytes_.fetch_add(len, std::memory_order_relaxed);  // relaxed: a statistic
    return static_cast<char*>(p);
  }

  // Faults the region in now, so the node's free count tracks what the arena holds.
  static bool populate(void* p, std::size_t len) noexcept {
    if (::madvise(p, len, madv_populate_write) == 0) return true;
    if (errno != EINVAL) return false;  // ENOMEM / EFAULT: the node is full
    // Kernel older than 5.14: touch every page (the free-memory check already passed).
    volatile char* c = static_cast<char*>(p);
    for (std::size_t off = 0; off < len; off += os_page_size()) c[off] = 0;
    return true;
  }

  class_state classes_[arena_lanes][arena_class_count];  // first: each on its own 128-byte line
  const node_id node_;
  const placement_policy policy_;
  mutable std::mutex region_mu_;  // guards chunks_, next_chunk_, large_, spares_
  std::vector<chunk> chunks_;
  std::size_t next_chunk_ = arena_chunk_min;
  std::map<char*, std::size_t> large_;  // start -> length
  // Freed large mappings kept for reuse, oldest first; capacity reserved up front.
  std::vector<std::pair<char*, std::size_t>> spares_;
  std::atomic<std::size_t> mapped_bytes_{0};
  std::atomic<std::size_t> mbind_failures_{0};
  std::atomic<int> last_mbind_errno_{0};
};

/// Whether mbind accepts `mode` for `node` here: maps one page, binds it, unmaps it. Returns 0
/// or the errno (EPERM under seccomp, ENOSYS without CONFIG_NUMA, EINVAL for a node that does
/// not exist, has no memory or is not allowed).
inline int probe_mbind(int mode, node_id node) noexcept {
  if (node >= max_numa_nodes) return EINVAL;
  const std::size_t page = os_page_size();
  void* p = map_aligned(page, page);
  if (p == nullptr) return ENOMEM;
  node_mask mask;
  mask.set(node);
  const long rc = numa_syscalls().mbind(p, page, mode, mask.words, node_mask::maxnode(), 0);
  const int e = rc == 0 ? 0 : errno;
  ::munmap(p, page);
  return e;
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
