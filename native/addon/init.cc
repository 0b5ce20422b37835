// The addon's exports. Each is defined in its own file (exports.h).
#include <napi.h>

#include "exports.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace mother_addon;
  exports.Set("scan", Napi::Function::New(env, Scan, "scan"));
  exports.Set("inspect", Napi::Function::New(env, Inspect, "inspect"));
  exports.Set("rowHashes", Napi::Function::New(env, RowHashes, "rowHashes"));
  exports.Set("spectralEntropy", Napi::Function::New(env, SpectralEntropy, "spectralEntropy"));
  exports.Set("loraProducts", Napi::Function::New(env, LoraProducts, "loraProducts"));
  exports.Set("diffMoments", Napi::Function::New(env, DiffMomentsFn, "diffMoments"));
  exports.Set("pairwise", Napi::Function::New(env, Pairwise, "pairwise"));
  exports.Set("gpuOpen", Napi::Function::New(env, GpuOpen, "gpuOpen"));
  exports.Set("formatOf", Napi::Function::New(env, FormatOf, "formatOf"));
  exports.Set("simdPaths", Napi::Function::New(env, SimdPaths, "simdPaths"));
  exports.Set("simdDefault", Napi::Function::New(env, SimdDefault, "simdDefault"));
  exports.Set("errorCodes", ErrorCodes(env));
  exports.Set("layouts", Layouts(env));
  exports.Set("defaultSketchSeed", DefaultSketchSeed(env));
  exports.Set("testing", Testing(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(mother, Init)
