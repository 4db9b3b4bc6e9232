// numamap/detail/hwloc.hpp — topology discovery with hwloc 2. The only file of numamap that
// includes <hwloc.h>; included only when NUMAMAP_HAVE_HWLOC.
//
// hwloc is used once, at construction of a topology: the hwloc topology is loaded, copied into
// a raw_topology (plain vectors) and destroyed. Nothing on a hot path calls hwloc.
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
// - Synthetic topologies have no distance matrix; XML may carry "NUMALatency".
// - HWLOC_SYNTHETIC / HWLOC_XMLFILE silently replace a default-loaded topology;
//   hwloc_topology_is_thissystem() and the root's "Backend" info tell.
#pragma once

#include <hwloc.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "topology_raw.hpp"

#if HWLOC_API_VERSION < 0x00020000
#error \
    "numamap needs hwloc 2.x (HWLOC_API_VERSION >= 0x00020000); build with NUMAMAP_WITH_HWLOC=OFF otherwise"
#endif

NUMAMAP_BEGIN_NAMESPACE
namespace detail {

enum class hwloc_input { system, synthetic, xml };

struct hwloc_topology_deleter {
  void operator()(hwloc_topology* t) const noexcept { hwloc_topology_destroy(t); }
};
using hwloc_topology_ptr = std::unique_ptr<hwloc_topology, hwloc_topology_deleter>;

/// Copies a loaded hwloc topology into plain data.
inline raw_topology hwloc_copy(hwloc_topology_t t) {
  raw_topology raw;
  const int packages = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
  raw.package_count = packages > 0 ? static_cast<std::size_t>(packages) : 1;

  auto package_of = [&](hwloc_obj_t o) -> unsigned {
    if (packages <= 0) return 0;  // no package objects: the machine is one package
    hwloc_obj_t p = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, o);
    return p != nullptr ? p->logical_index : no_package;
  };

  const int nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < nodes; ++i) {
    hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    raw_node r;
    r.id = n->os_index;
    r.package = package_of(n);
    r.memory = n->attr != nullptr ? n->attr->numanode.local_memory : 0;
    raw.nodes.push_back(r);
  }

  const int pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
  for (int i = 0; i < pus; ++i) {
    hwloc_obj_t pu = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, static_cast<unsigned>(i));
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

  unsigned count = 1;
  hwloc_distances_s* d = nullptr;
  if (hwloc_distances_get_by_name(t, "NUMALatency", &count, &d, 0) == 0 && count >= 1 &&
      d != nullptr) {
    for (unsigned i = 0; i < d->nbobjs; ++i) {
      for (unsigned j = 0; j < d->nbobjs; ++j) {
        if (d->objs[i]->type != HWLOC_OBJ_NUMANODE || d->objs[j]->type != HWLOC_OBJ_NUMANODE)
          continue;
        raw.distances.push_back({d->objs[i]->os_index, d->objs[j]->os_index,
                                 static_cast<unsigned>(d->values[i * d->nbobjs + j])});
      }
    }
  }
  if (d != nullptr) hwloc_distances_release(t, d);
  return raw;
}

/// Loads a topology with hwloc. For `system`, failures return false with the reason in `why`;
/// for `synthetic` and `xml` they throw (the caller named the input).
inline bool hwloc_discover(hwloc_input kind, const std::string& arg, raw_topology& out,
                           std::string& why) {
  if ((hwloc_get_api_version() >> 16) != (HWLOC_API_VERSION >> 16)) {
    why = "hwloc library major version differs from the headers numamap was built with";
    if (kind == hwloc_input::system) return false;
    throw std::runtime_error("numamap::topology: " + why);
  }
  hwloc_topology_t raw_t = nullptr;
  if (hwloc_topology_init(&raw_t) != 0) {
    why = "hwloc_topology_init failed";
    if (kind == hwloc_input::system) return false;
    throw std::runtime_error("numamap::topology: " + why);
  }
  hwloc_topology_ptr t(raw_t);
  if (kind == hwloc_input::synthetic) {
    if (hwloc_topology_set_synthetic(t.get(), arg.c_str()) != 0) {
      why = "rejected by hwloc_topology_set_synthetic";
      return false;
    }
  } else if (kind == hwloc_input::xml) {
    if (hwloc_topology_set_xml(t.get(), arg.c_str()) != 0) {
      why = "hwloc_topology_set_xml refused it";
      return false;
    }
  }
  if (hwloc_topology_load(t.get()) != 0) {
    why = kind == hwloc_input::xml ? "not a valid hwloc XML topology (hwloc_topology_load failed)"
                                   : "hwloc_topology_load failed";
    return false;
  }
  out = hwloc_copy(t.get());
  switch (kind) {
    case hwloc_input::synthetic:
      out.source = "synthetic";
      out.foreign = true;
      break;
    case hwloc_input::xml:
      out.source = "xml";
      out.foreign = true;
      break;
    case hwloc_input::system: {
      // numamap never writes the environment: getenv races only with a caller's setenv.
      const char* xml_env = std::getenv("HWLOC_XMLFILE");    // NOLINT(concurrency-mt-unsafe)
      const char* syn_env = std::getenv("HWLOC_SYNTHETIC");  // NOLINT(concurrency-mt-unsafe)
      const char* backend = hwloc_obj_get_info_by_name(hwloc_get_root_obj(t.get()), "Backend");
      const bool synthetic_backend = backend != nullptr && std::string(backend) == "Synthetic";
      if (syn_env != nullptr && *syn_env != '\0' && synthetic_backend) {
        out.source = "synthetic";
        out.foreign = true;
      } else if (xml_env != nullptr && *xml_env != '\0') {
        out.source = "xml";
        out.foreign = true;
      } else if (hwloc_topology_is_thissystem(t.get()) == 0) {
        out.source = synthetic_backend ? "synthetic" : "xml";
        out.foreign = true;
      } else {
        out.source = "hwloc";
      }
      break;
    }
  }
  if (out.nodes.empty() || out.cpus.empty()) {
    why = "hwloc reported no NUMA node or no cpu";
    return false;
  }
  return true;
}

}  // namespace detail
NUMAMAP_END_NAMESPACE
