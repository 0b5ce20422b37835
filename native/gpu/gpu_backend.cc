#include "gpu_backend.h"

#include <dlfcn.h>

#include <map>
#include <memory>

#include "../core/error.h"

namespace mother {

GpuBackend& GpuBackend::open(const std::string& library) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<GpuBackend>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(library);
  if (it != loaded.end()) return *it->second;
  auto fail = [&](const std::string& why) { return Error(ErrorCode::Backend, library, "", why); };
  if (library.empty()) throw fail("no GPU backend library (build one with `npm run build:cuda`)");
  // RTLD_LOCAL: the backend's symbols (and its static CUDA runtime) stay its own.
  void* h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    throw fail(std::string("cannot load the GPU backend library: ") + (e ? e : "unknown dlopen error"));
  }
  auto get = reinterpret_cast<mother_gpu_get_api_fn>(dlsym(h, "mother_gpu_get_api"));
  if (!get) {
    dlclose(h);
    throw fail("not a mother GPU backend (no symbol mother_gpu_get_api)");
  }
  const mother_gpu_api* api = get();
  if (api && api->abi_version == MOTHER_GPU_ABI_VERSION && api->struct_size < sizeof(mother_gpu_api)) {
    const unsigned have = api->struct_size;
    dlclose(h);
    throw fail("GPU backend built for an older revision of interface version " + std::to_string(MOTHER_GPU_ABI_VERSION) +
               " (" + std::to_string(have) + " bytes of entry points, this addon needs " + std::to_string(sizeof(mother_gpu_api)) +
               "): rebuild it with `npm run build:cuda`");
  }
  if (!api || api->abi_version != MOTHER_GPU_ABI_VERSION || api->struct_size < sizeof(mother_gpu_api)) {
    const unsigned v = api ? api->abi_version : 0;
    dlclose(h);
    throw fail("GPU backend built for interface version " + std::to_string(v) + ", this addon needs " +
               std::to_string(MOTHER_GPU_ABI_VERSION) + ": rebuild it with `npm run build:cuda`");
  }
  char err[512] = {0};
  mother_gpu_ctx* ctx = nullptr;
  if (api->open(0, &ctx, err, sizeof(err)) != 0) {
    // The library stays loaded: unloading a CUDA runtime that has started is not safe.
    throw fail(err[0] ? err : "the GPU backend could not open a device");
  }
  std::unique_ptr<GpuBackend> b(new GpuBackend());
  b->library_ = library;
  b->handle_ = h;
  b->api_ = api;
  b->ctx_ = ctx;
  if (api->info(ctx, &b->info_) != 0) {
    std::string why = api->last_error(ctx);
    api->close(ctx);
    throw fail("cannot query the device: " + why);
  }
  if (b->info_.streams == 0) b->info_.streams = 1;
  GpuBackend& ref = *b;
  loaded.emplace(library, std::move(b));
  return ref;
}

void GpuBackend::check(int rc, const char* what, const std::string& file, const std::string& tensor) const {
  if (rc == 0) return;
  throw Error(ErrorCode::Backend, file, tensor,
              std::string(info_.backend) + " " + what + " failed: " + api_->last_error(ctx_));
}

}  // namespace mother
