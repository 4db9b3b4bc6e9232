// tests/support/watchdog.hpp — turns a hang into a failure.
//
// A test that could deadlock (a callback re-entering the map, threads racing on one lock)
// creates a `watchdog` for its duration. If the watchdog is still alive after its limit, it
// prints what was running and aborts the process: CTest reports a crash with a message
// instead of waiting for its own timeout on a silent hang.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "test_env.hpp"

namespace numamap_test {

class watchdog {
 public:
  /// Aborts the process if not destroyed within `limit` (times 4 under TSan).
  watchdog(std::string what, std::chrono::seconds limit) : what_(std::move(what)) {
    if (under_tsan) limit *= 4;
    thread_ = std::thread([this, limit] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
        std::fprintf(stderr,
                     "\nnumamap watchdog: '%s' did not finish within %lld s: deadlock or "
                     "livelock in the map (NUMAMAP_TEST_SEED=%llu)\n",
                     what_.c_str(), static_cast<long long>(limit.count()),
                     static_cast<unsigned long long>(base_seed()));
        std::fflush(stderr);
        std::abort();
      }
    });
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::string what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace numamap_test
