// numamap/version.hpp — the library version, kept in step with CMakeLists.txt.
#pragma once

#define NUMAMAP_VERSION_MAJOR 0
#define NUMAMAP_VERSION_MINOR 1
#define NUMAMAP_VERSION_PATCH 0
#define NUMAMAP_VERSION_STRING "0.1.0"
