// The lists the TypeScript side reads from the addon instead of keeping copies of them:
// errorCodes (core/error.h), layouts.summary (stats/summary.h) and defaultSketchSeed
// (pairwise/pairwise.h). Frozen: they are constants.
#include "../core/error.h"
#include "../pairwise/pairwise.h"
#include "../stats/summary.h"
#include "exports.h"

namespace mother_addon {

Napi::Value ErrorCodes(Napi::Env env) {
  size_t n = 0;
  const mother::ErrorCodeInfo* codes = mother::error_codes(&n);
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("code", codes[i].name);
    o.Set("kind", mother::error_kind_name(codes[i].kind));
    o.Set("what", codes[i].what);
    o.Freeze();
    a.Set(i, o);
  }
  a.Freeze();
  return a;
}

Napi::Value Layouts(Napi::Env env) {
  Napi::Array summary = Napi::Array::New(env, mother::kSummaryFields);
  for (size_t i = 0; i < mother::kSummaryFields; ++i) summary.Set(i, mother::kSummaryFieldNames[i]);
  summary.Freeze();
  Napi::Object o = Napi::Object::New(env);
  o.Set("summary", summary);
  o.Freeze();
  return o;
}

Napi::Value DefaultSketchSeed(Napi::Env env) { return Napi::BigInt::New(env, mother::kDefaultSketchSeed); }

}  // namespace mother_addon
