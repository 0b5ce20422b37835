// simdPaths() => string[]: the kernel sets this CPU runs, best last; simdDefault() => string:
// the one passes use when none is named (MOTHER_SIMD, else the best).
#include "../stats/dispatch.h"
#include "args.h"
#include "exports.h"

namespace mother_addon {

Napi::Value SimdPaths(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto avail = mother::available_kernels();
  Napi::Array a = Napi::Array::New(env, avail.size());
  for (size_t i = 0; i < avail.size(); ++i) a.Set(i, avail[i]->name);
  return a;
}

Napi::Value SimdDefault(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kernels_or_throw(info.Env(), "")->name);
}

}  // namespace mother_addon
