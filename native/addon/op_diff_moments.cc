// diffMoments(models: { files, index }[], tensors: { name, names?: (string | null)[] }[],
//             options: { maxRows, simd, threads }, cancel?: Int32Array)
//   => Promise<{ tensors: ({ name, rows, cols, sampled, count, mean, m2, m3, m4, nonFinite } | null)[] }>
// Per tensor (by `name`, or names[m] in model m; null where fewer than two models hold it as a
// 2-D view with statistics of one shape): per pair of models (i < j, in order), the moments of
// the difference on an evenly strided sample of at most maxRows rows
// (native/pairwise/diff_moments.h), as Float64Arrays of one value per pair.
#include <string>
#include <utility>
#include <vector>

#include "../core/parallel.h"
#include "../formats/reader.h"
#include "../pairwise/diff_moments.h"
#include "args.h"
#include "exports.h"
#include "promise_worker.h"

namespace mother_addon {

namespace {

struct NamedTensor {
  std::string name;
  std::vector<std::string> names;  // per model ("" : none); empty: `name` in every model
  std::vector<bool> absent;        // per model: names[m] was null
};

struct DiffMomentsOp {
  std::vector<std::pair<std::vector<std::string>, std::string>> models;
  std::vector<NamedTensor> tensors;
  const mother::Kernels* kernels;
  uint64_t max_rows;
  unsigned threads;

  std::vector<mother::DiffMoments> results;

  void run(ProgressChannel& progress) {
    std::vector<mother::Model> opened;
    opened.reserve(models.size());
    for (const auto& m : models) opened.push_back(mother::open_model(m.first, m.second));
    results.resize(tensors.size());
    mother::parallel_for(tensors.size(), mother::resolve_threads(threads), [&](size_t t) {
      const NamedTensor& nt = tensors[t];
      std::vector<const mother::TensorView*> views(opened.size(), nullptr);
      for (size_t m = 0; m < opened.size(); ++m) {
        if (!nt.absent.empty() && nt.absent[m]) continue;
        const std::string& want = nt.names.empty() ? nt.name : nt.names[m];
        for (const auto& v : opened[m].tensors)
          if (v.name == want) {
            views[m] = &v;
            break;
          }
      }
      results[t] = mother::diff_moments(kernels, views, max_rows, progress.cancel());
    });
  }

  Napi::Value toJs(Napi::Env env) const {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array arr = Napi::Array::New(env, results.size());
    for (size_t t = 0; t < results.size(); ++t) {
      const auto& r = results[t];
      if (!r.ok) {
        arr.Set(t, env.Null());
        continue;
      }
      const size_t P = r.pairs.size();
      std::vector<double> count(P), mean(P), m2(P), m3(P), m4(P), bad(P);
      for (size_t p = 0; p < P; ++p) {
        const auto& m = r.pairs[p];
        count[p] = m.n;
        mean[p] = m.mean + m.mean_lo;
        m2[p] = m.m2;
        m3[p] = m.m3;
        m4[p] = m.m4;
        bad[p] = static_cast<double>(m.nan + m.inf);
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", tensors[t].name);
      o.Set("rows", Napi::Number::New(env, static_cast<double>(r.rows)));
      o.Set("cols", Napi::Number::New(env, static_cast<double>(r.cols)));
      o.Set("sampled", Napi::Number::New(env, static_cast<double>(r.sampled)));
      o.Set("count", f64_array(env, count));
      o.Set("mean", f64_array(env, mean));
      o.Set("m2", f64_array(env, m2));
      o.Set("m3", f64_array(env, m3));
      o.Set("m4", f64_array(env, m4));
      o.Set("nonFinite", f64_array(env, bad));
      arr.Set(t, o);
    }
    out.Set("tensors", arr);
    return out;
  }
};

}  // namespace

Napi::Value DiffMomentsFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "models must be an array");
  Napi::Array ms = info[0].As<Napi::Array>();
  std::vector<std::pair<std::vector<std::string>, std::string>> models;
  for (uint32_t i = 0; i < ms.Length(); ++i) {
    Napi::Value e = ms.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(env, "models[] must be objects");
    Napi::Object o = e.As<Napi::Object>();
    auto files = string_array(o.Get("files"), "models[].files");
    if (!o.Get("index").IsString()) throw Napi::TypeError::New(env, "models[].index must be a string");
    std::string index = o.Get("index").As<Napi::String>().Utf8Value();
    if (files.empty() && index.empty()) throw Napi::TypeError::New(env, "models[]: no files to read");
    models.emplace_back(std::move(files), std::move(index));
  }
  if (models.size() < 2 || models.size() > 4096) throw Napi::RangeError::New(env, "models: 2 to 4096 models");
  if (!info[1].IsArray()) throw Napi::TypeError::New(env, "tensors must be an array");
  Napi::Array ts = info[1].As<Napi::Array>();
  std::vector<NamedTensor> tensors;
  for (uint32_t i = 0; i < ts.Length(); ++i) {
    Napi::Value e = ts.Get(i);
    if (!e.IsObject() || !e.As<Napi::Object>().Get("name").IsString()) throw Napi::TypeError::New(env, "tensors[] must be { name, names? }");
    Napi::Object o = e.As<Napi::Object>();
    NamedTensor nt;
    nt.name = o.Get("name").As<Napi::String>().Utf8Value();
    Napi::Value names = o.Get("names");
    if (names.IsArray()) {
      Napi::Array a = names.As<Napi::Array>();
      if (a.Length() != models.size()) throw Napi::RangeError::New(env, "tensors[].names must have one entry per model");
      for (uint32_t m = 0; m < a.Length(); ++m) {
        Napi::Value x = a.Get(m);
        if (x.IsString()) {
          nt.names.push_back(x.As<Napi::String>().Utf8Value());
          nt.absent.push_back(false);
        } else if (x.IsNull() || x.IsUndefined()) {
          nt.names.emplace_back();
          nt.absent.push_back(true);
        } else {
          throw Napi::TypeError::New(env, "tensors[].names[] must be strings or null");
        }
      }
    } else if (!names.IsUndefined() && !names.IsNull()) {
      throw Napi::TypeError::New(env, "tensors[].names must be an array");
    }
    tensors.push_back(std::move(nt));
  }
  Napi::Object opts = options_arg(info, 2);
  const mother::Kernels* kernels = kernels_or_throw(env, opt_str(opts, "simd"));
  const uint32_t max_rows = opt_u32(opts, "maxRows", 256);
  if (max_rows < 1 || max_rows > 65536) throw Napi::RangeError::New(env, "maxRows must be an integer from 1 to 65536");
  const unsigned threads = opt_u32(opts, "threads", 0);
  return PromiseWorker<DiffMomentsOp>::start(env, "mother.diffMoments",
                                             DiffMomentsOp{std::move(models), std::move(tensors), kernels, max_rows, threads, {}},
                                             Napi::Value(), info[3]);
}

}  // namespace mother_addon
