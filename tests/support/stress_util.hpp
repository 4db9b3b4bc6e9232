// tests/support/stress_util.hpp — threads for the stress tests.
//
// Catch2 assertions are not thread-safe, so worker threads never assert: they record the
// first problem they see in an `error_log`, and the test thread checks it after joining.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace numamap_test {

/// First error per run, plus a count; safe to call from any thread.
class error_log {
 public:
  void add(const std::string& what) {
    count_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mutex_);
    if (messages_.size() < 8) messages_.push_back(what);
  }
  std::size_t count() const { return count_.load(); }
  /// Also makes a worker stop early: a failed stress run need not run to the end.
  bool failed() const { return count_.load(std::memory_order_relaxed) != 0; }
  std::string text() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string s;
    for (const auto& m : messages_) s += m + "\n";
    return s;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
  std::atomic<std::size_t> count_{0};
};

/// Runs fn(thread_index) on `n` threads that start together, and joins them.
inline void run_threads(std::size_t n, const std::function<void(std::size_t)>& fn) {
  std::atomic<std::size_t> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (std::size_t t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      fn(t);
    });
  }
  while (ready.load() != n) std::this_thread::yield();
  go.store(true);
  for (auto& th : threads) th.join();
}

/// A reusable barrier for a fixed number of threads (std::barrier is C++20).
class spin_barrier {
 public:
  explicit spin_barrier(std::size_t n) : n_(n) {}
  void arrive_and_wait() {
    const std::size_t gen = generation_.load();
    if (arrived_.fetch_add(1) + 1 == n_) {
      arrived_.store(0);
      generation_.fetch_add(1);
    } else {
      while (generation_.load() == gen) std::this_thread::yield();
    }
  }

 private:
  const std::size_t n_;
  std::atomic<std::size_t> arrived_{0};
  std::atomic<std::size_t> generation_{0};
};

}  // namespace numamap_test
