// The write probe itself (detail::atomic under NUMAMAP_INSTRUMENTED_ATOMICS=1): every member of
// std::atomic that writes is recorded once, at the atomic's address, with std::atomic's
// results; reads record nothing; and no unrecorded write compiles (the std::atomic base is
// private, so neither a std::atomic& to the wrapper nor std::atomic_store and friends reach it).
// hit_path_writes.cpp relies on this: a write the probe missed would pass it silently.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "numamap/numamap.hpp"
#include "test_catch.hpp"

static_assert(NUMAMAP_INSTRUMENTED_ATOMICS, "tests/hitpath must be built with the write probe");

namespace {

using numamap::detail::atomic_probe;
template <class T>
using probed = numamap::detail::atomic<T>;

// ---- Compile-time: no way around the probe ---------------------------------------------------

template <class A, class = void>
struct free_store_compiles : std::false_type {};
template <class A>
struct free_store_compiles<
    A, std::void_t<decltype(std::atomic_store(std::declval<A*>(), typename A::value_type{}))>>
    : std::true_type {};

template <class A, class = void>
struct copy_assign_compiles : std::false_type {};
template <class A>
struct copy_assign_compiles<A, std::void_t<decltype(std::declval<A&>() = std::declval<A&>())>>
    : std::true_type {};

static_assert(!std::is_convertible_v<probed<std::uint64_t>&, std::atomic<std::uint64_t>&>);
static_assert(!std::is_convertible_v<probed<std::uint64_t>*, std::atomic<std::uint64_t>*>);
static_assert(!free_store_compiles<probed<std::uint64_t>>::value);
static_assert(free_store_compiles<std::atomic<std::uint64_t>>::value);  // the check works
static_assert(!copy_assign_compiles<probed<int>>::value);
static_assert(!std::is_copy_constructible_v<probed<int>>);
static_assert(sizeof(probed<std::uint64_t>) == sizeof(std::atomic<std::uint64_t>));
static_assert(alignof(probed<std::uint64_t>) == alignof(std::atomic<std::uint64_t>));

// ---- Run time: one event per write, none per read ---------------------------------------------

/// Runs `op` under the probe; returns what it recorded.
template <class Op>
std::vector<atomic_probe::event> recorded(Op&& op) {
  atomic_probe::start();
  std::forward<Op>(op)();
  return atomic_probe::stop();
}

/// `op` recorded exactly one event of kind `k` at `addr`.
bool one_event(const std::vector<atomic_probe::event>& ev, const void* addr, atomic_probe::kind k) {
  return ev.size() == 1 && ev[0].addr == addr && ev[0].what == k;
}

/// `op` recorded at least one event, all of kind `k` at `addr`.
bool all_at(const std::vector<atomic_probe::event>& ev, const void* addr, atomic_probe::kind k) {
  if (ev.empty()) return false;
  return std::all_of(ev.begin(), ev.end(),
                     [&](const atomic_probe::event& e) { return e.addr == addr && e.what == k; });
}

constexpr auto store = atomic_probe::kind::store;
constexpr auto rmw = atomic_probe::kind::rmw;

}  // namespace

TEST_CASE("atomic probe: stores are recorded", "[hitpath]") {
  probed<std::uint64_t> a{1};
  CHECK(one_event(recorded([&] { a.store(2); }), &a, store));
  CHECK(a.load() == 2);
  CHECK(one_event(recorded([&] { a.store(3, std::memory_order_release); }), &a, store));
  CHECK(a.load() == 3);
  std::uint64_t r = 0;
  CHECK(one_event(recorded([&] { r = (a = 4); }), &a, store));
  CHECK(r == 4);
  CHECK(a.load() == 4);
}

TEST_CASE("atomic probe: read-modify-writes are recorded", "[hitpath]") {
  probed<std::uint64_t> a{10};
  std::uint64_t r = 0;
  CHECK(one_event(recorded([&] { r = a.exchange(11); }), &a, rmw));
  CHECK((r == 10 && a.load() == 11));

  std::uint64_t e = 11;
  bool ok = false;
  CHECK(one_event(recorded([&] {
                    ok = a.compare_exchange_strong(e, 12, std::memory_order_acq_rel,
                                                   std::memory_order_acquire);
                  }),
                  &a, rmw));
  CHECK((ok && a.load() == 12));
  e = 12;
  CHECK(one_event(recorded([&] { ok = a.compare_exchange_strong(e, 13); }), &a, rmw));
  CHECK((ok && a.load() == 13));
  e = 99;  // fails: still an attempt, and recorded
  CHECK(one_event(recorded([&] { ok = a.compare_exchange_strong(e, 14); }), &a, rmw));
  CHECK((!ok && e == 13 && a.load() == 13));
  // A weak compare-exchange may fail spuriously: one event per attempt, all at `a`.
  e = 13;
  const auto weak4 = recorded([&] {
    while (!a.compare_exchange_weak(e, 14, std::memory_order_acq_rel, std::memory_order_acquire)) {
    }
  });
  CHECK(all_at(weak4, &a, rmw));
  CHECK(a.load() == 14);
  const auto weak1 = recorded([&] {
    while (!a.compare_exchange_weak(e, 15)) {
    }
  });
  CHECK(all_at(weak1, &a, rmw));
  CHECK(a.load() == 15);

  a.store(0b1100);
  CHECK(one_event(recorded([&] { r = a.fetch_add(1); }), &a, rmw));
  CHECK((r == 0b1100 && a.load() == 0b1101));
  CHECK(one_event(recorded([&] { r = a.fetch_sub(1, std::memory_order_relaxed); }), &a, rmw));
  CHECK((r == 0b1101 && a.load() == 0b1100));
  CHECK(one_event(recorded([&] { r = a.fetch_and(0b0100); }), &a, rmw));
  CHECK((r == 0b1100 && a.load() == 0b0100));
  CHECK(one_event(recorded([&] { r = a.fetch_or(0b0001); }), &a, rmw));
  CHECK((r == 0b0100 && a.load() == 0b0101));
  CHECK(one_event(recorded([&] { r = a.fetch_xor(0b0011); }), &a, rmw));
  CHECK((r == 0b0101 && a.load() == 0b0110));
}

TEST_CASE("atomic probe: operators are recorded with std::atomic's results", "[hitpath]") {
  probed<std::int64_t> a{5};
  std::int64_t r = 0;
  CHECK(one_event(recorded([&] { r = ++a; }), &a, rmw));
  CHECK((r == 6 && a.load() == 6));
  CHECK(one_event(recorded([&] { r = a++; }), &a, rmw));
  CHECK((r == 6 && a.load() == 7));
  CHECK(one_event(recorded([&] { r = --a; }), &a, rmw));
  CHECK((r == 6 && a.load() == 6));
  CHECK(one_event(recorded([&] { r = a--; }), &a, rmw));
  CHECK((r == 6 && a.load() == 5));
  CHECK(one_event(recorded([&] { r = (a += 10); }), &a, rmw));
  CHECK((r == 15 && a.load() == 15));
  CHECK(one_event(recorded([&] { r = (a -= 3); }), &a, rmw));
  CHECK((r == 12 && a.load() == 12));
  CHECK(one_event(recorded([&] { r = (a &= 0b0110); }), &a, rmw));
  CHECK((r == 0b0100 && a.load() == 0b0100));
  CHECK(one_event(recorded([&] { r = (a |= 0b0001); }), &a, rmw));
  CHECK((r == 0b0101 && a.load() == 0b0101));
  CHECK(one_event(recorded([&] { r = (a ^= 0b0011); }), &a, rmw));
  CHECK((r == 0b0110 && a.load() == 0b0110));
}

TEST_CASE("atomic probe: pointer arithmetic is recorded", "[hitpath]") {
  int xs[4] = {0, 1, 2, 3};
  probed<int*> p{&xs[0]};
  int* r = nullptr;
  CHECK(one_event(recorded([&] { r = p.fetch_add(2); }), &p, rmw));
  CHECK((r == &xs[0] && p.load() == &xs[2]));
  CHECK(one_event(recorded([&] { r = p.fetch_sub(1); }), &p, rmw));
  CHECK((r == &xs[2] && p.load() == &xs[1]));
  CHECK(one_event(recorded([&] { r = ++p; }), &p, rmw));
  CHECK(r == &xs[2]);
  CHECK(one_event(recorded([&] { r = p--; }), &p, rmw));
  CHECK((r == &xs[2] && p.load() == &xs[1]));
  CHECK(one_event(recorded([&] { r = (p += 2); }), &p, rmw));
  CHECK(r == &xs[3]);
  CHECK(one_event(recorded([&] { r = (p -= 3); }), &p, rmw));
  CHECK(r == &xs[0]);
}

TEST_CASE("atomic probe: reads record nothing", "[hitpath]") {
  probed<std::uint64_t> a{7};
  probed<bool> b{true};
  std::uint64_t sum = 0;
  const auto ev = recorded([&] {
    sum += a.load();
    sum += a.load(std::memory_order_acquire);
    sum += a;  // implicit conversion is a load
    sum += b.load() ? 1 : 0;
  });
  CHECK(ev.empty());
  CHECK(sum == 7 + 7 + 7 + 1);
  // is_lock_free() is not called: with clang and libstdc++ it needs libatomic.
  CHECK(probed<std::uint64_t>::is_always_lock_free ==
        std::atomic<std::uint64_t>::is_always_lock_free);
}
