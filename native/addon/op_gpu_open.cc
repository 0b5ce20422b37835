// gpuOpen(library: string) => Promise<GpuInfo>: loads the backend library and opens device 0
// (once per library per process), or rejects with ERR_BACKEND saying why.
#include <string>
#include <utility>

#include "../gpu/gpu_backend.h"
#include "exports.h"
#include "promise_worker.h"

namespace mother_addon {

namespace {

struct GpuOpenOp {
  std::string library;
  mother::GpuBackend* g = nullptr;

  void run(ProgressChannel&) { g = &mother::GpuBackend::open(library); }

  Napi::Value toJs(Napi::Env env) const {
    const mother_gpu_info& i = g->info();
    Napi::Object o = Napi::Object::New(env);
    o.Set("library", g->library());
    o.Set("backend", i.backend);
    o.Set("device", i.device);
    o.Set("computeCapability", std::to_string(i.cc_major) + "." + std::to_string(i.cc_minor));
    o.Set("multiprocessors", Napi::Number::New(env, i.multiprocessors));
    o.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(i.memory_bytes)));
    o.Set("runtimeVersion", Napi::Number::New(env, i.runtime_version));
    o.Set("driverVersion", Napi::Number::New(env, i.driver_version));
    return o;
  }
};

}  // namespace

Napi::Value GpuOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "library must be a string");
  return PromiseWorker<GpuOpenOp>::start(env, "mother.gpuOpen", GpuOpenOp{info[0].As<Napi::String>().Utf8Value()});
}

}  // namespace mother_addon
