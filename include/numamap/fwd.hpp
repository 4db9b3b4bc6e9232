// numamap/fwd.hpp — forward declarations of the public names.
#pragma once

#include <functional>

#include "config.hpp"

NUMAMAP_BEGIN_NAMESPACE

/// The OS NUMA node number, as `numactl --hardware` and hwloc's os_index show it.
using node_id = unsigned;

struct node_info;
class topology;
class heap_memory;
struct map_stats;

template <class Key, class Value, class Hash, class KeyEqual, class Memory>
class concurrent_map;

NUMAMAP_END_NAMESPACE
