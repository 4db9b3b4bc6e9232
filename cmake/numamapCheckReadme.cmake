# numamapCheckReadme.cmake — run with `cmake -P` by CTest (examples/CMakeLists.txt).
# The first ```cpp block of README.md must be examples/usage.cpp without its first comment
# line, so the README's example is code that CI compiles and runs.
# Inputs (-D): README, USAGE.
file(READ "${README}" _readme)
file(READ "${USAGE}" _usage)
string(FIND "${_readme}" "```cpp\n" _begin)
if(_begin EQUAL -1)
  message(FATAL_ERROR "README.md has no ```cpp block")
endif()
math(EXPR _begin "${_begin} + 7")
string(SUBSTRING "${_readme}" ${_begin} -1 _rest)
string(FIND "${_rest}" "```" _end)
string(SUBSTRING "${_rest}" 0 ${_end} _snippet)
string(REGEX REPLACE "^//[^\n]*\n" "" _usage "${_usage}")
string(STRIP "${_snippet}" _snippet)
string(STRIP "${_usage}" _usage)
if(NOT _snippet STREQUAL _usage)
  message(FATAL_ERROR "README.md's usage example differs from examples/usage.cpp; copy the "
                      "file (without its first comment line) into the README")
endif()
message(STATUS "README.md's example is examples/usage.cpp")
