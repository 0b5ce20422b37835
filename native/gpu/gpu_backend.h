// The host side of the GPU path: loading a backend library (gpu_api.h) with dlopen, and the two
// passes that run on it, scan_model_gpu (model_stats.h) and pairwise_gpu (pairwise.h).
//
// Both passes stream the memory-mapped tensors through page-locked staging buffers: worker
// threads copy (and then release) the mapped pages of the next slot while the device copies
// and reduces the previous ones, each slot on its own stream. Partials come back in job order
// and are merged with the same code as the CPU path, so results do not depend on timing.
// Device memory is a few slots of bounded size, whatever the model size.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>

#include "gpu_api.h"

namespace mother {

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
