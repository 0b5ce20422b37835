// Progress from worker threads to a JS callback, throttled to one report per 100 ms (and the
// last one), plus the cancellation flag the caller shares through an Int32Array.
#pragma once
#include <napi.h>

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

namespace mother_addon {

class ProgressChannel {
 public:
  // Field names and values of one report, as numbers.
  using Fields = std::vector<std::pair<const char*, double>>;

  void open(Napi::Env env, Napi::Function fn, const char* name);
  void set_cancel(Napi::Int32Array flag);
  const int32_t* cancel() const { return cancel_; }
  bool is_open() const { return open_; }

  // Called from worker threads (never concurrently: the engines serialise progress calls).
  void report(Fields fields, bool last);
  // On the main thread, when the worker settles.
  void close();

 private:
  Napi::ThreadSafeFunction tsfn_;
  bool open_ = false;
  Napi::Reference<Napi::Int32Array> cancel_ref_;
  const int32_t* cancel_ = nullptr;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace mother_addon
