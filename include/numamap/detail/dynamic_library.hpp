// numamap/detail/dynamic_library.hpp — the dlopen/dlsym steps shared by the run-time loaders of
// hwloc (hwloc.hpp) and libnuma (libnuma.hpp). Neither library is linked (docs/building.md):
// each is opened on first use, from the file an environment variable names or from its soname,
// and a failure becomes an error string naming the file and carrying dlerror(), never an
// exception (but std::bad_alloc) and never a message on stderr.
//
// dlerror() is per thread in glibc (a static buffer only before glibc 2.3), so the loaders may
// run concurrently on different threads; they run once per process anyway (function-local
// statics in hwloc_lib() and libnuma_lib()).
#pragma once

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "../config.hpp"

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

/// The value of the environment variable `env` when it is set and not empty, else `fallback`.
inline std::string library_path(const char* env, const char* fallback) {
  // numamap never writes the environment: getenv races only with a caller's setenv.
  const char* value = std::getenv(env);  // NOLINT(concurrency-mt-unsafe)
  return value != nullptr && *value != '\0' ? std::string(value) : std::string(fallback);
}

/// dlerror()'s text, or `otherwise` when it has none.
inline std::string last_dl_error(const char* otherwise) {
  const char* e = ::dlerror();  // NOLINT(concurrency-mt-unsafe): glibc keeps it per thread
  return e != nullptr ? std::string(e) : std::string(otherwise);
}

/// dlopen(`library`, RTLD_NOW | RTLD_LOCAL): RTLD_NOW so that a library missing a dependency
/// fails here, not at the first call; RTLD_LOCAL so that its symbols do not leak into the
/// program's global scope. `library` is a path, or a soname for the usual search path. On
/// failure returns nullptr and sets `error` to `numamap: cannot load the <what> library
/// "<library>": <dlerror>`. The handle is never dlclose'd by numamap: pointers resolved from
/// it (and objects the library made) may be used for the life of the process.
inline void* open_library(const std::string& library, const char* what, std::string& error) {
  (void)::dlerror();  // NOLINT(concurrency-mt-unsafe): clears this thread's stale error
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    error = std::string("numamap: cannot load the ") + what + " library \"" + library +
            "\": " + last_dl_error("dlopen returned NULL");
  }
  return handle;
}

/// dlsym(`handle`, `name`) into the function pointer `out`. On failure returns false, leaves
/// `out` as it was and sets `error` to `numamap: <what> library "<library>" lacks <name>:
/// <dlerror>`.
template <class F>
bool resolve_symbol(void* handle, const char* name, F& out, const char* what,
                    const std::string& library, std::string& error) {
  (void)::dlerror();  // NOLINT(concurrency-mt-unsafe): clears this thread's stale error
  void* p = ::dlsym(handle, name);
  if (p == nullptr) {
    error = std::string("numamap: ") + what + " library \"" + library + "\" lacks " + name + ": " +
            last_dl_error("dlsym returned NULL");
    return false;
  }
  static_assert(sizeof(F) == sizeof(void*), "function and object pointers differ in size");
  std::memcpy(&out, &p, sizeof out);  // POSIX guarantees the conversion; no cast warning
  return true;
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
