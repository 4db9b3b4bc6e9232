// numa_memory and heap_memory — SPEC "Memory placement": per-node arenas on mbind'ed chunks,
// dense size classes, alignment, thread safety, placement verified with move_pages, the bind
// mode's free-memory check, and the heap fallback with its reason (docs/memory.md).
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "numamap/memory.hpp"
#include "test_catch.hpp"
#include "test_env.hpp"

using numamap::counting_memory;
using numamap::heap_memory;
using numamap::numa_memory;
using numamap::numa_policy;
using numamap::topology;
namespace d = numamap::detail;
using numamap_test::scoped_env;

namespace {

// RAII: restores the system call table after a test replaced entries.
class scoped_syscalls {
 public:
  scoped_syscalls() : saved_(d::numa_syscalls()) {}
  scoped_syscalls(const scoped_syscalls&) = delete;
  scoped_syscalls& operator=(const scoped_syscalls&) = delete;
  scoped_syscalls(scoped_syscalls&&) = delete;
  scoped_syscalls& operator=(scoped_syscalls&&) = delete;
  ~scoped_syscalls() { d::numa_syscalls() = saved_; }

 private:
  d::numa_syscall_table saved_;
};

long mbind_eperm(void* /*addr*/, unsigned long /*len*/, int /*mode*/,
                 const unsigned long* /*nodemask*/, unsigned long /*maxnode*/,
                 unsigned /*flags*/) noexcept {
  errno = EPERM;
  return -1;
}
long mbind_enosys(void* /*addr*/, unsigned long /*len*/, int /*mode*/,
                  const unsigned long* /*nodemask*/, unsigned long /*maxnode*/,
                  unsigned /*flags*/) noexcept {
  errno = ENOSYS;
  return -1;
}
long move_pages_eperm(int /*pid*/, unsigned long /*count*/, void** /*pages*/, const int* /*nodes*/,
                      int* /*status*/, int /*flags*/) noexcept {
  errno = EPERM;
  return -1;
}
// A node with 64 MiB of which 9 MiB are free: with the 8 MiB headroom only 1 MiB fits.
bool tiny_node(numamap::node_id /*node*/, std::uint64_t* free_bytes,
               std::uint64_t* total) noexcept {
  *free_bytes = std::uint64_t{9} << 20;
  *total = std::uint64_t{64} << 20;
  return true;
}

// Whether [p, p+len) is mapped, by mincore (ENOMEM for unmapped ranges).
bool is_mapped(const void* p, std::size_t len) {
  const std::size_t page = d::os_page_size();
  auto base = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
  std::vector<unsigned char> vec((len + page - 1) / page + 1);
  return mincore(reinterpret_cast<void*>(base), len, vec.data()) == 0;
}

std::string numa_maps_policy_of(const void* p) {
  std::ifstream in("/proc/self/numa_maps");
  std::string line;
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::string best;
  std::uintptr_t best_start = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string start_hex;
    std::string policy;
    ls >> start_hex >> policy;
    const std::uintptr_t start = std::stoull(start_hex, nullptr, 16);
    if (start <= addr && start >= best_start) {
      best_start = start;
      best = policy;
    }
  }
  return best;
}

/// Whether numa_memory should place memory here, decided without numamap's own probe (so a
/// regression that makes it fall back where it need not fails the checks that use this):
/// built with libnuma, not switched off, the library loadable by a dlopen of our own, and
/// the kernel answering get_mempolicy (what numa_available() asks).
bool expect_placement_works() {
#if NUMAMAP_HAVE_LIBNUMA
  if (d::env_disables_numa()) return false;
  const char* lib = std::getenv("NUMAMAP_LIBNUMA_LIBRARY");  // NOLINT(concurrency-mt-unsafe)
  void* h = ::dlopen(lib != nullptr && *lib != '\0' ? lib : "libnuma.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) return false;
  ::dlclose(h);
  return ::syscall(SYS_get_mempolicy, nullptr, nullptr, 0UL, nullptr, 0UL) == 0;
#else
  return false;
#endif
}

}  // namespace

TEST_CASE("size classes pack densely and honour alignment", "[memory]") {
  CHECK(d::arena_size_classes[d::arena_class_of(24, 8)] == 24);
  CHECK(d::arena_size_classes[d::arena_class_of(24, 16)] == 32);
  CHECK(d::arena_size_classes[d::arena_class_of(1, 1)] == 8);
  CHECK(d::arena_size_classes[d::arena_class_of(0, 1)] == 8);
  CHECK(d::arena_size_classes[d::arena_class_of(65, 8)] == 80);
  CHECK(d::arena_size_classes[d::arena_class_of(100, 64)] == 128);
  CHECK(d::arena_size_classes[d::arena_class_of(100, 4096)] == 4096);
  CHECK(d::arena_class_of(65536, 8) != d::arena_no_class);
  CHECK(d::arena_class_of(65537, 8) == d::arena_no_class);
  CHECK(d::arena_class_of(64, 8192) == d::arena_no_class);
  for (std::size_t bytes = 1; bytes <= 70000; bytes += 37) {
    for (std::size_t align = 1; align <= 4096; align *= 4) {
      const std::size_t c = d::arena_class_of(bytes, align);
      if (c == d::arena_no_class) continue;
      CHECK(d::arena_size_classes[c] >= bytes);
      CHECK(d::arena_class_alignment(d::arena_size_classes[c]) >= align);
      CHECK(d::arena_size_classes[c] < bytes + bytes / 4 + align + 8);  // no gross waste
    }
  }
}

TEST_CASE("node_mask passes maxnode = bits + 1 (the kernel reads maxnode - 1 bits)", "[memory]") {
  d::node_mask m;
  CHECK(m.empty());
  m.set(0);
  m.set(1023);
  CHECK(m.test(0));
  CHECK(m.test(1023));
  CHECK_FALSE(m.test(1));
  CHECK(d::node_mask::maxnode() == sizeof(m.words) * 8 + 1);
}

TEST_CASE("numa_memory names itself and says why when it falls back", "[memory]") {
  numa_memory m;
  CHECK(m.policy() == numa_policy::preferred);
  if (m.is_fallback()) {
    CHECK(m.name() == "numa_memory(fallback: heap)");
    CHECK_FALSE(m.note().empty());
  } else {
    CHECK(m.name() == "numa_memory(preferred)");
  }
  if (!NUMAMAP_HAVE_LIBNUMA) {
    CHECK(m.is_fallback());
    CHECK(m.note().find("without libnuma") != std::string::npos);
  }
  if (expect_placement_works() && topology::system().source() != "synthetic" &&
      topology::system().source() != "xml") {
    CHECK_FALSE(m.is_fallback());
    CHECK(m.note().empty());
  }
  const numa_memory b(numa_policy::bind);
  const numa_memory i(numa_policy::interleave);
  CHECK(b.policy() == numa_policy::bind);
  CHECK(i.policy() == numa_policy::interleave);
  CHECK(b.name() == (b.is_fallback() ? "numa_memory(fallback: heap)" : "numa_memory(bind)"));
  CHECK(i.name() == (i.is_fallback() ? "numa_memory(fallback: heap)" : "numa_memory(interleave)"));
  CHECK(std::string(heap_memory::name()) == "heap_memory");
}

TEST_CASE("many sizes and alignments from several threads, all bytes returned", "[memory]") {
  for (numa_policy policy : {numa_policy::preferred, numa_policy::interleave}) {
    INFO(numamap::to_string(policy));
    counting_memory<numa_memory> mem{numa_memory(policy)};
    const numamap::node_id node = topology::system().nodes().front().id;
    constexpr int threads = 4;
    std::vector<std::thread> pool;
    pool.reserve(threads);
    std::vector<int> failures(threads, 0);
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        std::mt19937 rng(static_cast<unsigned>(1234 + t));
        struct block {
          unsigned char* p;
          std::size_t bytes, align;
          unsigned char fill;
        };
        std::vector<block> live;
        auto check_free = [&](const block& b) {
          for (std::size_t i = 0; i < b.bytes; i += 61) {
            if (b.p[i] != b.fill) ++failures[t];
          }
          if (b.p[b.bytes - 1] != b.fill) ++failures[t];
          mem.deallocate(b.p, b.bytes, b.align, node);
        };
        for (int i = 0; i < 3000; ++i) {
          std::size_t bytes = 0;
          const unsigned r = rng() % 100;
          if (r < 70) {
            bytes = 1 + rng() % 128;
          } else if (r < 95) {
            bytes = 1 + rng() % 8192;
          } else if (r < 99) {
            bytes = 1 + rng() % 70000;
          } else {
            bytes = 100000 + rng() % 3000000;  // a large mapping
          }
          const std::size_t align = std::size_t{1} << (rng() % 14);  // 1 .. 8192
          auto* p = static_cast<unsigned char*>(mem.allocate(bytes, align, node));
          if (reinterpret_cast<std::uintptr_t>(p) % align != 0) ++failures[t];
          const auto fill = static_cast<unsigned char>(rng());
          std::memset(p, fill, bytes);
          live.push_back({p, bytes, align, fill});
          if (rng() % 3 == 0) {
            const std::size_t k = rng() % live.size();
            check_free(live[k]);
            live[k] = live.back();
            live.pop_back();
          }
        }
        for (const block& b : live) check_free(b);
      });
    }
    for (auto& th : pool) th.join();
    for (int f : failures) CHECK(f == 0);
    CHECK(mem.live_bytes() == 0);
    CHECK(mem.live_allocations() == 0);
    CHECK(mem.total_allocations() == std::size_t{threads} * 3000);
  }
}

TEST_CASE("small blocks are carved densely from chunks, not a page each", "[memory]") {
  numa_memory m;
  if (m.is_fallback()) {
    CHECK(m.mapped_bytes(0) == 0);
    return;
  }
  const numamap::node_id node = topology::system().nodes().front().id;
  std::vector<char*> v;
  v.reserve(20000);
  for (int i = 0; i < 20000; ++i) v.push_back(static_cast<char*>(m.allocate(24, 8, node)));
  std::size_t adjacent = 0;
  for (std::size_t i = 1; i < v.size(); ++i) adjacent += v[i] - v[i - 1] == 24 ? 1 : 0;
  CHECK(adjacent >= v.size() * 9 / 10);
  // 20,000 x 24 B = 469 KiB: one 2 MiB chunk holds it (a page each would be 78 MiB).
  CHECK(m.mapped_bytes(node) == d::arena_chunk_min);
  for (char* p : v) m.deallocate(p, 24, 8, node);
  // Freed blocks are reused before new memory is carved.
  void* again = m.allocate(24, 8, node);
  CHECK(std::find(v.begin(), v.end(), static_cast<char*>(again)) != v.end());
  m.deallocate(again, 24, 8, node);
}

TEST_CASE("chunks grow geometrically from 2 MiB to 64 MiB", "[memory]") {
  numa_memory m;
  if (m.is_fallback()) {
    CHECK(m.mapped_bytes(0) == 0);
    return;
  }
  const numamap::node_id node = topology::system().nodes().front().id;
  std::vector<void*> v;
  std::vector<std::size_t> mapped;
  for (int i = 0; i < 3000; ++i) {
    v.push_back(m.allocate(65536, 8, node));  // untouched: costs address space only
    if (mapped.empty() || mapped.back() != m.mapped_bytes(node)) {
      mapped.push_back(m.mapped_bytes(node));
    }
  }
  // 2, +4, +8, +16, +32, +64, +64, ... MiB
  REQUIRE(mapped.size() >= 7);
  const std::size_t mib = std::size_t{1} << 20;
  CHECK(mapped[0] == 2 * mib);
  CHECK(mapped[1] == 6 * mib);
  CHECK(mapped[2] == 14 * mib);
  CHECK(mapped[5] == 126 * mib);
  CHECK(mapped[6] == 190 * mib);
  for (void* p : v) m.deallocate(p, 65536, 8, node);
}

TEST_CASE("pages are on the requested node according to move_pages", "[memory]") {
  const numamap::node_id node = topology::system().nodes().front().id;
  for (numa_policy policy : {numa_policy::preferred, numa_policy::bind, numa_policy::interleave}) {
    INFO(numamap::to_string(policy));
    numa_memory m(policy);
    std::vector<void*> small;
    for (int i = 0; i < 50000; ++i) {
      void* p = m.allocate(48, 16, node);
      std::memset(p, 1, 48);
      small.push_back(p);
    }
    void* big = m.allocate(std::size_t{5} << 20, 64, node);
    std::memset(big, 1, std::size_t{5} << 20);
    const numamap::page_placement pp = m.verify_placement(node);
    if (m.is_fallback()) {
      CHECK_FALSE(pp.verified);
    } else {
      REQUIRE(pp.verified);
      CHECK(pp.sampled > 0);
      CHECK(pp.on_node >= 1280 + 500);  // the large mapping's pages and the carved runs
      CHECK(pp.elsewhere == 0);
      CHECK(pp.on_node + pp.elsewhere + pp.not_present == pp.sampled);
      // White box: the policy the kernel recorded (not "default": maxnode was right).
      const std::string pol = numa_maps_policy_of(big);
      if (policy == numa_policy::preferred) CHECK(pol == "prefer=static:" + std::to_string(node));
      if (policy == numa_policy::bind) CHECK(pol == "bind=static:" + std::to_string(node));
      if (policy == numa_policy::interleave) CHECK(pol.rfind("interleave", 0) == 0);
    }
    for (void* p : small) m.deallocate(p, 48, 16, node);
    m.deallocate(big, std::size_t{5} << 20, 64, node);
  }
}

TEST_CASE("verify_placement samples at most the cap and counts untouched pages", "[memory]") {
  numa_memory m;
  const numamap::node_id node = topology::system().nodes().front().id;
  const std::size_t len = std::size_t{64} << 20;  // 16384 pages, never touched
  void* p = m.allocate(len, 64, node);
  REQUIRE(p != nullptr);
  const numamap::page_placement pp = m.verify_placement(node);
  if (m.is_fallback()) {
    // Heap memory cannot be verified: the report says so and counts nothing.
    CHECK_FALSE(pp.verified);
    CHECK(pp.sampled == 0);
    CHECK(pp.on_node + pp.elsewhere + pp.not_present == 0);
  } else {
    REQUIRE(pp.verified);
    CHECK(pp.sampled <= d::page_sample_cap);
    CHECK(pp.sampled >= d::page_sample_cap / 2);
    CHECK(pp.not_present == pp.sampled);  // -ENOENT: never touched
  }
  m.deallocate(p, len, 64, node);
}

namespace {
// Resident pages of [p, p + len) (p page-aligned), by mincore.
std::vector<bool> resident_pages(void* p, std::size_t len) {
  const std::size_t page = d::os_page_size();
  std::vector<unsigned char> vec((len + page - 1) / page);
  REQUIRE(mincore(p, len, vec.data()) == 0);
  std::vector<bool> out;
  out.reserve(vec.size());
  for (unsigned char v : vec) out.push_back((v & 1U) != 0);
  return out;
}
}  // namespace

TEST_CASE(
    "prefault_for_write faults in a block's whole pages, changes no byte, skips small and reused "
    "ones",
    "[memory]") {
  const std::size_t page = d::os_page_size();
  const std::size_t len = std::size_t{1} << 20;
  void* m = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(m != MAP_FAILED);
  auto* base = static_cast<unsigned char*>(m);
  // Kernels before 5.14 have no MADV_POPULATE_WRITE: the call is then advice that does
  // nothing (the pages fault in at the first write, as without it).
  void* probe = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(probe != MAP_FAILED);
  const bool supported = ::madvise(probe, page, d::madv_populate_write) == 0;
  const int why = supported ? 0 : errno;
  ::munmap(probe, page);
  if (!supported) {
    WARN("MADV_POPULATE_WRITE unsupported here (errno " << why << "): nothing to check");
    ::munmap(m, len);
    return;
  }
  {
    const std::vector<bool> before = resident_pages(base, len);
    CHECK(std::count(before.begin(), before.end(), true) == 0);  // fresh: nothing touched
  }
  // A block that starts and ends inside a page: the whole pages between are faulted in; the
  // two it shares with its neighbours are not.
  d::prefault_for_write(base + 100, len - 200);
  const std::vector<bool> after = resident_pages(base, len);
  const std::size_t pages = len / page;
  CHECK_FALSE(after.front());
  CHECK_FALSE(after.back());
  CHECK(static_cast<std::size_t>(std::count(after.begin(), after.end(), true)) == pages - 2);
  // No byte changed.
  CHECK(std::all_of(base, base + len, [](unsigned char c) { return c == 0; }));
  // Bytes already written stay as they are.
  std::memset(base + page, 0xab, page);
  d::prefault_for_write(base, len);
  CHECK(std::all_of(base + page, base + 2 * page, [](unsigned char c) { return c == 0xab; }));
  ::munmap(m, len);

  // A block whose last whole page is resident is taken as reused memory (a spare mapping,
  // a block the heap had handed out before) and left as it is: no page faulted in (D49).
  void* r = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(r != MAP_FAILED);
  auto* rb = static_cast<unsigned char*>(r);
  rb[len - page] = 1;  // the last whole page, written
  d::prefault_for_write(rb, len);
  const std::vector<bool> reused = resident_pages(rb, len);
  CHECK(reused.back());
  CHECK(std::count(reused.begin(), reused.end(), true) == 1);
  ::munmap(r, len);

  // Below prefault_min_bytes nothing is faulted in: a few page faults cost less than the call.
  const std::size_t small = d::prefault_min_bytes - page;
  void* s = ::mmap(nullptr, small, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(s != MAP_FAILED);
  d::prefault_for_write(s, small);
  const std::vector<bool> small_after = resident_pages(s, small);
  CHECK(std::count(small_after.begin(), small_after.end(), true) == 0);
  ::munmap(s, small);
}

TEST_CASE(
    "large mappings are unmapped when freed, but for a few spares; chunks when the last "
    "handle dies",
    "[memory]") {
  const numamap::node_id node = topology::system().nodes().front().id;
  void* small = nullptr;
  {
    numa_memory m;
    if (m.is_fallback()) {
      CHECK_FALSE(m.note().empty());
      return;
    }
    // Above the spare limit: unmapped at once.
    const std::size_t huge = d::arena_spare_len_max * 2;
    void* big = m.allocate(huge, 64, node);
    CHECK(is_mapped(big, huge));
    m.deallocate(big, huge, 64, node);
    CHECK_FALSE(is_mapped(big, huge));

    // Up to the limit: kept mapped, and handed out again for the same length.
    const std::size_t len = std::size_t{3} << 20;
    void* a = m.allocate(len, 64, node);
    m.deallocate(a, len, 64, node);
    CHECK(is_mapped(a, len));
    const std::size_t mapped = m.mapped_bytes(node);
    void* again = m.allocate(len, 64, node);
    CHECK(again == a);
    CHECK(m.mapped_bytes(node) == mapped);        // no new mapping
    void* third = m.allocate(len / 3, 64, node);  // another length: a new mapping
    CHECK(third != a);
    m.deallocate(third, len / 3, 64, node);
    m.deallocate(again, len, 64, node);

    // At most arena_spare_count spares: freeing one more unmaps the oldest.
    const std::size_t one = std::size_t{1} << 20;
    std::vector<void*> v;
    for (std::size_t i = 0; i < d::arena_spare_count + 1; ++i) {
      v.push_back(m.allocate(one, 64, node));
    }
    for (void* p : v) m.deallocate(p, one, 64, node);
    CHECK_FALSE(is_mapped(v.front(), one));
    CHECK(is_mapped(v.back(), one));

    numa_memory copy = m;  // a second handle to the same arenas
    CHECK(copy == m);
    small = m.allocate(64, 64, node);
    {
      // NOLINTNEXTLINE(performance-move-const-arg): the test's point: a move copies
      numa_memory gone = std::move(m);  // moves copy: m stays usable
      (void)gone;
    }
    void* other = m.allocate(64, 64, node);  // NOLINT(bugprone-use-after-move)
    copy.deallocate(other, 64, 64, node);    // freed through another handle
    CHECK(is_mapped(small, 64));
    m = numa_memory();
    CHECK(m != copy);
    CHECK(is_mapped(small, 64));  // `copy` still holds the arenas
  }
  CHECK_FALSE(is_mapped(small, 64));
}

TEST_CASE("bind refuses a chunk the node has no room for, with bad_alloc", "[memory]") {
  numa_memory m(numa_policy::bind);
  const numamap::node_id node = topology::system().nodes().front().id;
  if (m.is_fallback()) {
    // The heap fallback has no node to check: it says why, allocates, and verifies nothing.
    CHECK_FALSE(m.note().empty());
    CHECK(m.name() == "numa_memory(fallback: heap)");
    void* p = m.allocate(100, 8, node);
    CHECK(p != nullptr);
    CHECK_FALSE(m.verify_placement(node).verified);
    m.deallocate(p, 100, 8, node);
  } else {
    // More than any node has: the free-memory check throws before anything is touched.
    CHECK_THROWS_AS(m.allocate(std::size_t{1} << 44, 64, node), std::bad_alloc);
    void* p = m.allocate(100, 8, node);  // the resource is still usable
    CHECK(p != nullptr);
    m.deallocate(p, 100, 8, node);
  }
  scoped_syscalls restore;
  d::numa_syscalls().node_memory = &tiny_node;
  numa_memory tiny(numa_policy::bind);
  numa_memory relaxed(numa_policy::preferred);
  if (!tiny.is_fallback()) {
    CHECK_THROWS_AS(tiny.allocate(64, 8, node), std::bad_alloc);   // needs a 2 MiB chunk
    void* fits = tiny.allocate(std::size_t{512} << 10, 64, node);  // 512 KiB < 1 MiB room
    CHECK(fits != nullptr);
    tiny.deallocate(fits, std::size_t{512} << 10, 64, node);
    CHECK_THROWS_AS(tiny.allocate(std::size_t{2} << 20, 64, node), std::bad_alloc);
    // preferred does not check: the kernel falls back to another node when this one is full.
    void* q = relaxed.allocate(64, 8, node);
    CHECK(q != nullptr);
    relaxed.deallocate(q, 64, 8, node);
  }
}

TEST_CASE("requests no address space can hold throw bad_alloc and map nothing", "[memory]") {
  // Near SIZE_MAX the arena's rounding to pages and to the 2 MiB chunk alignment wrapped
  // around: a request mapped one page, unmapped 2 MiB of other mappings above it and
  // returned a pointer. Each policy; in a build without libnuma, the heap fallback.
  const numamap::node_id node = topology::system().nodes().front().id;
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  const std::size_t sizes[] = {max, max - (std::size_t{2} << 20) + 2, max - 4095,
                               std::size_t{1} << 63U};
  for (const numa_policy policy :
       {numa_policy::preferred, numa_policy::bind, numa_policy::interleave}) {
    numa_memory m(policy);
    void* before = m.allocate(std::size_t{4} << 20, 64, node);  // a mapping of its own
    std::memset(before, 0x5a, std::size_t{4} << 20);
    const std::size_t mapped = m.is_fallback() ? 0 : m.mapped_bytes(node);
    for (const std::size_t size : sizes) {
      // volatile: the size is not a constant GCC checks against the largest object size.
      const volatile std::size_t bytes = size;
      CAPTURE(size);
      CHECK_THROWS_AS(m.allocate(bytes, 8, node), std::bad_alloc);
    }
    CHECK_THROWS_AS(m.allocate(64, std::size_t{1} << 63U, node), std::bad_alloc);
    if (!m.is_fallback()) CHECK(m.mapped_bytes(node) == mapped);
    // The mapping made before is intact, and the resource still allocates.
    const auto* bytes = static_cast<const unsigned char*>(before);
    CHECK(std::all_of(bytes, bytes + (std::size_t{4} << 20),
                      [](unsigned char c) { return c == 0x5a; }));
    m.deallocate(before, std::size_t{4} << 20, 64, node);
    void* p = m.allocate(std::size_t{3} << 20, 64, node);
    CHECK(p != nullptr);
    m.deallocate(p, std::size_t{3} << 20, 64, node);
  }
  // heap_memory, and numa_memory's heap fallback (numamap built without libnuma, NUMA
  // refused), checked first: libstdc++'s aligned operator new wrapped SIZE_MAX to a block of
  // 0 bytes and returned it.
  heap_memory h;
  for (const std::size_t size : sizes) {
    const volatile std::size_t bytes = size;
    CAPTURE(size);
    CHECK_THROWS_AS(h.allocate(bytes, 8, node), std::bad_alloc);
  }
  CHECK_THROWS_AS(h.allocate(64, std::size_t{1} << 63U, node), std::bad_alloc);
  void* q = h.allocate(100, 64, node);
  CHECK(q != nullptr);
  h.deallocate(q, 100, 64, node);
}

TEST_CASE("forced fallback: NUMAMAP_DISABLE_NUMA=1 gives heap memory with a note", "[memory]") {
  scoped_env e("NUMAMAP_DISABLE_NUMA", "1");
  numa_memory m(numa_policy::bind);
  CHECK(m.is_fallback());
  CHECK(m.name() == "numa_memory(fallback: heap)");
  CHECK(m.note().find("NUMAMAP_DISABLE_NUMA") != std::string::npos);
  void* p = m.allocate(1000, 64, 0);
  CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
  std::memset(p, 7, 1000);
  m.deallocate(p, 1000, 64, 0);
  CHECK_FALSE(m.verify_placement(0).verified);
  CHECK(m.mapped_bytes(0) == 0);
}

TEST_CASE("mbind refused (EPERM under seccomp, ENOSYS) falls back with the reason", "[memory]") {
  for (auto fake : {&mbind_eperm, &mbind_enosys}) {
    scoped_syscalls restore;
    d::numa_syscalls().mbind = fake;
    numa_memory m;
    CHECK(m.is_fallback());
    CHECK(m.name() == "numa_memory(fallback: heap)");
    if (expect_placement_works()) {
      CHECK(m.note().find(fake == &mbind_eperm ? "EPERM" : "ENOSYS") != std::string::npos);
    }
    void* p = m.allocate(24, 8, 0);
    m.deallocate(p, 24, 8, 0);
  }
}

TEST_CASE("move_pages refused: placement is reported as not verified", "[memory]") {
  numa_memory m;
  const numamap::node_id node = topology::system().nodes().front().id;
  void* p = m.allocate(4096, 4096, node);
  std::memset(p, 1, 4096);
  {
    scoped_syscalls restore;
    d::numa_syscalls().move_pages = &move_pages_eperm;
    CHECK_FALSE(m.verify_placement(node).verified);
  }
  CHECK(m.verify_placement(node).verified == !m.is_fallback());
  m.deallocate(p, 4096, 4096, node);
}

TEST_CASE("nodes that refuse mbind get heap memory, named in note()", "[memory]") {
  // Node 1000 exists on no machine numamap runs on: mbind says EINVAL.
  d::raw_topology raw;
  raw.source = "test";
  raw.nodes.push_back({topology::system().nodes().front().id, 0, 1});
  raw.nodes.push_back({1000, 1, 1});
  raw.cpus.emplace_back(0, raw.nodes[0].id);
  raw.cpus.emplace_back(1, 1000);
  const topology t = d::topology_access::from_raw(raw);
  numa_memory m(numa_policy::preferred, t);
  if (!expect_placement_works()) {
    CHECK(m.is_fallback());
    return;
  }
  CHECK_FALSE(m.is_fallback());
  CHECK(m.note().find("node 1000") != std::string::npos);
  CHECK(m.note().find("EINVAL") != std::string::npos);
  void* p = m.allocate(256, 64, 1000);
  std::memset(p, 1, 256);
  CHECK_FALSE(m.verify_placement(1000).verified);
  m.deallocate(p, 256, 64, 1000);
  // A node id nobody announced is probed on first use, and noted as well.
  void* q = m.allocate(256, 64, 999);
  CHECK(m.note().find("node 999") != std::string::npos);
  m.deallocate(q, 256, 64, 999);
  // Beyond the mask numamap can express.
  void* r = m.allocate(256, 64, 5000);
  CHECK(m.note().find("node 5000") != std::string::npos);
  m.deallocate(r, 256, 64, 5000);
}

TEST_CASE("every node of a topology that refuses mbind: whole fallback", "[memory]") {
  d::raw_topology raw;
  raw.source = "test";
  raw.nodes.push_back({998, 0, 1});
  raw.nodes.push_back({999, 0, 1});
  raw.cpus.emplace_back(0, 998);
  const topology t = d::topology_access::from_raw(raw);
  for (numa_policy policy : {numa_policy::preferred, numa_policy::bind, numa_policy::interleave}) {
    numa_memory m(policy, t);
    CHECK(m.is_fallback());
    CHECK_FALSE(m.note().empty());
    void* p = m.allocate(64, 8, 998);
    m.deallocate(p, 64, 8, 998);
  }
}

TEST_CASE("heap_memory honours alignment", "[memory]") {
  heap_memory h;
  for (std::size_t align = 1; align <= 8192; align *= 2) {
    void* p = h.allocate(100, align, 0);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
    h.deallocate(p, 100, align, 0);
  }
}

namespace {
// The VmFlags line of the mapping holding p in /proc/self/smaps ("" if none was found).
std::string vm_flags_of(const void* p) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  while (std::getline(in, line)) {
    const auto dash = line.find('-');
    const auto space = line.find(' ');
    if (dash != std::string::npos && space != std::string::npos && dash < space &&
        line.find_first_not_of("0123456789abcdef") == dash) {
      const std::uintptr_t lo = std::stoull(line.substr(0, dash), nullptr, 16);
      const std::uintptr_t hi = std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16);
      inside = lo <= addr && addr < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}
bool has_flag(const std::string& vm_flags, const std::string& flag) {
  std::istringstream ls(vm_flags);
  std::string f;
  while (ls >> f) {
    if (f == flag) return true;
  }
  return false;
}
// Whether this kernel has transparent huge pages (MADV_HUGEPAGE is EINVAL without).
bool kernel_has_thp() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  return in.good();
}
}  // namespace

TEST_CASE("chunks of small blocks get huge pages from the third chunk (8 MiB) on", "[memory]") {
  // The first two chunks (2 and 4 MiB) stay on 4 KiB pages, so that 6 MiB of small blocks
  // are not made resident 2 MiB at a time (decisions.md D53); the third is advised.
  const numamap::node_id node = topology::system().nodes().front().id;
  numa_memory m;
  if (m.is_fallback() || !kernel_has_thp()) {
    CHECK((m.is_fallback() ? !m.note().empty() : true));
    return;  // heap memory, or no THP: there is no advice to give
  }
  const std::size_t block = d::arena_small_max;  // the largest small class
  std::vector<void*> blocks;
  std::size_t first_advised = 0;  // bytes of blocks allocated before the first advised one
  bool advised = false;
  while (!advised && blocks.size() * block < (std::size_t{16} << 20)) {
    void* p = m.allocate(block, 64, node);
    blocks.push_back(p);
    const std::string f = vm_flags_of(p);
    REQUIRE(!f.empty());
    if (has_flag(f, "hg")) {
      advised = true;
    } else {
      first_advised += block;
    }
  }
  INFO("small blocks before the first advised one: " << first_advised << " bytes");
  CHECK(first_advised >= (std::size_t{4} << 20));  // past the second chunk: 2 + 4 MiB
  CHECK(advised);                                  // the third chunk is advised
  for (void* p : blocks) m.deallocate(p, block, 64, node);
}

TEST_CASE(
    "large blocks of 4 MiB and more are advised MADV_HUGEPAGE; NUMAMAP_NO_HUGE_PAGES=1 stops it",
    "[memory]") {
  const numamap::node_id node = topology::system().nodes().front().id;
  const std::size_t big = std::size_t{8} << 20;
  const std::size_t small = std::size_t{3} << 20;
  numa_memory m;
  if (m.is_fallback() || !kernel_has_thp()) {
    CHECK((m.is_fallback() ? !m.note().empty() : true));
    return;  // heap memory, or no THP: there is no advice to give
  }
  void* b = m.allocate(big, 64, node);
  void* s = m.allocate(small, 64, node);
  const std::string fb = vm_flags_of(b);
  const std::string fs = vm_flags_of(s);
  INFO(fb << " / " << fs);
  REQUIRE(!fb.empty());
  CHECK(has_flag(fb, "hg"));   // VM_HUGEPAGE: madvise(MADV_HUGEPAGE) took
  CHECK(!has_flag(fs, "hg"));  // below arena_huge_min: 4 KiB pages
  m.deallocate(s, small, 64, node);
  m.deallocate(b, big, 64, node);

  scoped_env e("NUMAMAP_NO_HUGE_PAGES", "1");
  numa_memory off;
  REQUIRE(!off.is_fallback());
  void* c = off.allocate(big, 64, node);
  const std::string fc = vm_flags_of(c);
  INFO(fc);
  REQUIRE(!fc.empty());
  CHECK(!has_flag(fc, "hg"));
  off.deallocate(c, big, 64, node);
}
