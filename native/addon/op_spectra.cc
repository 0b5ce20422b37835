// spectralEntropy(files: string[], index: string, tensors: string[], options: {simd, maxDim}, cancel?: Int32Array)
//   => Promise<{ tensors: ({ name, rows, cols, blockRows, blockCols, entropy, top } | null)[] }>
// Per named tensor of the model (null where the model has none, none with statistics, it is
// not 2-D, or its rows are not whole blocks of its storage type): the spectral entropy of the
// tensor, or of its evenly strided maxDim x maxDim sub-block (native/stats/spectrum.h).
#include <string>
#include <utility>
#include <vector>

#include "../formats/reader.h"
#include "../stats/spectrum.h"
#include "args.h"
#include "exports.h"
#include "promise_worker.h"

namespace mother_addon {

namespace {

struct SpectraOp {
  std::vector<std::string> files;
  std::string index;
  std::vector<std::string> names;
  const mother::Kernels* kernels;
  uint64_t max_dim;

  std::vector<mother::Spectrum> results;

  void run(ProgressChannel& progress) {
    mother::Model model = mother::open_model(files, index);
    results.resize(names.size());
    for (size_t t = 0; t < names.size(); ++t) {
      for (const auto& v : model.tensors) {
        if (v.name != names[t]) continue;
        results[t] = mother::spectral_entropy(kernels, v, max_dim, progress.cancel());
        break;
      }
    }
  }

  Napi::Value toJs(Napi::Env env) const {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array tensors = Napi::Array::New(env, results.size());
    for (size_t t = 0; t < results.size(); ++t) {
      const auto& r = results[t];
      if (!r.ok) {
        tensors.Set(t, env.Null());
        continue;
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", names[t]);
      o.Set("rows", Napi::Number::New(env, static_cast<double>(r.rows)));
      o.Set("cols", Napi::Number::New(env, static_cast<double>(r.cols)));
      o.Set("blockRows", Napi::Number::New(env, static_cast<double>(r.block_rows)));
      o.Set("blockCols", Napi::Number::New(env, static_cast<double>(r.block_cols)));
      o.Set("entropy", Napi::Number::New(env, r.entropy));
      o.Set("top", Napi::Number::New(env, r.top));
      tensors.Set(t, o);
    }
    out.Set("tensors", tensors);
    return out;
  }
};

}  // namespace

Napi::Value SpectralEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto files = string_array(info[0], "files");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "index must be a string");
  std::string index = info[1].As<Napi::String>().Utf8Value();
  if (files.empty() && index.empty()) throw Napi::TypeError::New(env, "no files to read");
  auto names = string_array(info[2], "tensors");
  Napi::Object opts = options_arg(info, 3);
  const mother::Kernels* kernels = kernels_or_throw(env, opt_str(opts, "simd"));
  uint64_t max_dim = 512;
  if (opts.Has("maxDim") && !opts.Get("maxDim").IsUndefined()) {
    Napi::Value m = opts.Get("maxDim");
    double d = m.IsNumber() ? m.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 1 && d <= 65536) || d != static_cast<double>(static_cast<uint64_t>(d)))
      throw Napi::RangeError::New(env, "maxDim must be an integer from 1 to 65536");
    max_dim = static_cast<uint64_t>(d);
  }
  return PromiseWorker<SpectraOp>::start(env, "mother.spectralEntropy",
                                         SpectraOp{std::move(files), std::move(index), std::move(names), kernels, max_dim, {}},
                                         Napi::Value(), info[4]);
}

}  // namespace mother_addon
