# numamapCheckNoLink.cmake — run with `cmake -P` by CTest (tests/CMakeLists.txt).
#
# numamap opens libhwloc.so.15 and libnuma.so.1 with dlopen at run time instead of linking them
# (detail/hwloc.hpp, detail/libnuma.hpp), so that a program built with them still starts where
# they are not installed. This checks a built executable: no NEEDED entry for libhwloc or
# libnuma (readelf -d), and no undefined hwloc_* / numa_* symbol (nm -D --undefined-only).
# Inputs (-D): BINARY, READELF, NM.

cmake_minimum_required(VERSION 3.14)

foreach(_var BINARY READELF NM)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "numamapCheckNoLink: ${_var} is not set")
  endif()
endforeach()

execute_process(COMMAND "${READELF}" -d "${BINARY}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _dynamic
                ERROR_VARIABLE _err)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "numamapCheckNoLink: ${READELF} -d ${BINARY} failed (${_rc}): ${_err}")
endif()
string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*" _needed "${_dynamic}")
set(_bad "")
foreach(_line IN LISTS _needed)
  if(_line MATCHES "lib(hwloc|numa)\\.so")
    string(APPEND _bad "\n  ${_line}")
  endif()
endforeach()

execute_process(COMMAND "${NM}" -D --undefined-only "${BINARY}" RESULT_VARIABLE _rc
                OUTPUT_VARIABLE _undefined ERROR_VARIABLE _err)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "numamapCheckNoLink: ${NM} -D --undefined-only ${BINARY} failed (${_rc}): "
                      "${_err}")
endif()
string(REGEX MATCHALL "[^\n]*[ \t](hwloc_|numa_)[A-Za-z0-9_@.]*" _symbols "${_undefined}")
foreach(_line IN LISTS _symbols)
  string(STRIP "${_line}" _line)
  string(APPEND _bad "\n  undefined: ${_line}")
endforeach()

if(_bad)
  message(FATAL_ERROR "numamapCheckNoLink: ${BINARY} links hwloc or libnuma directly:${_bad}")
endif()
list(LENGTH _needed _count)
message(STATUS "numamapCheckNoLink: ${BINARY}: ${_count} NEEDED entries, none for libhwloc or "
               "libnuma; no undefined hwloc_*/numa_* symbol")
