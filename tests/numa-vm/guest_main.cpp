// tests/numa-vm/guest_main.cpp — the program numa-vm.sh runs inside a QEMU guest with real
// NUMA nodes. It is told the layout QEMU was given (node count, packages, cpus and memory of
// each node, distances) and checks numamap against it and against the guest kernel.
//
// A plain main with explicit checks, not Catch2: each check prints one line ("ok" or
// "FAIL"), the program ends with "N passed, M failed" and exits 1 when M > 0 or N == 0. An
// unexpected exception fails the section it escaped from. The harness also fails when the
// program dies (an OOM kill shows as status 137).
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "guest_checks.hpp"

namespace {

const char* const cgroup_root = "/sys/fs/cgroup";
const char* const cgroup_dir = "/sys/fs/cgroup/numa-vm";

void write_file(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
  f.flush();
  if (!f) throw std::runtime_error("cannot write '" + value + "' to " + path);
}

/// A cgroup v2 cpuset with the scenario's cpus and mems, for the cpuset passes.
void make_cpuset(const numa_vm::layout& want) {
  mkdir(cgroup_root, 0755);
  if (mount("none", cgroup_root, "cgroup2", 0, nullptr) != 0 && errno != EBUSY)
    throw std::runtime_error(numa_vm::cat("mount cgroup2 failed: errno ", errno));
  write_file(std::string(cgroup_root) + "/cgroup.subtree_control", "+cpuset");
  mkdir(cgroup_dir, 0755);
  write_file(std::string(cgroup_dir) + "/cpuset.cpus", numa_vm::list(want.cpuset_cpus));
  write_file(std::string(cgroup_dir) + "/cpuset.mems", numa_vm::list(want.cpuset_mems));
  std::printf("  cpuset %s: cpus %s, mems %s\n", cgroup_dir,
              numa_vm::read_file(std::string(cgroup_dir) + "/cpuset.cpus.effective").c_str(),
              numa_vm::read_file(std::string(cgroup_dir) + "/cpuset.mems.effective").c_str());
}

/// Runs this program again as a child for another pass (topology::system() is discovered
/// once per process): with `--pass NAME` appended, NUMAMAP_DISABLE_HWLOC=1 for the sysfs
/// source, and inside the cpuset for the cpuset passes. The child prints its own checks and
/// a "<pass> pass: N passed, M failed" line; here it counts as one check on its exit status.
void run_child_pass(int argc, char** argv, const numa_vm::layout& want, const std::string& pass) {
  std::vector<std::string> extra = {"--pass", pass};
  if (pass.rfind("cpuset", 0) == 0) {
    extra.emplace_back("--entries");
    extra.push_back(std::to_string(std::max<std::size_t>(want.entries / 10, 1000)));
  }
  std::vector<char*> args(argv, argv + argc);
  for (std::string& a : extra) args.push_back(a.data());
  args.push_back(nullptr);
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): the forked child runs one thread
    if (pass.find("sysfs") != std::string::npos) setenv("NUMAMAP_DISABLE_HWLOC", "1", 1);
    if (pass.rfind("cpuset", 0) == 0) {
      try {
        write_file(std::string(cgroup_dir) + "/cgroup.procs", std::to_string(getpid()));
      } catch (const std::exception& e) {
        std::printf("  FAIL joining the cpuset: %s\n", e.what());
        std::fflush(stdout);
        _exit(126);
      }
    }
    execv("/proc/self/exe", args.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) throw std::runtime_error("waitpid failed");
  NUMA_VM_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the ", pass,
                " pass passed: exit status ", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
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
  if (want.pass.find("sysfs") != std::string::npos) want.source = "sysfs";
  std::printf(
      "numa-vm guest: scenario %s, %zu nodes, %u packages, tiny node %d, %zu entries, "
      "pass %s (topology source %s)\n",
      want.scenario.c_str(), want.nodes(), want.packages, want.tiny_node, want.entries,
      want.pass.c_str(), want.source.c_str());
  std::fflush(stdout);

  const bool main_pass = want.pass == "main";
  if (main_pass) {
    numa_vm::run_section("kernel layout (sysfs, raw mbind/move_pages)",
                         [&] { numa_vm::check_kernel_layout(want); });
  }
  const std::string tag = main_pass ? "" : " [" + want.pass + "]";
  numa_vm::run_section("topology::system()" + tag, [&] { numa_vm::check_topology(want); });
  numa_vm::run_section("current_node()" + tag, [&] { numa_vm::check_current_node(want); });
  numa_vm::run_section("current_node() after migrations" + tag,
                       [&] { numa_vm::check_current_node_migration(want); });
  if (want.restricted()) numa_vm::run_cpuset_map_section(want);
  if (!main_pass) return numa_vm::finish((want.pass + " pass: ").c_str());

  numa_vm::run_placement_sections(want);
  numa_vm::run_section("topology from sysfs (NUMAMAP_DISABLE_HWLOC=1), in a child process",
                       [&] { run_child_pass(argc, argv, want, "sysfs"); });
  if (!want.cpuset_cpus.empty()) {
    numa_vm::run_section(
        numa_vm::cat("a process in a cgroup cpuset (cpus ", numa_vm::list(want.cpuset_cpus),
                     ", mems ", numa_vm::list(want.cpuset_mems), "), in child processes"),
        [&] {
          make_cpuset(want);
          run_child_pass(argc, argv, want, "cpuset-hwloc");
          run_child_pass(argc, argv, want, "cpuset-sysfs");
        });
  }
  return numa_vm::finish();
}
