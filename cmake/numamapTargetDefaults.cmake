# numamapTargetDefaults.cmake — warnings and sanitizers for numamap's OWN targets.
#
# numamap_target_defaults(<target> [NO_SANITIZE]) is called on every test, benchmark and
# example target of this project (tests/, bench/, examples/, tests/numa-vm/). It is never
# applied to the INTERFACE target numamap::numamap, so consumers get none of these flags.
# NO_SANITIZE keeps the warnings but not NUMAMAP_SANITIZE (the numa-vm guest binary).
#
#   NUMAMAP_WERROR    ON: warnings are errors (CI turns it on).
#   NUMAMAP_SANITIZE  "", "address,undefined" or "thread" (also "address", "undefined").

include_guard(GLOBAL)

function(numamap_target_defaults target)
  cmake_parse_arguments(PARSE_ARGV 1 _arg "NO_SANITIZE" "" "")
  if(_arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "numamap_target_defaults: unknown arguments ${_arg_UNPARSED_ARGUMENTS}")
  endif()

  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(NUMAMAP_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(NUMAMAP_WERROR)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  endif()

  if(NUMAMAP_SANITIZE AND NOT _arg_NO_SANITIZE)
    set(_flags -fsanitize=${NUMAMAP_SANITIZE} -fno-omit-frame-pointer -g)
    if(NUMAMAP_SANITIZE MATCHES "undefined")
      # Make UBSan findings fail the test instead of printing and going on.
      list(APPEND _flags -fno-sanitize-recover=undefined)
    endif()
    target_compile_options(${target} PRIVATE ${_flags})
    target_link_options(${target} PRIVATE ${_flags})
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # gcc 12's -Wmaybe-uninitialized gives false positives under the sanitizers' extra
      # instrumentation (seen: std::regex's std::function inside Catch2's main under
      # -fsanitize=address,undefined -O1). The plain builds keep the warning.
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
    endif()
  endif()
endfunction()

# The environment a test of this project runs with under the chosen sanitizer, as a list for
# the ENVIRONMENT test property. halt_on_error makes every report fail the test.
function(numamap_sanitizer_environment out_var)
  set(_env "")
  if(NUMAMAP_SANITIZE MATCHES "address")
    # LeakSanitizer backs the contract's "destroying the map frees everything".
    list(APPEND _env "ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:halt_on_error=1")
  endif()
  if(NUMAMAP_SANITIZE MATCHES "undefined")
    list(APPEND _env "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endif()
  if(NUMAMAP_SANITIZE MATCHES "thread")
    list(APPEND _env "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")
  endif()
  set(${out_var} "${_env}" PARENT_SCOPE)
endfunction()
