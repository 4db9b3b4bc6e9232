// tests/numa-vm/guest_main.cpp — the program numa-vm.sh runs inside a QEMU guest with real
// NUMA nodes. It is told the layout QEMU was given (node count, packages, cpus and memory of
// each node, distances) and checks numamap against it and against the guest kernel.
//
// A plain main with explicit checks, not Catch2: each check prints one line ("ok" or
// "FAIL"), the program ends with "N passed, M failed" and exits 1 when M > 0 or N == 0. An
// unexpected exception fails the section it escaped from. The harness also fails when the
// program dies (an OOM kill shows as status 137).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "guest_checks.hpp"

int main(int argc, char** argv) {
  numa_vm::layout want;
  try {
    want = numa_vm::parse_layout(argc, argv);
  } catch (const std::exception& e) {
    std::printf("FAIL bad arguments: %s\n0 passed, 1 failed\n", e.what());
    return 2;
  }
  std::printf("numa-vm guest: scenario %s, %zu nodes, %u packages, tiny node %d, %zu entries\n",
              want.scenario.c_str(), want.nodes(), want.packages, want.tiny_node, want.entries);
  std::fflush(stdout);

  numa_vm::run_section("kernel layout (sysfs, raw mbind/move_pages)",
                       [&] { numa_vm::check_kernel_layout(want); });
  numa_vm::run_section("topology::system()", [&] { numa_vm::check_topology(want); });
  numa_vm::run_section("current_node()", [&] { numa_vm::check_current_node(want); });
  numa_vm::run_section("current_node() after migrations",
                       [&] { numa_vm::check_current_node_migration(want); });
  numa_vm::run_placement_sections(want);

  return numa_vm::finish();
}
