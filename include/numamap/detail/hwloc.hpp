// numamap/detail/hwloc.hpp — topology discovery with hwloc 2. The only file of numamap that
// includes <hwloc.h>; included only when NUMAMAP_HAVE_HWLOC.
//
// hwloc is used once, at construction of a topology: the hwloc topology is loaded, copied into
// a raw_topology (plain vectors) and destroyed. Nothing on a hot path calls hwloc.
//
// hwloc is not linked: <hwloc.h> gives the types and constants, and the library is opened at
// run time (dlopen "libhwloc.so.15", the soname of every hwloc 2.x, or $NUMAMAP_HWLOC_LIBRARY)
// on first use, so a program built with hwloc still starts where it is not installed and
// falls back to sysfs (docs/numa.md). No exported hwloc function is referenced by name:
// every call goes through hwloc_api's pointers, and the header-inline helpers of hwloc.h that
// call exported functions (hwloc_get_nbobjs_by_type, hwloc_get_obj_by_type,
// hwloc_get_root_obj) are rewritten below on top of those pointers.
//
// Facts this code relies on (research/anchors-numa.md §3):
// - NUMA nodes are memory children of a CPU-side object and do not partition the cpus: a
//   CPU-less node hanging from the Machine has the Machine's cpuset. A cpu's node is therefore
//   the first NUMA node among the memory children of its nearest ancestor that has any
//   (memory-side caches skipped), which is the kernel's cpu_to_node view.
// - Node and cpu numbers are os_index (what numactl, mbind and sched_getcpu use); packages are
//   logical indexes (they have no OS identity).
// - Without the INCLUDE_DISALLOWED flag hwloc 2 drops cpus and nodes the process's cgroup
//   cpuset does not allow; memory-less nodes are not reported at all.
// - Synthetic topologies have no distance matrix; XML may carry "NUMALatency" (64-bit values).
// - HWLOC_SYNTHETIC / HWLOC_XMLFILE silently replace a default-loaded topology, and a missing
//   one silently leaves the real machine: hwloc_topology_is_thissystem() and the root's
//   "Backend" info tell which happened. An XML file keeps the Backend of the topology it was
//   exported from ("Linux", "Synthetic"); hwloc adds none of its own. A malformed file also
//   leaves the real machine with the libxml2 plugin, but fails the load with the built-in
//   parser (next point).
// - A libhwloc opened RTLD_LOCAL cannot lend its symbols to hwloc's own plugins
//   (hwloc_xml_libxml.so, ...): they disable themselves and hwloc uses its built-in minimal
//   XML parser, which reads everything lstopo writes.
#pragma once

#include <hwloc.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "dynamic_library.hpp"
#include "topology_raw.hpp"

#if HWLOC_API_VERSION < 0x00020000
#error \
    "numamap needs hwloc 2.x (HWLOC_API_VERSION >= 0x00020000); build with NUMAMAP_WITH_HWLOC=OFF otherwise"
#endif

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

enum class hwloc_input { system, synthetic, xml };

/// The file dlopen'ed for hwloc unless NUMAMAP_HWLOC_LIBRARY names another: the soname of
/// hwloc 2.x (ABI 15), found through the usual search path (ld.so.cache, LD_LIBRARY_PATH).
inline constexpr const char* hwloc_default_library = "libhwloc.so.15";
/// The environment variable that overrides hwloc_default_library (read once per process).
inline constexpr const char* hwloc_library_env = "NUMAMAP_HWLOC_LIBRARY";

/// The hwloc functions numamap calls, resolved with dlsym from one dlopen'ed library. The
/// pointer types come from the declarations in <hwloc.h> (decltype does not reference the
/// symbols), so a header/library signature mismatch cannot compile.
struct hwloc_api {
  std::string library;  ///< the file that was (or could not be) opened
  std::string error;    ///< empty when usable; else which file, and dlerror()
  decltype(&::hwloc_get_api_version) get_api_version = nullptr;
  decltype(&::hwloc_topology_init) topology_init = nullptr;
  decltype(&::hwloc_topology_load) topology_load = nullptr;
  decltype(&::hwloc_topology_destroy) topology_destroy = nullptr;
  decltype(&::hwloc_topology_set_xml) topology_set_xml = nullptr;
  decltype(&::hwloc_topology_set_synthetic) topology_set_synthetic = nullptr;
  decltype(&::hwloc_topology_is_thissystem) topology_is_thissystem = nullptr;
  decltype(&::hwloc_get_type_depth) get_type_depth = nullptr;
  decltype(&::hwloc_get_nbobjs_by_depth) get_nbobjs_by_depth = nullptr;
  decltype(&::hwloc_get_obj_by_depth) get_obj_by_depth = nullptr;
  // Optional (nullptr when the library lacks them): without them, no distance matrix.
  decltype(&::hwloc_distances_get_by_name) distances_get_by_name = nullptr;
  decltype(&::hwloc_distances_release) distances_release = nullptr;

  bool usable() const noexcept { return error.empty(); }

  // The inline helpers of <hwloc.h> numamap used, on the pointers above.
  int nbobjs_by_type(hwloc_topology_t t, hwloc_obj_type_t type) const {
    const int depth = get_type_depth(t, type);
    if (depth == HWLOC_TYPE_DEPTH_UNKNOWN) return 0;
    if (depth == HWLOC_TYPE_DEPTH_MULTIPLE) return -1;
    return static_cast<int>(get_nbobjs_by_depth(t, depth));
  }
  hwloc_obj_t obj_by_type(hwloc_topology_t t, hwloc_obj_type_t type, unsigned idx) const {
    const int depth = get_type_depth(t, type);
    if (depth == HWLOC_TYPE_DEPTH_UNKNOWN || depth == HWLOC_TYPE_DEPTH_MULTIPLE) return nullptr;
    return get_obj_by_depth(t, depth, idx);
  }
  hwloc_obj_t root_obj(hwloc_topology_t t) const { return get_obj_by_depth(t, 0, 0); }
};

/// dlsym into `out`; false with `error` naming the library and the symbol when it is missing.
template <class F>
bool hwloc_resolve(void* handle, const char* name, F& out, const std::string& library,
                   std::string& error) {
  return resolve_symbol(handle, name, out, "hwloc", library, error);
}

/// Opens `library` (a path, or a soname for the search path) RTLD_NOW | RTLD_LOCAL and
/// resolves every function numamap needs. Never throws (but std::bad_alloc); on failure the
/// result's error names the file and carries dlerror(). The handle is never dlclose'd: hwloc
/// topologies and the returned pointers may be used for the life of the process.
inline hwloc_api hwloc_load(const std::string& library) {
  hwloc_api api;
  api.library = library;
  void* h = open_library(library, "hwloc", api.error);
  if (h == nullptr) return api;
  std::string& err = api.error;
  const bool ok =
      hwloc_resolve(h, "hwloc_get_api_version", api.get_api_version, library, err) &&
      hwloc_resolve(h, "hwloc_topology_init", api.topology_init, library, err) &&
      hwloc_resolve(h, "hwloc_topology_load", api.topology_load, library, err) &&
      hwloc_resolve(h, "hwloc_topology_destroy", api.topology_destroy, library, err) &&
      hwloc_resolve(h, "hwloc_topology_set_xml", api.topology_set_xml, library, err) &&
      hwloc_resolve(h, "hwloc_topology_set_synthetic", api.topology_set_synthetic, library, err) &&
      hwloc_resolve(h, "hwloc_topology_is_thissystem", api.topology_is_thissystem, library, err) &&
      hwloc_resolve(h, "hwloc_get_type_depth", api.get_type_depth, library, err) &&
      hwloc_resolve(h, "hwloc_get_nbobjs_by_depth", api.get_nbobjs_by_depth, library, err) &&
      hwloc_resolve(h, "hwloc_get_obj_by_depth", api.get_obj_by_depth, library, err);
  if (!ok) return api;
  std::string optional_error;
  if (!hwloc_resolve(h, "hwloc_distances_get_by_name", api.distances_get_by_name, library,
                     optional_error) ||
      !hwloc_resolve(h, "hwloc_distances_release", api.distances_release, library,
                     optional_error)) {
    api.distances_get_by_name = nullptr;  // hwloc 2.0: no by-name lookup, no distances
    api.distances_release = nullptr;
  }
  // The library's major version must be the headers' (the structures numamap reads differ
  // between hwloc 1.x, 2.x and 3.x).
  const unsigned runtime = api.get_api_version();
  if ((runtime >> 16) != (static_cast<unsigned>(HWLOC_API_VERSION) >> 16)) {
    api.error = "numamap: the hwloc library \"" + library + "\" has API version " +
                std::to_string(runtime >> 16) + ".x; numamap was built with hwloc " +
                std::to_string(static_cast<unsigned>(HWLOC_API_VERSION) >> 16) +
                ".x headers (hwloc library major version differs from the headers)";
  }
  return api;
}

/// The library file hwloc_lib() opens: $NUMAMAP_HWLOC_LIBRARY when set and not empty, else
/// hwloc_default_library.
inline std::string hwloc_library_path() {
  return library_path(hwloc_library_env, hwloc_default_library);
}

/// The process's hwloc, opened on the first call (thread-safe: a function-local static; the
/// environment is read then, once) and kept for the life of the process.
inline const hwloc_api& hwloc_lib() {
  static const hwloc_api api = hwloc_load(hwloc_library_path());
  return api;
}

struct hwloc_topology_deleter {
  void (*destroy)(hwloc_topology_t) = nullptr;
  void operator()(hwloc_topology* t) const noexcept { destroy(t); }
};
using hwloc_topology_ptr = std::unique_ptr<hwloc_topology, hwloc_topology_deleter>;

/// Whether hwloc accepts a synthetic description (false also when hwloc cannot be loaded).
inline bool hwloc_synthetic_accepted(const std::string& desc, const hwloc_api& api = hwloc_lib()) {
  if (!api.usable()) return false;
  hwloc_topology_t t = nullptr;
  if (api.topology_init(&t) != 0) return false;
  const int rc = api.topology_set_synthetic(t, desc.c_str());
  api.topology_destroy(t);
  return rc == 0;
}

/// Copies a loaded hwloc topology into plain data. A NUMALatency value that does not fit an
/// unsigned int: for an input the caller named (`input` not empty) std::invalid_argument
/// naming it; for the system topology the whole matrix is dropped (distance() then uses the
/// defaults, see topology.hpp) and `note` says why.
inline raw_topology hwloc_copy(const hwloc_api& api, hwloc_topology_t t, const std::string& input,
                               std::string& note) {
  raw_topology raw;
  const int packages = api.nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
  raw.package_count = packages > 0 ? static_cast<std::size_t>(packages) : 1;

  auto package_of = [&](hwloc_obj_t o) -> unsigned {
    if (packages <= 0) return 0;  // no package objects: the machine is one package
    // hwloc_get_ancestor_obj_by_type is a plain walk up the parents (no library call).
    hwloc_obj_t p = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, o);
    return p != nullptr ? p->logical_index : no_package;
  };

  const int nodes = api.nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < nodes; ++i) {
    hwloc_obj_t n = api.obj_by_type(t, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    raw_node r;
    r.id = n->os_index;
    r.package = package_of(n);
    r.memory = n->attr != nullptr ? n->attr->numanode.local_memory : 0;
    raw.nodes.push_back(r);
  }

  const int pus = api.nbobjs_by_type(t, HWLOC_OBJ_PU);
  for (int i = 0; i < pus; ++i) {
    hwloc_obj_t pu = api.obj_by_type(t, HWLOC_OBJ_PU, static_cast<unsigned>(i));
    hwloc_obj_t node = nullptr;
    for (hwloc_obj_t o = pu->parent; o != nullptr && node == nullptr; o = o->parent) {
      for (hwloc_obj_t m = o->memory_first_child; m != nullptr; m = m->memory_first_child) {
        if (m->type == HWLOC_OBJ_NUMANODE) {
          node = m;
          break;
        }
      }
    }
    node_id id = 0;
    if (node != nullptr) {
      id = node->os_index;
    } else if (!raw.nodes.empty()) {
      // No ancestor has memory (e.g. the cpu's memory-less node was hidden): the first node of
      // the cpu's package, else the first node.
      id = raw.nodes.front().id;
      const unsigned pkg = package_of(pu);
      for (const raw_node& r : raw.nodes) {
        if (r.package == pkg) {
          id = r.id;
          break;
        }
      }
    }
    raw.cpus.emplace_back(pu->os_index, id);
  }

  if (api.distances_get_by_name == nullptr || api.distances_release == nullptr) return raw;
  unsigned count = 1;
  hwloc_distances_s* d = nullptr;
  if (api.distances_get_by_name(t, "NUMALatency", &count, &d, 0) != 0) d = nullptr;
  if (count >= 1 && d != nullptr) {
    struct release {
      const hwloc_api& api;
      hwloc_topology_t t;
      hwloc_distances_s* d;
      release(const hwloc_api& a, hwloc_topology_t tt, hwloc_distances_s* dd) noexcept
          : api(a), t(tt), d(dd) {}
      release(const release&) = delete;
      release& operator=(const release&) = delete;
      release(release&&) = delete;
      release& operator=(release&&) = delete;
      ~release() { api.distances_release(t, d); }
    } guard{api, t, d};
    for (unsigned i = 0; i < d->nbobjs; ++i) {
      for (unsigned j = 0; j < d->nbobjs; ++j) {
        if (d->objs[i]->type != HWLOC_OBJ_NUMANODE || d->objs[j]->type != HWLOC_OBJ_NUMANODE)
          continue;
        const hwloc_uint64_t v = d->values[static_cast<std::size_t>(i) * d->nbobjs + j];
        if (v > std::numeric_limits<unsigned>::max()) {
          std::string what = "NUMALatency from node ";
          what += std::to_string(d->objs[i]->os_index);
          what += " to node ";
          what += std::to_string(d->objs[j]->os_index);
          what += " is ";
          what += std::to_string(v);
          what += ", more than numamap's distances hold (";
          what += std::to_string(std::numeric_limits<unsigned>::max());
          what += ")";
          if (!input.empty()) {
            std::string msg = "numamap::topology: ";
            msg += input;
            msg += ": ";
            msg += what;
            throw std::invalid_argument(msg);
          }
          note = "distance matrix ignored: " + what;
          raw.distances.clear();
          return raw;
        }
        raw.distances.push_back(
            {d->objs[i]->os_index, d->objs[j]->os_index, static_cast<unsigned>(v)});
      }
    }
  } else if (d != nullptr) {
    api.distances_release(t, d);
  }
  return raw;
}

/// Loads a topology with hwloc (`api`: the process's library unless a test passes another).
/// For `system`, failures return false with the reason in `why`; for `synthetic` and `xml`
/// they throw std::runtime_error when hwloc cannot be used at all (the message names the
/// library file and dlerror()), and return false with `why` for a rejected input (the caller
/// names the input). On success `why` may hold a note (a distance matrix ignored).
inline bool hwloc_discover(hwloc_input kind, const std::string& arg, raw_topology& out,
                           std::string& why, const hwloc_api& api = hwloc_lib()) {
  if (!api.usable()) {
    why = api.error;
    if (kind == hwloc_input::system) return false;
    throw std::runtime_error(
        std::string(kind == hwloc_input::xml ? "numamap::topology::from_xml"
                                             : "numamap::topology::synthetic") +
        " needs hwloc 2 at run time: " + api.error +
        " (install hwloc, e.g. Debian's libhwloc15, or set " + hwloc_library_env + ")");
  }
  hwloc_topology_t raw_t = nullptr;
  if (api.topology_init(&raw_t) != 0) {
    why = "hwloc_topology_init failed";
    if (kind == hwloc_input::system) return false;
    throw std::runtime_error("numamap::topology: " + why);
  }
  hwloc_topology_ptr t(raw_t, hwloc_topology_deleter{api.topology_destroy});
  if (kind == hwloc_input::synthetic) {
    if (api.topology_set_synthetic(t.get(), arg.c_str()) != 0) {
      why = "rejected by hwloc_topology_set_synthetic";
      return false;
    }
  } else if (kind == hwloc_input::xml) {
    if (api.topology_set_xml(t.get(), arg.c_str()) != 0) {
      why = "hwloc_topology_set_xml refused it";
      return false;
    }
  }
  if (api.topology_load(t.get()) != 0) {
    why = kind == hwloc_input::xml ? "not a valid hwloc XML topology (hwloc_topology_load failed)"
                                   : "hwloc_topology_load failed";
    if (kind == hwloc_input::system) {
      // The likely cause: hwloc's own variables named a file or description it could not use.
      for (const char* var : {"HWLOC_XMLFILE", "HWLOC_SYNTHETIC"}) {
        const char* value = std::getenv(var);  // NOLINT(concurrency-mt-unsafe): read only
        if (value != nullptr && *value != '\0') {
          why += std::string(" (") + var + "=\"" + value + "\")";
        }
      }
    }
    return false;
  }
  std::string note;
  switch (kind) {
    case hwloc_input::synthetic:
      out = hwloc_copy(api, t.get(), "hwloc synthetic description \"" + arg + "\"", note);
      out.source = "synthetic";
      out.foreign = true;
      break;
    case hwloc_input::xml:
      out = hwloc_copy(api, t.get(), "XML topology \"" + arg + "\"", note);
      out.source = "xml";
      out.foreign = true;
      break;
    case hwloc_input::system: {
      out = hwloc_copy(api, t.get(), std::string(), note);
      // HWLOC_SYNTHETIC / HWLOC_XMLFILE replace the machine only when hwloc could use them: a
      // missing file (or a malformed one, with the libxml2 plugin) leaves the real machine
      // (Backend "Linux", thissystem 1), which is "hwloc", not "xml". An XML file keeps its
      // exporter's Backend ("Linux", "Synthetic"), so the variable set tells xml from
      // synthetic when the topology is not this system's.
      // numamap never writes the environment: getenv races only with a caller's setenv.
      const char* xml_env = std::getenv("HWLOC_XMLFILE");    // NOLINT(concurrency-mt-unsafe)
      const char* syn_env = std::getenv("HWLOC_SYNTHETIC");  // NOLINT(concurrency-mt-unsafe)
      const bool xml_set = xml_env != nullptr && *xml_env != '\0';
      const bool syn_set = syn_env != nullptr && *syn_env != '\0';
      const char* backend = hwloc_obj_get_info_by_name(api.root_obj(t.get()), "Backend");
      const std::string b = backend != nullptr ? backend : "";
      const bool foreign =
          api.topology_is_thissystem(t.get()) == 0 || b == "XML" || b == "Synthetic";
      if (!foreign) {
        out.source = "hwloc";
      } else if (b == "Synthetic" && (syn_set || !xml_set)) {
        out.source = "synthetic";
      } else {
        out.source = "xml";  // Backend XML, or a foreign topology with HWLOC_XMLFILE set
      }
      out.foreign = foreign;
      break;
    }
  }
  if (out.nodes.empty() || out.cpus.empty()) {
    why = "hwloc reported no NUMA node or no cpu";
    return false;
  }
  why = note;
  return true;
}

}  // namespace detail

NUMAMAP_END_NAMESPACE
