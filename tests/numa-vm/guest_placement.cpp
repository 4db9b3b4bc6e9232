// tests/numa-vm/guest_placement.cpp — placement through numamap (placeholder until
// numa_memory lands).
#include "guest_checks.hpp"

namespace numa_vm {
void run_placement_sections(const layout&) {}
}  // namespace numa_vm
