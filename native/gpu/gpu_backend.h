// The host side of the GPU path: loading a backend library (gpu_api.h) with dlopen and opening
// its device. The passes that run on it live beside their engines (stats/model_stats_gpu.cc,
// pairwise/pairwise_gpu.cc) and share the staging of gpu/staging.h.
#pragma once
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

#include "../core/moments.h"
#include "gpu_api.h"

namespace mother {

// The backend's moments are Moments, field for field (gpu_api.h).
static_assert(sizeof(Moments) == sizeof(mother_gpu_moments), "Moments layout");
inline Moments from_gpu(const mother_gpu_moments& g) {
  Moments m;
  std::memcpy(static_cast<void*>(&m), &g, sizeof(m));
  return m;
}

class GpuBackend {
 public:
  // Loads `library` and opens its device 0, once per path for the life of the process
  // (later calls return the same backend; a failure is not remembered). Throws
  // Error(Backend) saying why: no such library, not a backend, ABI mismatch, no driver,
  // no device.
  static GpuBackend& open(const std::string& library);

  const mother_gpu_api& api() const { return *api_; }
  mother_gpu_ctx* ctx() const { return ctx_; }
  const mother_gpu_info& info() const { return info_; }
  const std::string& library() const { return library_; }
  // One pass at a time per device.
  std::mutex& mutex() { return mu_; }
  // Throws Error(Backend) with the backend's message when rc != 0.
  void check(int rc, const char* what, const std::string& file = "", const std::string& tensor = "") const;

 private:
  GpuBackend() = default;
  std::string library_;
  void* handle_ = nullptr;
  const mother_gpu_api* api_ = nullptr;
  mother_gpu_ctx* ctx_ = nullptr;
  mother_gpu_info info_{};
  std::mutex mu_;
};

}  // namespace mother
