// numamap/memory.hpp — PLACEHOLDER (heap_memory only); the NUMA placement work adds
// numa_memory and makes it the default where libnuma is usable.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>

#include "fwd.hpp"

NUMAMAP_BEGIN_NAMESPACE

/// Node memory from operator new: no binding, the node argument is ignored.
class heap_memory {
 public:
  void* allocate(std::size_t bytes, std::size_t align, node_id /*node*/) {
    return ::operator new(bytes, std::align_val_t(align));
  }
  void deallocate(void* p, std::size_t bytes, std::size_t align, node_id /*node*/) noexcept {
    ::operator delete(p, bytes, std::align_val_t(align));
  }
  static constexpr const char* name() noexcept { return "heap_memory"; }
};

using default_memory = heap_memory;

NUMAMAP_END_NAMESPACE
