// numamap/detail/numa_syscalls.hpp — mbind(2) and move_pages(2) as raw system calls, with
// numamap's own copies of the kernel constants (values from <linux/mempolicy.h>; that header
// and libnuma's numaif.h conflict, so no numamap header includes either).
//
// The calls go through a table of function pointers so that tests can inject the failures a
// container or an old kernel produces (EPERM, ENOSYS, EINVAL, ENOMEM). The table is read when
// a resource is constructed and when a chunk is mapped, never per allocation.
#pragma once

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "../fwd.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

// Policy modes and flags (include/uapi/linux/mempolicy.h).
inline constexpr int mpol_preferred = 1;
inline constexpr int mpol_bind = 2;
inline constexpr int mpol_interleave = 3;
inline constexpr int mpol_f_static_nodes = 1 << 15;
// madvise(2) advice (include/uapi/asm-generic/mman-common.h), Linux 5.14+.
inline constexpr int madv_populate_write = 23;

/// Node ids numamap can place memory on: 0 .. max_numa_nodes-1 (the kernel's MAX_NUMNODES is
/// at most 1024 on common distributions, CONFIG_NODES_SHIFT=10).
inline constexpr std::size_t max_numa_nodes = 1024;

/// A node mask as mbind reads it.
struct node_mask {
  static constexpr std::size_t bits_per_word = sizeof(unsigned long) * CHAR_BIT;
  unsigned long words[max_numa_nodes / bits_per_word] = {};

  void set(node_id n) noexcept { words[n / bits_per_word] |= 1UL << (n % bits_per_word); }
  bool test(node_id n) const noexcept {
    return n < max_numa_nodes && ((words[n / bits_per_word] >> (n % bits_per_word)) & 1UL) != 0;
  }
  bool empty() const noexcept {
    // NOLINTNEXTLINE(readability-use-anyofallof): std::all_of moves GCC's inlining in shard code
    for (unsigned long w : words) {
      if (w != 0) return false;
    }
    return true;
  }
  /// The `maxnode` argument for this mask. The kernel reads only maxnode - 1 bits (get_nodes()
  /// starts with --maxnode; a fix was rejected as an ABI break), so passing the bit count would
  /// drop the top node, and under MPOL_PREFERRED a mask of one node given with maxnode = 1 turns
  /// silently into local allocation. libnuma passes size + 1 as well.
  static constexpr unsigned long maxnode() noexcept { return max_numa_nodes + 1; }
};

inline long raw_mbind(void* addr, unsigned long len, int mode, const unsigned long* mask,
                      unsigned long maxnode, unsigned flags) noexcept {
  return ::syscall(SYS_mbind, addr, len, mode, mask, maxnode, flags);
}

inline long raw_move_pages(int pid, unsigned long count, void** pages, const int* nodes,
                           int* status, int flags) noexcept {
  return ::syscall(SYS_move_pages, pid, count, pages, nodes, status, flags);
}

/// A node's free and total memory in bytes from /sys/devices/system/node/nodeN/meminfo (the
/// file libnuma's numa_node_size64 reads); false when it cannot be read.
inline bool sysfs_node_memory(node_id node, std::uint64_t* free_bytes,
                              std::uint64_t* total_bytes) noexcept {
  char path[96];
  std::snprintf(path, sizeof path, "/sys/devices/system/node/node%u/meminfo", node);
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return false;
  char line[256];
  bool have_free = false;
  bool have_total = false;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned n = 0;
    unsigned long long kb = 0;
    char key[64] = {};
    if (std::sscanf(line, "Node %u %63[^:]: %llu", &n, key, &kb) != 3) continue;
    if (std::strcmp(key, "MemFree") == 0) {
      *free_bytes = kb * 1024;
      have_free = true;
    } else if (std::strcmp(key, "MemTotal") == 0) {
      *total_bytes = kb * 1024;
      have_total = true;
    }
  }
  std::fclose(f);
  return have_free && have_total;
}

/// The system calls numa_memory makes; they return -1 and set errno on failure. node_memory
/// answers the free-memory question of the bind mode.
struct numa_syscall_table {
  long (*mbind)(void*, unsigned long, int, const unsigned long*, unsigned long,
                unsigned) noexcept = &raw_mbind;
  long (*move_pages)(int, unsigned long, void**, const int*, int*, int) noexcept = &raw_move_pages;
  bool (*node_memory)(node_id, std::uint64_t*, std::uint64_t*) noexcept = &sysfs_node_memory;
};

/// The table in use. Tests may replace entries (and must restore them); nothing else should.
inline numa_syscall_table& numa_syscalls() noexcept {
  static numa_syscall_table table;
  return table;
}

/// Name of an errno value as the man pages spell it, for notes.
inline const char* errno_name(int e) noexcept {
  switch (e) {
    case EPERM:
      return "EPERM";
    case ENOSYS:
      return "ENOSYS";
    case EINVAL:
      return "EINVAL";
    case ENOMEM:
      return "ENOMEM";
    case EFAULT:
      return "EFAULT";
    case EIO:
      return "EIO";
    case EACCES:
      return "EACCES";
    case ENOENT:
      return "ENOENT";
    default:
      return "errno";
  }
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
