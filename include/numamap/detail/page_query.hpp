// numamap/detail/page_query.hpp — where pages really are, by move_pages(2) with nodes = NULL:
// it moves nothing, faults nothing in, and reports per page a node id, -ENOENT for a page never
// touched or -EFAULT for the shared zero page. (get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR) would
// fault an untouched page in as the zero page, and numaif.h calls that mode unsupported.)
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
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
