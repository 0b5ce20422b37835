// rowHashes(files: string[], index: string, tensors: string[], options: {simd}, cancel?: Int32Array)
//   => Promise<{ tensors: ({ name, rows, rowElems, f32, f16, bf16 } | null)[] }>
// Per named tensor of the model (null where the model has none, none with statistics, or rows
// that are not whole blocks of its storage type): the
// hash of each logical row at float32, float16 and bfloat16 (native/stats/row_hash.h), as
// Float64Arrays of the hashes' top 53 bits (exact integers: compare them with ===).
#include <string>
#include <utility>
#include <vector>

#include "../formats/reader.h"
#include "../stats/row_hash.h"
#include "args.h"
#include "exports.h"
#include "promise_worker.h"

namespace mother_addon {

namespace {

struct RowHashesOp {
  std::vector<std::string> files;
  std::string index;
  std::vector<std::string> names;
  const mother::Kernels* kernels;

  std::vector<std::pair<bool, mother::RowHashes>> results;

  void run(ProgressChannel& progress) {
    mother::Model model = mother::open_model(files, index);
    results.resize(names.size());
    for (size_t t = 0; t < names.size(); ++t) {
      for (const auto& v : model.tensors) {
        if (v.name != names[t] || !v.has_stats() || v.count == 0) continue;
        mother::RowHashes h = mother::row_hashes(kernels, v, progress.cancel());
        if (h.rows > 0) results[t] = {true, std::move(h)};
        break;
      }
    }
  }

  static Napi::Float64Array top53(Napi::Env env, const std::vector<uint64_t>& h) {
    Napi::Float64Array a = Napi::Float64Array::New(env, h.size());
    for (size_t i = 0; i < h.size(); ++i) a[i] = static_cast<double>(h[i] >> 11);
    return a;
  }

  Napi::Value toJs(Napi::Env env) const {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array tensors = Napi::Array::New(env, results.size());
    for (size_t t = 0; t < results.size(); ++t) {
      if (!results[t].first) {
        tensors.Set(t, env.Null());
        continue;
      }
      const auto& r = results[t].second;
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", names[t]);
      o.Set("rows", Napi::Number::New(env, static_cast<double>(r.rows)));
      o.Set("rowElems", Napi::Number::New(env, static_cast<double>(r.row_elems)));
      o.Set("f32", top53(env, r.f32));
      o.Set("f16", top53(env, r.f16));
      o.Set("bf16", top53(env, r.bf16));
      tensors.Set(t, o);
    }
    out.Set("tensors", tensors);
    return out;
  }
};

}  // namespace

Napi::Value RowHashes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto files = string_array(info[0], "files");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "index must be a string");
  std::string index = info[1].As<Napi::String>().Utf8Value();
  if (files.empty() && index.empty()) throw Napi::TypeError::New(env, "no files to read");
  auto names = string_array(info[2], "tensors");
  Napi::Object opts = options_arg(info, 3);
  const mother::Kernels* kernels = kernels_or_throw(env, opt_str(opts, "simd"));
  return PromiseWorker<RowHashesOp>::start(env, "mother.rowHashes", RowHashesOp{std::move(files), std::move(index), std::move(names), kernels, {}},
                                           Napi::Value(), info[4]);
}

}  // namespace mother_addon
