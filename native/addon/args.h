// Conversion between JS values and the core's types, both ways. Only type guards: an
// argument of the wrong type throws a TypeError (a number that is no valid uint32 a
// RangeError); option values are validated in TypeScript (lib/).
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../gpu/gpu_backend.h"
#include "../stats/kernels.h"

namespace mother_addon {

std::vector<std::string> string_array(const Napi::Value& v, const char* what);
// info[i] when it is an object, else an empty object (options are optional).
Napi::Object options_arg(const Napi::CallbackInfo& info, size_t i);
// o[key] as a uint32 / string, dflt / "" when undefined or null.
uint32_t opt_u32(const Napi::Object& o, const char* key, uint32_t dflt);
std::string opt_str(const Napi::Object& o, const char* key);
// o[key] as a 64-bit unsigned integer, from a BigInt or a safe-integer number; dflt when
// undefined or null.
uint64_t opt_u64(const Napi::Object& o, const char* key, uint64_t dflt);
// v when it is a string, else "" (the optional simd argument of the kernel functions).
std::string str_or_empty(const Napi::Value& v);

// The kernel set named simd ("" : the default); a JS Error (ERR_UNSUPPORTED,
// ERR_INVALID_ARGUMENT) when there is none of that name here.
const mother::Kernels* kernels_or_throw(Napi::Env env, const std::string& simd);

// Where a pass runs: the CPU, or the GPU backend library at `library` (opened on the worker
// thread: loading CUDA takes a while). The JS side resolves 'auto' and MOTHER_BACKEND.
struct DeviceChoice {
  bool gpu = false;
  std::string library;
  mother::GpuBackend* open() const { return gpu ? &mother::GpuBackend::open(library) : nullptr; }
};
DeviceChoice device_choice(const Napi::Object& o);  // o.backend, o.gpuLibrary
// out.backend, and out.device / out.deviceBackend when g is set.
void put_device(Napi::Env env, Napi::Object out, const mother::GpuBackend* g);

Napi::Float64Array f64_array(Napi::Env env, const std::vector<double>& v);
Napi::Array number_array(Napi::Env env, const std::vector<uint64_t>& v);

}  // namespace mother_addon
