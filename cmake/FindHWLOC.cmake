# FindHWLOC.cmake — find the hwloc library (https://www.open-mpi.org/projects/hwloc/).
#
# Shipped with numamap and installed next to numamapConfig.cmake, so a consumer's
# find_package(numamap) re-finds hwloc the same way the numamap build did.
#
# numamap needs only the headers: it opens libhwloc.so.15 at run time with dlopen
# (include/numamap/detail/hwloc.hpp), so the library is looked for but not required.
#
# pkg-config (hwloc.pc) is asked first when available; its directories are then used as hints
# for find_path/find_library, so the module also works without pkg-config.
#
# Result variables:
#   HWLOC_FOUND         TRUE when hwloc.h was found (and its version is new enough)
#   HWLOC_INCLUDE_DIRS  where hwloc.h lives
#   HWLOC_LIBRARIES     the library, when found (numamap does not link it)
#   HWLOC_VERSION       from pkg-config, else derived from HWLOC_API_VERSION in hwloc.h
# Imported targets (GLOBAL, so a parent project that adds numamap with add_subdirectory or
# FetchContent can resolve them through numamap::numamap):
#   HWLOC::headers      include directory only, nothing to link (what numamap::numamap uses)
#   HWLOC::hwloc        the headers and the library, when the library was found
# Cache variables HWLOC_INCLUDE_DIR and HWLOC_LIBRARY may be set to override the search.

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_HWLOC QUIET hwloc)
endif()

find_path(HWLOC_INCLUDE_DIR NAMES hwloc.h HINTS ${PC_HWLOC_INCLUDEDIR} ${PC_HWLOC_INCLUDE_DIRS})
find_library(HWLOC_LIBRARY NAMES hwloc HINTS ${PC_HWLOC_LIBDIR} ${PC_HWLOC_LIBRARY_DIRS})

if(PC_HWLOC_VERSION)
  set(HWLOC_VERSION "${PC_HWLOC_VERSION}")
elseif(HWLOC_INCLUDE_DIR AND EXISTS "${HWLOC_INCLUDE_DIR}/hwloc.h")
  # HWLOC_API_VERSION 0x00020800 -> 2.8.0 (the API version, close to the release version).
  file(STRINGS "${HWLOC_INCLUDE_DIR}/hwloc.h" _hwloc_api_line
       REGEX "^#define[ \t]+HWLOC_API_VERSION[ \t]+0x[0-9a-fA-F]+")
  if(_hwloc_api_line MATCHES "0x([0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F])([0-9a-fA-F][0-9a-fA-F])([0-9a-fA-F][0-9a-fA-F])")
    math(EXPR _hwloc_major "0x${CMAKE_MATCH_1}")
    math(EXPR _hwloc_minor "0x${CMAKE_MATCH_2}")
    math(EXPR _hwloc_patch "0x${CMAKE_MATCH_3}")
    set(HWLOC_VERSION "${_hwloc_major}.${_hwloc_minor}.${_hwloc_patch}")
  endif()
  unset(_hwloc_api_line)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(HWLOC
  REQUIRED_VARS HWLOC_INCLUDE_DIR
  VERSION_VAR HWLOC_VERSION)

if(HWLOC_FOUND)
  set(HWLOC_INCLUDE_DIRS "${HWLOC_INCLUDE_DIR}")
  set(HWLOC_LIBRARIES "")
  if(NOT TARGET HWLOC::headers)
    add_library(HWLOC::headers INTERFACE IMPORTED GLOBAL)
    set_target_properties(HWLOC::headers PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${HWLOC_INCLUDE_DIR}")
  endif()
endif()
if(HWLOC_FOUND AND HWLOC_LIBRARY)
  set(HWLOC_LIBRARIES "${HWLOC_LIBRARY}")
  if(NOT TARGET HWLOC::hwloc)
    add_library(HWLOC::hwloc UNKNOWN IMPORTED GLOBAL)
    set_target_properties(HWLOC::hwloc PROPERTIES
      IMPORTED_LOCATION "${HWLOC_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${HWLOC_INCLUDE_DIR}")
  endif()
endif()

mark_as_advanced(HWLOC_INCLUDE_DIR HWLOC_LIBRARY)
