# CTest script (bench/CMakeLists.txt, numamap_compare_probe_cache_bytes): a token run with
# --probe-cache-bytes 4096 must finish its cell (run in a child process, which gets the
# option on its command line) and record the value in meta.json.
# Arguments: -DCOMPARE=<numamap_compare> -DOUT=<directory>.
file(REMOVE_RECURSE "${OUT}")
execute_process(
  COMMAND "${COMPARE}" --maps numamap --mixes read100 --sizes 1K --threads 1 --reps 1
          --seconds 0.02 --probe-cache-bytes 4096 --out "${OUT}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "numamap_compare failed (${rc}):\n${out}\n${err}")
endif()
file(READ "${OUT}/meta.json" meta)
if(NOT meta MATCHES "\"probe_cache_bytes\": 4096,")
  message(FATAL_ERROR "meta.json does not record probe_cache_bytes 4096:\n${meta}")
endif()
file(READ "${OUT}/results.csv" csv)
if(NOT csv MATCHES "\nnumamap,read100,1000,1,")
  message(FATAL_ERROR "no numamap row in results.csv:\n${csv}")
endif()
