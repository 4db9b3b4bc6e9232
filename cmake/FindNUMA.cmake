# FindNUMA.cmake — find libnuma (numa.h, numaif.h, -lnuma; Debian package libnuma-dev).
#
# Shipped with numamap and installed next to numamapConfig.cmake, so a consumer's
# find_package(numamap) re-finds libnuma the same way the numamap build did.
#
# numamap needs only the headers: it opens libnuma.so.1 at run time with dlopen
# (include/numamap/detail/libnuma.hpp), so the library is looked for but not required.
#
# pkg-config (numa.pc, shipped by libnuma >= 2.0.12) is asked first when available; its
# directories are then used as hints for find_path/find_library.
#
# Result variables:
#   NUMA_FOUND          TRUE when numa.h and numaif.h were found
#   NUMA_INCLUDE_DIRS   where numa.h lives
#   NUMA_LIBRARIES      the library, when found (numamap does not link it)
#   NUMA_VERSION        from pkg-config when known
# Imported targets (GLOBAL, see FindHWLOC.cmake for why):
#   NUMA::headers       include directory only, nothing to link (what numamap::numamap uses)
#   NUMA::numa          the headers and the library, when the library was found
# Cache variables NUMA_INCLUDE_DIR and NUMA_LIBRARY may be set to override the search.

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_NUMA QUIET numa)
endif()

find_path(NUMA_INCLUDE_DIR NAMES numa.h numaif.h HINTS ${PC_NUMA_INCLUDEDIR} ${PC_NUMA_INCLUDE_DIRS})
find_library(NUMA_LIBRARY NAMES numa HINTS ${PC_NUMA_LIBDIR} ${PC_NUMA_LIBRARY_DIRS})

if(PC_NUMA_VERSION)
  set(NUMA_VERSION "${PC_NUMA_VERSION}")
endif()

include(FindPackageHandleStandardArgs)
if(NUMA_VERSION)
  find_package_handle_standard_args(NUMA
    REQUIRED_VARS NUMA_INCLUDE_DIR
    VERSION_VAR NUMA_VERSION)
else()
  find_package_handle_standard_args(NUMA
    REQUIRED_VARS NUMA_INCLUDE_DIR)
endif()

if(NUMA_FOUND)
  set(NUMA_INCLUDE_DIRS "${NUMA_INCLUDE_DIR}")
  set(NUMA_LIBRARIES "")
  if(NOT TARGET NUMA::headers)
    add_library(NUMA::headers INTERFACE IMPORTED GLOBAL)
    set_target_properties(NUMA::headers PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${NUMA_INCLUDE_DIR}")
  endif()
endif()
if(NUMA_FOUND AND NUMA_LIBRARY)
  set(NUMA_LIBRARIES "${NUMA_LIBRARY}")
  if(NOT TARGET NUMA::numa)
    add_library(NUMA::numa UNKNOWN IMPORTED GLOBAL)
    set_target_properties(NUMA::numa PROPERTIES
      IMPORTED_LOCATION "${NUMA_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${NUMA_INCLUDE_DIR}")
  endif()
endif()

mark_as_advanced(NUMA_INCLUDE_DIR NUMA_LIBRARY)
