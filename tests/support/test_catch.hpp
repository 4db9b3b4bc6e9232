// tests/support/test_catch.hpp — the one Catch2 include of numamap's tests.
//
// Debian 12 ships Catch2 2.13 (single header <catch2/catch.hpp>); that is the offline path
// and the default. Online users who build against Catch2 v3 (fetched by CMake) get
// NUMAMAP_CATCH2_V3 defined by tests/CMakeLists.txt, and the same test sources compile
// against <catch2/catch_all.hpp>. Only macros common to both versions are used in tests.
#pragma once

#if defined(NUMAMAP_CATCH2_V3)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
