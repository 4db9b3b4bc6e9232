// tests/support/test_types.hpp — keys, values, hashes and memory resources for the tests.
//
//   counted            value type counting its live instances (out of line in the map)
//   copy_counted       value type counting its copies (visit must not copy)
//   fault_point        one-shot "throw on the Nth call" switch; one each for hash, equal,
//                      value copy and allocation
//   faulty_hash / faulty_equal / faulty_value / faulty_memory   use those switches
//   checked_memory     a NodeMemory that checks every deallocate against its allocate
//                      (size, alignment, node, no double free) and counts live bytes
//   string_hash / string_equal   transparent, for std::string keys looked up by string_view
//   tracked_string     key type counting its constructions (heterogeneous lookup builds none)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "numamap/fwd.hpp"

namespace numamap_test {

// ---------------------------------------------------------------------------------------------
// Live-instance counting value

/// A value whose live instances are counted; not trivially copyable, so the map keeps it
/// out of line and must destroy every node it created.
class counted {
 public:
  static std::atomic<long>& live() {
    static std::atomic<long> n{0};
    return n;
  }
  counted() noexcept : v_(0) { inc(); }
  explicit counted(std::uint64_t v) noexcept : v_(v) { inc(); }
  counted(const counted& o) noexcept : v_(o.v_) { inc(); }
  counted(counted&& o) noexcept : v_(o.v_) { inc(); }
  counted& operator=(const counted& o) noexcept {
    v_ = o.v_;
    return *this;
  }
  counted& operator=(counted&& o) noexcept {
    v_ = o.v_;
    return *this;
  }
  ~counted() {
    // Relaxed: a counter read only after threads are joined or as an approximate sample.
    live().fetch_sub(1, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return v_; }
  friend bool operator==(const counted& a, const counted& b) noexcept { return a.v_ == b.v_; }
  friend bool operator!=(const counted& a, const counted& b) noexcept { return a.v_ != b.v_; }

 private:
  static void inc() noexcept { live().fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t v_;
};

/// A value counting its copies (moves are free); `visit` must make none.
class copy_counted {
 public:
  static std::atomic<long>& copies() {
    static std::atomic<long> n{0};
    return n;
  }
  explicit copy_counted(std::string v) : v_(std::move(v)) {}
  copy_counted(const copy_counted& o) : v_(o.v_) { copies().fetch_add(1); }
  copy_counted(copy_counted&&) noexcept = default;
  copy_counted& operator=(const copy_counted& o) {
    copies().fetch_add(1);
    v_ = o.v_;
    return *this;
  }
  copy_counted& operator=(copy_counted&&) noexcept = default;
  ~copy_counted() = default;
  const std::string& get() const noexcept { return v_; }
  friend bool operator==(const copy_counted& a, const copy_counted& b) { return a.v_ == b.v_; }

 private:
  std::string v_;
};

// ---------------------------------------------------------------------------------------------
// Fault injection

/// The exception thrown by faulty_hash, faulty_equal and faulty_value.
struct injected_fault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A one-shot switch: after arm(n), the n-th call of tick() throws, then the switch is off.
/// calls() counts every tick since reset(), armed or not.
class fault_point {
 public:
  void arm(long n) noexcept { countdown_.store(n); }
  void disarm() noexcept { countdown_.store(0); }
  void reset() noexcept {
    countdown_.store(0);
    calls_.store(0);
    fired_.store(false);
  }
  bool fired() const noexcept { return fired_.load(); }
  void clear_fired() noexcept { fired_.store(false); }
  long calls() const noexcept { return calls_.load(); }
  /// Returns true if this call is the armed one (the caller throws).
  bool tick() noexcept {
    calls_.fetch_add(1);
    long c = countdown_.load();
    while (c > 0) {
      if (countdown_.compare_exchange_weak(c, c - 1)) {
        if (c == 1) {
          fired_.store(true);
          return true;
        }
        return false;
      }
    }
    return false;
  }

 private:
  std::atomic<long> countdown_{0};
  std::atomic<long> calls_{0};
  std::atomic<bool> fired_{false};
};

inline fault_point& hash_faults() {
  static fault_point p;
  return p;
}
inline fault_point& equal_faults() {
  static fault_point p;
  return p;
}
inline fault_point& copy_faults() {
  static fault_point p;
  return p;
}
inline fault_point& alloc_faults() {
  static fault_point p;
  return p;
}

inline void reset_all_faults() {
  hash_faults().reset();
  equal_faults().reset();
  copy_faults().reset();
  alloc_faults().reset();
}

/// Hash that throws injected_fault when hash_faults() fires.
template <class Key, class Inner = std::hash<Key>>
struct faulty_hash {
  std::size_t operator()(const Key& k) const {
    if (hash_faults().tick()) throw injected_fault("injected fault in Hash");
    return Inner{}(k);
  }
};

/// KeyEqual that throws injected_fault when equal_faults() fires.
template <class Key>
struct faulty_equal {
  bool operator()(const Key& a, const Key& b) const {
    if (equal_faults().tick()) throw injected_fault("injected fault in KeyEqual");
    return a == b;
  }
};

/// A value whose copy (construction or assignment) throws when copy_faults() fires.
/// Moves never throw. Not trivially copyable: stored out of line.
class faulty_value {
 public:
  /// Live instances, to find values leaked on an exception path.
  static std::atomic<long>& live() {
    static std::atomic<long> n{0};
    return n;
  }
  explicit faulty_value(std::uint64_t v = 0) : v_(v), pad_("fv") { live().fetch_add(1); }
  faulty_value(const faulty_value& o) : v_(o.v_), pad_(o.pad_) {
    if (copy_faults().tick()) throw injected_fault("injected fault in a value copy");
    live().fetch_add(1);
  }
  faulty_value(faulty_value&& o) noexcept : v_(o.v_), pad_(std::move(o.pad_)) {
    live().fetch_add(1);
  }
  faulty_value& operator=(const faulty_value& o) {
    if (copy_faults().tick()) throw injected_fault("injected fault in a value copy");
    v_ = o.v_;
    pad_ = o.pad_;
    return *this;
  }
  faulty_value& operator=(faulty_value&& o) noexcept {
    v_ = o.v_;
    pad_ = std::move(o.pad_);
    return *this;
  }
  ~faulty_value() { live().fetch_sub(1); }
  std::uint64_t get() const noexcept { return v_; }
  friend bool operator==(const faulty_value& a, const faulty_value& b) noexcept {
    return a.v_ == b.v_;
  }

 private:
  std::uint64_t v_;
  std::string pad_;
};

// ---------------------------------------------------------------------------------------------
// Memory resources

/// Shared state of checked_memory / faulty_memory: every live block with its size, alignment
/// and node; counters; and errors seen (deallocate of an unknown block or with other
/// parameters than the allocation's).
struct memory_ledger {
  struct block {
    std::size_t bytes;
    std::size_t align;
    numamap::node_id node;
  };
  std::mutex mutex;
  std::unordered_map<const void*, block> live;
  std::atomic<std::size_t> live_bytes{0};
  std::atomic<std::size_t> allocations{0};    // total allocate calls that succeeded
  std::atomic<std::size_t> deallocations{0};  // total deallocate calls
  std::atomic<std::size_t> errors{0};
  std::string first_error;  // guarded by mutex
  bool throw_on_fault = false;

  void error(std::string what) {
    errors.fetch_add(1);
    std::lock_guard<std::mutex> lock(mutex);
    if (first_error.empty()) first_error = std::move(what);
  }
  std::size_t live_blocks() {
    std::lock_guard<std::mutex> lock(mutex);
    return live.size();
  }
  std::string error_text() {
    std::lock_guard<std::mutex> lock(mutex);
    return first_error;
  }
};

/// A NodeMemory over operator new that checks every deallocate against its allocate and
/// counts live bytes; copies share one ledger. With `faulty == true` (faulty_memory), the
/// allocation on which alloc_faults() fires throws std::bad_alloc.
template <bool Faulty>
class basic_checked_memory {
 public:
  basic_checked_memory() : ledger_(std::make_shared<memory_ledger>()) {}

  void* allocate(std::size_t bytes, std::size_t align, numamap::node_id node) {
    if (Faulty && alloc_faults().tick()) throw std::bad_alloc();
    if (align == 0 || (align & (align - 1)) != 0) {
      ledger_->error("allocate with an alignment that is not a power of two: " +
                     std::to_string(align));
    }
    void* p = ::operator new(bytes == 0 ? 1 : bytes, std::align_val_t(align));
    {
      std::lock_guard<std::mutex> lock(ledger_->mutex);
      ledger_->live.emplace(p, memory_ledger::block{bytes, align, node});
    }
    ledger_->live_bytes.fetch_add(bytes);
    ledger_->allocations.fetch_add(1);
    return p;
  }

  void deallocate(void* p, std::size_t bytes, std::size_t align, numamap::node_id node) noexcept {
    ledger_->deallocations.fetch_add(1);
    memory_ledger::block b{};
    bool known = false;
    {
      std::lock_guard<std::mutex> lock(ledger_->mutex);
      auto it = ledger_->live.find(p);
      if (it != ledger_->live.end()) {
        b = it->second;
        known = true;
        ledger_->live.erase(it);
      }
    }
    if (!known) {
      ledger_->error("deallocate of a block not allocated here (double free?), bytes=" +
                     std::to_string(bytes));
      return;  // do not free what we do not own
    }
    if (b.bytes != bytes || b.align != align || b.node != node) {
      ledger_->error("deallocate(bytes=" + std::to_string(bytes) +
                     ", align=" + std::to_string(align) + ", node=" + std::to_string(node) +
                     ") of a block allocated with (bytes=" + std::to_string(b.bytes) + ", align=" +
                     std::to_string(b.align) + ", node=" + std::to_string(b.node) + ")");
    }
    ledger_->live_bytes.fetch_sub(b.bytes);
    ::operator delete(p, std::align_val_t(b.align));
  }

  std::string name() const { return Faulty ? "faulty_memory" : "checked_memory"; }

  memory_ledger& ledger() const noexcept { return *ledger_; }
  std::shared_ptr<memory_ledger> shared_ledger() const noexcept { return ledger_; }

 private:
  std::shared_ptr<memory_ledger> ledger_;
};

using checked_memory = basic_checked_memory<false>;
using faulty_memory = basic_checked_memory<true>;

/// The NodeMemory requirement and nothing more: no name(), note() or verify_placement(), so
/// that what numamap does without them can be checked.
struct minimal_memory {
  // NOLINTNEXTLINE(readability-convert-member-functions-to-static): the NodeMemory interface
  void* allocate(std::size_t bytes, std::size_t align, numamap::node_id /*node*/) {
    return ::operator new(bytes == 0 ? 1 : bytes, std::align_val_t(align));
  }
  // NOLINTNEXTLINE(readability-convert-member-functions-to-static): the NodeMemory interface
  void deallocate(void* p, std::size_t /*bytes*/, std::size_t align,
                  numamap::node_id /*node*/) noexcept {
    ::operator delete(p, std::align_val_t(align));
  }
};

// ---------------------------------------------------------------------------------------------
// Heterogeneous lookup

/// Transparent hash for std::string keys: hashes anything convertible to std::string_view.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

/// Transparent equality for std::string keys.
struct string_equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

/// A string key that counts how often one is constructed (from a string_view, copied or
/// moved), so a test can prove a heterogeneous lookup builds no Key.
class tracked_string {
 public:
  static std::atomic<long>& constructions() {
    static std::atomic<long> n{0};
    return n;
  }
  explicit tracked_string(std::string_view s) : s_(s) { constructions().fetch_add(1); }
  tracked_string(const tracked_string& o) : s_(o.s_) { constructions().fetch_add(1); }
  tracked_string(tracked_string&& o) noexcept : s_(std::move(o.s_)) {
    constructions().fetch_add(1);
  }
  tracked_string& operator=(const tracked_string&) = default;
  tracked_string& operator=(tracked_string&&) noexcept = default;
  ~tracked_string() = default;
  std::string_view view() const noexcept { return s_; }
  friend bool operator==(const tracked_string& a, const tracked_string& b) { return a.s_ == b.s_; }

 private:
  std::string s_;
};

struct tracked_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
  std::size_t operator()(const tracked_string& s) const noexcept { return (*this)(s.view()); }
};

struct tracked_equal {
  using is_transparent = void;
  static std::string_view v(std::string_view s) noexcept { return s; }
  static std::string_view v(const tracked_string& s) noexcept { return s.view(); }
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return v(a) == v(b);
  }
};

}  // namespace numamap_test
