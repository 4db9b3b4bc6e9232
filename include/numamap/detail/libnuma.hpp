// numamap/detail/libnuma.hpp — the only file of numamap that includes <numa.h>, and only when
// NUMAMAP_HAVE_LIBNUMA. numamap uses libnuma for one thing: numa_available(), the question
// "does this kernel let the process use NUMA policies?" (it is get_mempolicy(NULL...) and
// returns -1 on ENOSYS, or EPERM under a container's default seccomp profile).
//
// libnuma is not linked: <numa.h> gives the declaration, and the library is opened at run time
// (dlopen "libnuma.so.1", or $NUMAMAP_LIBNUMA_LIBRARY) on first use, so a program built with
// libnuma still starts where it is not installed; numa_memory then falls back to heap memory
// and its note() says which file could not be loaded (docs/numa.md).
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

#include "dynamic_library.hpp"
#endif

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

#if NUMAMAP_HAVE_LIBNUMA

/// The file dlopen'ed for libnuma unless NUMAMAP_LIBNUMA_LIBRARY names another.
inline constexpr const char* libnuma_default_library = "libnuma.so.1";
/// The environment variable that overrides libnuma_default_library (read once per process).
inline constexpr const char* libnuma_library_env = "NUMAMAP_LIBNUMA_LIBRARY";

/// The libnuma functions numamap calls, resolved with dlsym (types from <numa.h>).
struct libnuma_api {
  std::string library;  ///< the file that was (or could not be) opened
  std::string error;    ///< empty when usable; else which file, and dlerror()
  decltype(&::numa_available) available = nullptr;

  bool usable() const noexcept { return error.empty(); }
};

/// Opens `library` RTLD_NOW | RTLD_LOCAL and resolves numa_available. Never throws (but
/// std::bad_alloc); on failure the error names the file and carries dlerror(). Never
/// dlclose'd.
inline libnuma_api libnuma_load(const std::string& library) {
  libnuma_api api;
  api.library = library;
  void* h = open_library(library, "libnuma", api.error);
  if (h != nullptr) {
    (void)resolve_symbol(h, "numa_available", api.available, "libnuma", library, api.error);
  }
  return api;
}

/// The library file libnuma_lib() opens: $NUMAMAP_LIBNUMA_LIBRARY when set and not empty,
/// else libnuma_default_library.
inline std::string libnuma_library_path() {
  return library_path(libnuma_library_env, libnuma_default_library);
}

/// The process's libnuma, opened on the first call (thread-safe: a function-local static; the
/// environment is read then, once) and kept for the life of the process.
inline const libnuma_api& libnuma_lib() {
  static const libnuma_api api = libnuma_load(libnuma_library_path());
  return api;
}

/// Whether NUMA policies can be used at run time; the reason in `why` when not. `api`: the
/// process's libnuma unless a test passes another.
inline bool numa_usable(std::string& why, const libnuma_api& api = libnuma_lib()) {
  if (!api.usable()) {
    why = api.error;
    return false;
  }
  if (api.available() < 0) {
    why =
        "numa_available() returned -1 (the kernel has no NUMA support, or get_mempolicy is "
        "refused, e.g. by a container's seccomp profile without CAP_SYS_NICE)";
    return false;
  }
  return true;
}

#else

/// Whether NUMA policies can be used at run time; the reason in `why` when not.
inline bool numa_usable(std::string& why) {
  why = "numamap was built without libnuma (NUMAMAP_HAVE_LIBNUMA=0)";
  return false;
}

#endif

}  // namespace detail
NUMAMAP_END_NAMESPACE
