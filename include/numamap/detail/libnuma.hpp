// numamap/detail/libnuma.hpp — the only file of numamap that includes <numa.h>, and only when
// NUMAMAP_HAVE_LIBNUMA. numamap uses libnuma for one thing: numa_available(), the question
// "does this kernel let the process use NUMA policies?" (it is get_mempolicy(NULL...) and
// returns -1 on ENOSYS, or EPERM under a container's default seccomp profile).
//
// Placement itself goes through the raw system calls in numa_syscalls.hpp, never through
// numa_alloc_onnode (one mmap per call, a page per small object, a strict MPOL_BIND default
// stored per thread, and a message on stderr when mbind fails). No public header includes
// numaif.h or <linux/mempolicy.h>: the two conflict when included in the wrong order.
#pragma once

#include <string>

#include "../config.hpp"

#if NUMAMAP_HAVE_LIBNUMA
#include <numa.h>
#endif

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

/// Whether NUMA policies can be used at run time; the reason in `why` when not.
inline bool numa_usable(std::string& why) {
#if NUMAMAP_HAVE_LIBNUMA
  if (::numa_available() < 0) {
    why =
        "numa_available() returned -1 (the kernel has no NUMA support, or get_mempolicy is "
        "refused, e.g. by a container's seccomp profile without CAP_SYS_NICE)";
    return false;
  }
  return true;
#else
  why = "numamap was built without libnuma (NUMAMAP_HAVE_LIBNUMA=0)";
  return false;
#endif
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
