// tests/support/catch_main.cpp — the Catch2 main of numamap_tests and numamap_hitpath_tests.
//
// With Catch2 v3 the main comes from the Catch2::Catch2WithMain library instead, and this file
// is compiled to nothing.
#if !defined(NUMAMAP_CATCH2_V3)
#define CATCH_CONFIG_MAIN
#include "test_catch.hpp"
#endif
