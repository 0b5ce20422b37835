// A minimal fork-join loop: `threads` workers (the calling thread is one of them) pull job
// indices from a shared counter. The first exception thrown by a job stops the others from
// starting new jobs and is rethrown to the caller after all workers have joined.
// And the cancellation check every pass makes between its jobs.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "error.h"

namespace mother {

// The caller's cancellation flag (shared with JS through an Int32Array, written there with
// Atomics.store): non-zero means stop. Throws Error(Cancelled, "<what> cancelled").
inline void check_cancel(const int32_t* cancel, const char* what) {
  if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) != 0)
    throw Error(ErrorCode::Cancelled, "", "", std::string(what) + " cancelled");
}

inline unsigned resolve_threads(unsigned requested) {
  if (requested > 0) return requested;
  unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? hc : 1;
}

template <typename Fn>
void parallel_for(size_t njobs, unsigned threads, Fn&& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mu;
  auto worker = [&]() {
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) return;
      size_t j = next.fetch_add(1, std::memory_order_relaxed);
      if (j >= njobs) return;
      try {
        fn(j);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        failed.store(true);
        return;
      }
    }
  };
  unsigned n = threads == 0 ? 1 : threads;
  if (n > njobs) n = njobs == 0 ? 1 : static_cast<unsigned>(njobs);
  std::vector<std::thread> pool;
  pool.reserve(n - 1);
  for (unsigned t = 1; t < n; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace mother
