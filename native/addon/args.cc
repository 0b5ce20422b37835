#include "args.h"

#include <cstring>

#include "../stats/dispatch.h"
#include "errors.h"

namespace mother_addon {

std::vector<std::string> string_array(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + "[" + std::to_string(i) + "] must be a string");
    out.push_back(x.As<Napi::String>().Utf8Value());
  }
  return out;
}

Napi::Object options_arg(const Napi::CallbackInfo& info, size_t i) {
  return info[i].IsObject() ? info[i].As<Napi::Object>() : Napi::Object::New(info.Env());
}

uint32_t opt_u32(const Napi::Object& o, const char* key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 4294967295.0 || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be a non-negative integer");
  return static_cast<uint32_t>(d);
}

uint64_t opt_u64(const Napi::Object& o, const char* key, uint64_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (v.IsBigInt()) {
    bool lossless = false;
    const uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(o.Env(), std::string(key) + " must be a BigInt from 0 to 2^64 - 1");
    return x;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a BigInt or a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be a non-negative safe integer (or a BigInt)");
  return static_cast<uint64_t>(d);
}

std::string opt_str(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return "";
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::string str_or_empty(const Napi::Value& v) { return v.IsString() ? v.As<Napi::String>().Utf8Value() : ""; }

const mother::Kernels* kernels_or_throw(Napi::Env env, const std::string& simd) {
  try {
    return mother::select_kernels(simd);
  } catch (const mother::Error& e) {
    throw_js(env, e);
  }
}

DeviceChoice device_choice(const Napi::Object& o) {
  DeviceChoice d;
  const std::string backend = opt_str(o, "backend");
  if (backend.empty() || backend == "cpu") return d;
  if (backend != "cuda") throw Napi::TypeError::New(o.Env(), "backend must be 'cpu' or 'cuda', got '" + backend + "'");
  d.gpu = true;
  d.library = opt_str(o, "gpuLibrary");
  return d;
}

void put_device(Napi::Env env, Napi::Object out, const mother::GpuBackend* g) {
  out.Set("backend", Napi::String::New(env, g ? "cuda" : "cpu"));
  if (g) {
    out.Set("device", Napi::String::New(env, g->info().device));
    out.Set("deviceBackend", Napi::String::New(env, g->info().backend));
  }
}

Napi::Float64Array f64_array(Napi::Env env, const std::vector<double>& v) {
  Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(double));
  return a;
}

Napi::Array number_array(Napi::Env env, const std::vector<uint64_t>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(i, Napi::Number::New(env, static_cast<double>(v[i])));
  return a;
}

}  // namespace mother_addon
