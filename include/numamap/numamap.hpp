// numamap/numamap.hpp — the umbrella header: everything a user needs.
#pragma once

#include "concurrent_map.hpp"  // IWYU pragma: export
#include "config.hpp"          // IWYU pragma: export
#include "fwd.hpp"             // IWYU pragma: export
#include "memory.hpp"          // IWYU pragma: export
#include "stats.hpp"           // IWYU pragma: export
#include "topology.hpp"        // IWYU pragma: export
#include "version.hpp"         // IWYU pragma: export
