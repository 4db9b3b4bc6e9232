// tests/numa-vm/guest_main.cpp — the program numa-vm.sh runs inside a QEMU guest with real
// NUMA nodes. It is told the layout QEMU was given (node count, packages, cpus and memory of
// each node, distances) and checks numamap against it and against the guest kernel.
//
// A plain main with explicit checks, not Catch2: each check prints one line ("ok" or
// "FAIL"), the program ends with "N passed, M failed" and exits 1 when M > 0 or N == 0. An
// unexpected exception fails the section it escaped from. The harness also fails when the
// program dies (an OOM kill shows as status 137).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "guest_checks.hpp"

namespace {

// The same topology checks with hwloc switched off (NUMAMAP_DISABLE_HWLOC=1): the "sysfs"
// source on a real multi-node kernel. topology::system() is discovered once per process, so
// this runs the program again, as a child, with --source sysfs --topology-only 1.
void check_sysfs_child(int argc, char** argv) {
  std::vector<std::string> extra = {"--source", "sysfs", "--topology-only", "1"};
  std::vector<char*> args(argv, argv + argc);
  for (std::string& a : extra) args.push_back(a.data());
  args.push_back(nullptr);
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    setenv("NUMAMAP_DISABLE_HWLOC", "1", 1);
    execv("/proc/self/exe", args.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) throw std::runtime_error("waitpid failed");
  NUMA_VM_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the sysfs pass (NUMAMAP_DISABLE_HWLOC=1) passed: exit status ",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                WIFSIGNALED(status) ? numa_vm::cat(", killed by signal ", WTERMSIG(status)) : "");
}

}  // namespace

int main(int argc, char** argv) {
  numa_vm::layout want;
  try {
    want = numa_vm::parse_layout(argc, argv);
  } catch (const std::exception& e) {
    std::printf("FAIL bad arguments: %s\n0 passed, 1 failed\n", e.what());
    return 2;
  }
  std::printf(
      "numa-vm guest: scenario %s, %zu nodes, %u packages, tiny node %d, %zu entries, "
      "topology source %s%s\n",
      want.scenario.c_str(), want.nodes(), want.packages, want.tiny_node, want.entries,
      want.source.c_str(), want.topology_only ? " (topology only)" : "");
  std::fflush(stdout);

  if (!want.topology_only) {
    numa_vm::run_section("kernel layout (sysfs, raw mbind/move_pages)",
                         [&] { numa_vm::check_kernel_layout(want); });
  }
  const std::string tag = want.source == "hwloc" ? "" : " [" + want.source + "]";
  numa_vm::run_section("topology::system()" + tag, [&] { numa_vm::check_topology(want); });
  numa_vm::run_section("current_node()" + tag, [&] { numa_vm::check_current_node(want); });
  numa_vm::run_section("current_node() after migrations" + tag,
                       [&] { numa_vm::check_current_node_migration(want); });
  if (want.topology_only) return numa_vm::finish("sysfs pass: ");

  numa_vm::run_placement_sections(want);
  numa_vm::run_section("topology from sysfs, in a child process",
                       [&] { check_sysfs_child(argc, argv); });
  return numa_vm::finish();
}
