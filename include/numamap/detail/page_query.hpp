// numamap/detail/page_query.hpp — where pages really are, by move_pages(2) with nodes = NULL:
// it moves nothing, faults nothing in, and reports per page a node id, -ENOENT for a page never
// touched or -EFAULT for the shared zero page. (get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR) would
// fault an untouched page in as the zero page, and numaif.h calls that mode unsupported.)
// Beside it, the page size and prefault_for_write, which does fault pages in: those of a
// block its caller is about to write whole (a new table; decisions.md D38, D49).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "../stats.hpp"
#include "numa_syscalls.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

/// Default number of pages asked about per query: beyond it pages are sampled with a stride.
inline constexpr std::size_t page_sample_cap = 8192;

inline std::size_t os_page_size() noexcept {
  static const std::size_t size = [] {
    const long p = ::sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<std::size_t>(p) : std::size_t{4096};
  }();
  return size;
}

/// The smallest block prefault_for_write faults in with one system call: below it (a few
/// pages) the page faults cost less than the call.
inline constexpr std::size_t prefault_min_bytes = std::size_t{64} << 10;

/// Faults in, writable, the whole pages inside [p, p + len) with one madvise
/// (MADV_POPULATE_WRITE, Linux 5.14+), for a caller that writes all of the block at once (a
/// new table, under its shard's mutex): one system call instead of a page fault per page,
/// each of which is a trap, in a VM an exit. It changes no byte; pages already present stay
/// as they are; placement follows the mapping's policy, as at a first touch. The pages the
/// block shares with its neighbours are left out. Advice only: an older kernel (EINVAL), a full
/// node (ENOMEM) or any other error leaves the pages to fault in at the first write, as
/// without it (decisions.md D38).
///
/// A block whose last whole page is resident already is taken as reused memory (a spare
/// mapping of numa_memory's, a block the heap had handed out before) and left alone: walking
/// its page tables to find every page present was about a quarter of a churning shard's
/// rebuild, with the mutex held (decisions.md D49). One mincore(2) of that page
/// decides; the last page, since a heap that grows adds its fresh pages at the end. A block
/// only partly resident that way faults the rest in at the first writes, as without the call.
inline void prefault_for_write(void* p, std::size_t len) noexcept {
  if (len < prefault_min_bytes) return;
  const std::uintptr_t page = os_page_size();
  const auto start = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t first = (start + page - 1) & ~(page - 1);
  const std::uintptr_t last = (start + len) & ~(page - 1);
  if (last <= first) return;
  unsigned char resident = 0;
  if (::mincore(reinterpret_cast<void*>(last - page), page, &resident) == 0 &&
      (resident & 1U) != 0) {
    return;
  }
  (void)::madvise(reinterpret_cast<void*>(first), last - first, madv_populate_write);
}

/// Asks where the pages of `ranges` (page-aligned start, length in bytes) lie. A page counts
/// as on_node when its node is in `expected`. At most `cap` pages are asked about: beyond it
/// every k-th page. verified is false when move_pages is refused (EPERM under seccomp, ENOSYS).
inline page_placement query_pages(const std::vector<std::pair<const void*, std::size_t>>& ranges,
                                  const node_mask& expected, std::size_t cap = page_sample_cap) {
  page_placement result;
  const std::size_t page = os_page_size();
  std::size_t total = 0;
  for (const auto& r : ranges) total += (r.second + page - 1) / page;
  result.verified = true;
  if (total == 0) return result;
  const std::size_t stride = cap == 0 ? 1 : (total + cap - 1) / cap;

  std::vector<void*> pages;
  pages.reserve(total / stride + 1);
  std::size_t index = 0;
  for (const auto& r : ranges) {
    const std::size_t n = (r.second + page - 1) / page;
    for (std::size_t i = 0; i < n; ++i, ++index) {
      if (index % stride == 0) {
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): move_pages takes void**
        pages.push_back(const_cast<char*>(static_cast<const char*>(r.first)) + i * page);
      }
    }
  }
  constexpr std::size_t batch = 1024;
  std::vector<int> status(batch);
  for (std::size_t at = 0; at < pages.size(); at += batch) {
    const std::size_t n = std::min(batch, pages.size() - at);
    const long rc = numa_syscalls().move_pages(0, n, pages.data() + at, nullptr, status.data(), 0);
    if (rc < 0) {
      return page_placement{};  // refused: placement unknown (verified = false)
    }
    for (std::size_t i = 0; i < n; ++i) {
      const int s = status[i];
      if (s >= 0) {
        if (expected.test(static_cast<node_id>(s))) {
          ++result.on_node;
        } else {
          ++result.elsewhere;
        }
      } else {
        ++result.not_present;  // -ENOENT (never touched), -EFAULT (zero page), or unmovable
      }
      ++result.sampled;
    }
  }
  return result;
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
