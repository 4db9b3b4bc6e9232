// tests/numa-vm/guest_checks.hpp — the checks framework, the expected layout and raw kernel
// helpers (mbind/move_pages/getcpu by syscall) of the in-guest program.
#pragma once

#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace numa_vm {

// ------------------------------------------------------------------------------------------
// Checks: every check prints a line; failures are counted and make the exit status 1.

struct tally {
  int passed = 0;
  int failed = 0;
  std::string section;
};

inline tally& counts() {
  static tally t;
  return t;
}

inline void report(bool ok, const char* expr, const char* file, int line, const std::string& what) {
  tally& t = counts();
  if (ok) {
    ++t.passed;
    // A passing check prints what it checked; a failing one also the expression and place.
    std::printf("  ok   %s\n", what.empty() ? expr : what.c_str());
  } else {
    ++t.failed;
    std::printf("  FAIL %s:%d: [%s] %s%s%s\n", file, line, t.section.c_str(), expr,
                what.empty() ? "" : "  -- ", what.c_str());
  }
  std::fflush(stdout);
}

/// "0,1,2" for printing.
template <class T>
std::string list(const std::vector<T>& v) {
  std::ostringstream os;
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (void)std::initializer_list<int>{((os << args), 0)...};
  return os.str();
}

/// CHECK(condition, what...): prints the condition and `what` (streamed), counts the result.
#define NUMA_VM_CHECK(cond, ...) \
  ::numa_vm::report(static_cast<bool>(cond), #cond, __FILE__, __LINE__, ::numa_vm::cat(__VA_ARGS__))
/// A check of a == b that prints both values.
/// (Both take at least one `what` argument: C++17 wants one for "...".)
#define NUMA_VM_CHECK_EQ(a, b, ...)                                                              \
  do {                                                                                           \
    const auto& numa_vm_a_ = (a);                                                                \
    const auto& numa_vm_b_ = (b);                                                                \
    ::numa_vm::report(numa_vm_a_ == numa_vm_b_, #a " == " #b, __FILE__, __LINE__,                \
                      ::numa_vm::cat(__VA_ARGS__, ": got ", numa_vm_a_, ", want ", numa_vm_b_)); \
  } while (0)

inline void run_section(const std::string& name, const std::function<void()>& body) {
  counts().section = name;
  std::printf("== %s\n", name.c_str());
  std::fflush(stdout);
  try {
    body();
  } catch (const std::exception& e) {
    report(false, "no exception escapes the section", __FILE__, __LINE__,
           cat("escaped: ", e.what()));
  } catch (...) {
    report(false, "no exception escapes the section", __FILE__, __LINE__, "escaped: unknown");
  }
}

inline int finish(const char* prefix = "") {
  const tally& t = counts();
  std::printf("%s%d passed, %d failed\n", prefix, t.passed, t.failed);
  std::fflush(stdout);
  return (t.failed == 0 && t.passed > 0) ? 0 : 1;
}

// ------------------------------------------------------------------------------------------
// The layout QEMU was given, from the command line (numa-vm.sh scenario_guest_args).

/// A package index for "no package" (numamap::no_package has the same value).
constexpr unsigned none = ~0U;

/// A node as numamap must report it (see layout::numamap_nodes()).
struct view_node {
  unsigned id = 0;
  std::vector<unsigned> cpus;
  unsigned package = none;
  std::uint64_t mem_mib = 0;
};

struct layout {
  std::string scenario;
  unsigned packages = 0;
  std::vector<std::vector<unsigned>> node_cpus;  // per node, OS cpu numbers (may be empty)
  std::vector<unsigned> node_package;            // per node, package logical index or none
  std::vector<std::uint64_t> node_mem_mib;       // per node, configured size (0: memory-less)
  std::vector<unsigned> distances;               // row-major nodes x nodes
  int tiny_node = -1;
  std::size_t entries = 1000000;
  std::string source = "hwloc";  // what topology::source() must say
  /// "main" (everything), "sysfs" (topology and current_node with NUMAMAP_DISABLE_HWLOC=1),
  /// "cpuset-hwloc" / "cpuset-sysfs" (inside a cgroup cpuset: topology, current_node, a map).
  std::string pass = "main";
  std::vector<unsigned> cpuset_cpus;  // the cpuset the cpuset passes run in (empty: none)
  std::vector<unsigned> cpuset_mems;

  bool restricted() const { return pass.rfind("cpuset", 0) == 0; }
  bool cpu_allowed(unsigned c) const {
    return !restricted() ||
           std::find(cpuset_cpus.begin(), cpuset_cpus.end(), c) != cpuset_cpus.end();
  }
  bool node_allowed(std::size_t n) const {
    return !restricted() ||
           std::find(cpuset_mems.begin(), cpuset_mems.end(), n) != cpuset_mems.end();
  }
  /// The cpus of kernel node n this process may run on.
  std::vector<unsigned> allowed_cpus(std::size_t n) const {
    std::vector<unsigned> out;
    for (unsigned c : node_cpus[n])
      if (cpu_allowed(c)) out.push_back(c);
    return out;
  }
  std::size_t allowed_cpu_count() const {
    std::size_t k = 0;
    for (std::size_t n = 0; n < nodes(); ++n) k += allowed_cpus(n).size();
    return k;
  }
  /// Packages numamap must count: those with a cpu the process may use.
  std::size_t expected_packages() const {
    if (!restricted()) return packages;
    std::vector<unsigned> p;
    for (std::size_t n = 0; n < nodes(); ++n)
      if (!allowed_cpus(n).empty() && std::find(p.begin(), p.end(), node_package[n]) == p.end())
        p.push_back(node_package[n]);
    return p.size();
  }

  /// The kernel's nodes: 0 .. nodes() - 1, with or without memory and cpus.
  std::size_t nodes() const { return node_cpus.size(); }
  unsigned distance(std::size_t a, std::size_t b) const { return distances.at(a * nodes() + b); }

  /// numamap's contract (topology.hpp): only nodes with memory that the process may use
  /// count, with the cpus it may use; each cpu belongs to its nearest node with memory (the
  /// kernel's cpu_to_node / numa_mem_id): a memory-less node's cpus go to the node with memory
  /// at the smallest distance (scenarios avoid ties). A node without cpus is in no package.
  std::vector<view_node> numamap_nodes() const {
    std::vector<view_node> out;
    for (std::size_t n = 0; n < nodes(); ++n) {
      if (node_mem_mib[n] == 0 || !node_allowed(n)) continue;
      view_node v;
      v.id = static_cast<unsigned>(n);
      v.cpus = allowed_cpus(n);
      v.package = node_cpus[n].empty() ? none : node_package[n];
      v.mem_mib = node_mem_mib[n];
      out.push_back(v);
    }
    for (std::size_t n = 0; n < nodes(); ++n) {
      if (node_mem_mib[n] != 0 || allowed_cpus(n).empty() || out.empty()) continue;
      view_node* best = &out.front();
      for (view_node& v : out)
        if (distance(n, v.id) < distance(n, best->id)) best = &v;
      const std::vector<unsigned> c = allowed_cpus(n);
      best->cpus.insert(best->cpus.end(), c.begin(), c.end());
      if (best->package == none) best->package = node_package[n];
    }
    for (view_node& v : out) std::sort(v.cpus.begin(), v.cpus.end());
    return out;
  }
  /// The numamap node of an OS cpu.
  unsigned numamap_node_of_cpu(unsigned cpu) const {
    for (const view_node& v : numamap_nodes())
      if (std::find(v.cpus.begin(), v.cpus.end(), cpu) != v.cpus.end()) return v.id;
    throw std::out_of_range(cat("cpu ", cpu, " is in no node of the layout"));
  }
  std::vector<unsigned> memory_node_ids() const {
    std::vector<unsigned> ids;
    for (const view_node& v : numamap_nodes()) ids.push_back(v.id);
    return ids;
  }
};

/// Splits at sep, keeping empty fields (also a trailing one: "0/1/" is three fields).
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string::size_type start = 0;
  for (;;) {
    const auto at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return out;
}

/// "0-2,5" -> {0,1,2,5}
inline std::vector<unsigned> parse_cpu_list(const std::string& s) {
  std::vector<unsigned> out;
  for (const std::string& part : split(s, ',')) {
    if (part.empty()) continue;
    auto dash = part.find('-');
    unsigned lo = static_cast<unsigned>(std::stoul(part.substr(0, dash)));
    unsigned hi =
        dash == std::string::npos ? lo : static_cast<unsigned>(std::stoul(part.substr(dash + 1)));
    for (unsigned c = lo; c <= hi; ++c) out.push_back(c);
  }
  return out;
}

inline layout parse_layout(int argc, char** argv) {
  std::map<std::string, std::string> kv;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) throw std::invalid_argument("expected --key value, got " + k);
    kv[k.substr(2)] = argv[i + 1];
  }
  auto need = [&](const char* k) -> const std::string& {
    auto it = kv.find(k);
    if (it == kv.end()) throw std::invalid_argument(std::string("missing --") + k);
    return it->second;
  };
  layout l;
  l.scenario = need("scenario");
  const std::size_t n = std::stoul(need("nodes"));
  l.packages = static_cast<unsigned>(std::stoul(need("packages")));
  for (const std::string& c : split(need("node-cpus"), '/'))
    l.node_cpus.push_back(parse_cpu_list(c));
  for (const std::string& p : split(need("node-packages"), ','))
    l.node_package.push_back(p == "-" ? none : static_cast<unsigned>(std::stoul(p)));
  for (const std::string& m : split(need("node-mem-mib"), ','))
    l.node_mem_mib.push_back(std::stoull(m));
  for (const std::string& d : split(need("distances"), ','))
    l.distances.push_back(static_cast<unsigned>(std::stoul(d)));
  l.tiny_node = std::stoi(need("tiny-node"));
  l.entries = std::stoul(need("entries"));
  if (kv.count("source")) l.source = kv["source"];
  if (kv.count("pass")) l.pass = kv["pass"];
  if (kv.count("cpuset-cpus")) l.cpuset_cpus = parse_cpu_list(kv["cpuset-cpus"]);
  if (kv.count("cpuset-mems")) l.cpuset_mems = parse_cpu_list(kv["cpuset-mems"]);
  if (l.node_cpus.size() != n || l.node_package.size() != n || l.node_mem_mib.size() != n ||
      l.distances.size() != n * n)
    throw std::invalid_argument(
        "--node-cpus/--node-packages/--node-mem-mib/--distances do not match --nodes");
  return l;
}

// ------------------------------------------------------------------------------------------
// Raw kernel helpers (syscalls; no numaif.h, as the library's own headers avoid it too).

constexpr int mpol_preferred = 1;   // MPOL_PREFERRED
constexpr int mpol_bind = 2;        // MPOL_BIND
constexpr int mpol_interleave = 3;  // MPOL_INTERLEAVE

inline std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

/// mbind(addr, len, mode, {node}) with the mask and maxnode spelled as the kernel reads them.
inline long raw_mbind(void* addr, std::size_t len, int mode, const std::vector<unsigned>& nodes) {
  unsigned long mask[4] = {0, 0, 0, 0};
  for (unsigned n : nodes)
    mask[n / (8 * sizeof(unsigned long))] |= 1UL << (n % (8 * sizeof(unsigned long)));
  // The kernel reads maxnode - 1 bits: pass one more than the bits in the mask.
  return syscall(SYS_mbind, addr, len, mode, mask, sizeof(mask) * 8 + 1, 0);
}

/// The policy of the mapping at addr (get_mempolicy with MPOL_F_ADDR): the mode without its
/// flags (MPOL_F_STATIC_NODES ...) and the nodes of its mask; mode -1 when the call failed.
inline std::pair<int, std::vector<unsigned>> raw_policy_at(const void* addr) {
  int mode = -1;
  unsigned long mask[4] = {0, 0, 0, 0};
  constexpr unsigned long mpol_f_addr = 2;
  if (syscall(SYS_get_mempolicy, &mode, mask, sizeof(mask) * 8 + 1, addr, mpol_f_addr) != 0)
    return {-1, {}};
  std::vector<unsigned> nodes;
  for (unsigned n = 0; n < sizeof(mask) * 8; ++n)
    if (mask[n / (8 * sizeof(unsigned long))] & (1UL << (n % (8 * sizeof(unsigned long)))))
      nodes.push_back(n);
  return {mode & 0xff, nodes};
}

/// The node of each page in [addr, addr + len) as move_pages(nodes = NULL) reports it
/// (negative: -ENOENT for a page not present, -EFAULT, ...).
inline std::vector<int> raw_page_nodes(const void* addr, std::size_t len) {
  const std::size_t ps = page_size();
  const auto begin = reinterpret_cast<std::uintptr_t>(addr) / ps * ps;
  const auto end = (reinterpret_cast<std::uintptr_t>(addr) + len + ps - 1) / ps * ps;
  std::vector<void*> pages;
  for (std::uintptr_t p = begin; p < end; p += ps) pages.push_back(reinterpret_cast<void*>(p));
  std::vector<int> status(pages.size(), -1);
  if (!pages.empty() &&
      syscall(SYS_move_pages, 0, pages.size(), pages.data(), nullptr, status.data(), 0) != 0)
    throw std::runtime_error(cat("move_pages failed: errno ", errno));
  return status;
}

/// Count of pages per node (index -1 ... collected under key -1 for "not present/error").
inline std::map<int, std::size_t> histogram(const std::vector<int>& status) {
  std::map<int, std::size_t> h;
  for (int s : status) ++h[s < 0 ? -1 : s];
  return h;
}

inline std::string to_string(const std::map<int, std::size_t>& h) {
  std::ostringstream os;
  for (const auto& [node, count] : h)
    os << (node < 0 ? std::string("absent") : "node" + std::to_string(node)) << "=" << count << " ";
  return os.str();
}

inline void pin_to_cpu(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0)
    throw std::runtime_error(cat("sched_setaffinity(cpu ", cpu, ") failed: errno ", errno));
  sched_yield();
}

inline std::pair<unsigned, unsigned> raw_getcpu() {
  unsigned cpu = 0, node = 0;
  if (syscall(SYS_getcpu, &cpu, &node, nullptr) != 0) throw std::runtime_error("getcpu failed");
  return {cpu, node};
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The sections (guest_topology.cpp, guest_placement.cpp).
void check_kernel_layout(const layout& want);
void check_topology(const layout& want);
void check_current_node(const layout& want);
void check_current_node_migration(const layout& want);
void run_placement_sections(const layout& want);
void run_cpuset_map_section(const layout& want);

}  // namespace numa_vm
