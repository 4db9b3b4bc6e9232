# CTest script (bench/CMakeLists.txt, numamap_compare_events): the per-run event columns.
# A token churn run at 1K keys must show numamap rebuilding its read tables (a churned
# table fills with deleted entries within a few hundred operations; promotions count the
# rebuilds too), and a peer, which has no such counts, -1 in each column.
# Arguments: -DCOMPARE=<numamap_compare> -DOUT=<directory>.
file(REMOVE_RECURSE "${OUT}")
execute_process(
  COMMAND "${COMPARE}" --maps numamap,std_shared_mutex --mixes churn --sizes 1K --threads 1
          --reps 1 --seconds 0.05 --out "${OUT}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "numamap_compare failed (${rc}):\n${out}\n${err}")
endif()
file(STRINGS "${OUT}/results.csv" lines)
list(GET lines 0 header)
string(REPLACE "," ";" header "${header}")
foreach(column rebuilds_per_mop promotions_per_mop misses_per_mop)
  list(FIND header ${column} at_${column})
  if(at_${column} LESS 0)
    message(FATAL_ERROR "results.csv has no column ${column}")
  endif()
endforeach()
set(seen_numamap FALSE)
set(seen_peer FALSE)
foreach(line IN LISTS lines)
  string(REPLACE "," ";" row "${line}")
  list(GET row 0 map)
  list(GET row ${at_rebuilds_per_mop} rebuilds)
  list(GET row ${at_promotions_per_mop} promotions)
  list(GET row ${at_misses_per_mop} misses)
  if(map STREQUAL "numamap")
    set(seen_numamap TRUE)
    if(NOT rebuilds GREATER 0 OR promotions LESS rebuilds OR misses LESS 0)
      message(FATAL_ERROR "numamap churn: rebuilds ${rebuilds}, promotions ${promotions}, "
                          "misses ${misses} per Mop; expected rebuilds > 0, promotions >= "
                          "rebuilds, misses >= 0:\n${line}")
    endif()
  elseif(map STREQUAL "std_shared_mutex")
    set(seen_peer TRUE)
    if(NOT rebuilds STREQUAL "-1.00" OR NOT promotions STREQUAL "-1.00"
       OR NOT misses STREQUAL "-1.00")
      message(FATAL_ERROR "a peer's event columns must read -1.00:\n${line}")
    endif()
  endif()
endforeach()
if(NOT seen_numamap OR NOT seen_peer)
  message(FATAL_ERROR "missing rows in results.csv:\n${lines}")
endif()
