# numamapConsumerTest.cmake — run with `cmake -P` by CTest (tests/CMakeLists.txt).
#
# Configures, builds and runs tests/consumer against numamap in one of three ways:
#   MODE=fetchcontent   FetchContent_Declare(numamap SOURCE_DIR <source tree>) + MakeAvailable
#   MODE=subdirectory   add_subdirectory(<source tree>)
#   MODE=find_package   `cmake --install` of this build tree into WORK_DIR/prefix, then
#                       find_package(numamap CONFIG REQUIRED) with CMAKE_PREFIX_PATH=that prefix
# Inputs (-D): MODE NUMAMAP_SOURCE_DIR NUMAMAP_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR
#              CXX_COMPILER CXX_STANDARD BUILD_TYPE WITH_HWLOC WITH_LIBNUMA EXPECT_HWLOC
#              EXPECT_LIBNUMA
# The consumer's main.cpp static_asserts NUMAMAP_HAVE_* against EXPECT_*, so the definitions
# must have travelled through the target (and, for find_package, through the install).

cmake_minimum_required(VERSION 3.14)

foreach(_var MODE NUMAMAP_SOURCE_DIR NUMAMAP_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "numamapConsumerTest: ${_var} is not set")
  endif()
endforeach()

function(run_step what)
  message(STATUS "consumer ${MODE}: ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "consumer ${MODE}: ${what} failed (${_rc})")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(_args
  "-DNUMAMAP_CONSUMER_MODE=${MODE}"
  "-DNUMAMAP_SOURCE_DIR=${NUMAMAP_SOURCE_DIR}"
  "-DEXPECT_HWLOC=${EXPECT_HWLOC}"
  "-DEXPECT_LIBNUMA=${EXPECT_LIBNUMA}")
if(GENERATOR)
  list(APPEND _args -G "${GENERATOR}")
endif()
if(CXX_COMPILER)
  list(APPEND _args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
if(CXX_STANDARD)
  list(APPEND _args "-DCMAKE_CXX_STANDARD=${CXX_STANDARD}")
endif()
if(BUILD_TYPE)
  list(APPEND _args "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()

if(MODE STREQUAL "find_package")
  set(_prefix "${WORK_DIR}/prefix")
  run_step("install numamap" "${CMAKE_COMMAND}" --install "${NUMAMAP_BINARY_DIR}"
           --prefix "${_prefix}")
  list(APPEND _args "-DCMAKE_PREFIX_PATH=${_prefix}")
  # Only the installed package may be found: no package registry, no source tree.
  list(APPEND _args "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF")
elseif(MODE STREQUAL "fetchcontent" OR MODE STREQUAL "subdirectory")
  # Same dependency choices as the numamap build this test belongs to.
  list(APPEND _args "-DNUMAMAP_WITH_HWLOC=${WITH_HWLOC}" "-DNUMAMAP_WITH_LIBNUMA=${WITH_LIBNUMA}")
  if(MODE STREQUAL "fetchcontent")
    # No network: FetchContent takes the local tree (FETCHCONTENT_FULLY_DISCONNECTED makes
    # any attempt to download fail loudly instead).
    list(APPEND _args "-DFETCHCONTENT_FULLY_DISCONNECTED=ON")
  endif()
else()
  message(FATAL_ERROR "numamapConsumerTest: unknown MODE '${MODE}'")
endif()

run_step("configure" "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build"
         ${_args})
run_step("build" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build")

set(_exe "${WORK_DIR}/build/numamap_consumer")
execute_process(COMMAND "${_exe}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out
                ERROR_VARIABLE _err)
message(STATUS "consumer ${MODE}: ran ${_exe}: exit ${_rc}\n${_out}${_err}")
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "consumer ${MODE}: the program failed (${_rc})")
endif()
if(NOT _out MATCHES "OK")
  message(FATAL_ERROR "consumer ${MODE}: the program did not print OK")
endif()
