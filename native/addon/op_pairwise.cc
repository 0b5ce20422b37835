// pairwise(models: {files: string[], index: string}[], plan: {name, names?, rows: number[], rowElems, sketch?, moments?}[],
//          options, onProgress?, cancel?) => Promise<RawPairwise>
// options.differences (default true): sumAbs, maxDiff, minDiff; options.relatedness (default
// false): rShift1, rShift2, nShift.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/parallel.h"
#include "../formats/reader.h"
#include "../pairwise/pairwise.h"
#include "args.h"
#include "exports.h"
#include "promise_worker.h"

namespace mother_addon {

namespace {

struct ModelSpec {
  std::vector<std::string> files;
  std::string index;
};

struct RowMapSpec {
  uint32_t model;
  std::string tensor;
  std::shared_ptr<std::vector<uint32_t>> map;
};

struct PairwiseOp {
  std::vector<ModelSpec> specs;
  std::vector<mother::PairPlanTensor> plan;
  mother::PairwiseOptions options;  // run() adds the cancel flag, progress and the device
  DeviceChoice device;
  std::vector<RowMapSpec> row_maps;  // tests only (testing.pairwiseRowMaps)

  mother::PairwiseResult result;
  mother::GpuBackend* gpu = nullptr;
  unsigned threads_used = 0;

  void run(ProgressChannel& progress) {
    std::vector<mother::Model> models;
    models.reserve(specs.size());
    for (const auto& s : specs) models.push_back(mother::open_model(s.files, s.index));
    for (const RowMapSpec& r : row_maps) {
      if (r.model >= models.size()) throw mother::Error(mother::ErrorCode::InvalidArgument, "", r.tensor, "row map for a model not given");
      bool found = false;
      for (auto& v : models[r.model].tensors)
        if (v.name == r.tensor) {
          const uint64_t rows = v.shape.empty() ? 1 : v.shape[0];
          if (r.map->size() != rows) throw mother::Error(mother::ErrorCode::InvalidArgument, "", r.tensor, "row map length is not the row count");
          v.row_map = r.map.get();
          found = true;
        }
      if (!found) throw mother::Error(mother::ErrorCode::InvalidArgument, "", r.tensor, "row map for a tensor the model does not have");
    }
    mother::PairwiseOptions opt = options;
    opt.threads = threads_used = mother::resolve_threads(options.threads);
    opt.cancel = progress.cancel();
    opt.gpu = gpu = options.exact_rank ? nullptr : device.open();  // exact rank runs on the CPU
    if (progress.is_open()) {
      opt.progress = [&progress](const mother::PairwiseProgress& p) {
        progress.report({{"bytesDone", static_cast<double>(p.bytes_done)},
                         {"bytesTotal", static_cast<double>(p.bytes_total)},
                         {"svdDone", static_cast<double>(p.svd_done)},
                         {"svdTotal", static_cast<double>(p.svd_total)}},
                        // never throttled: the end of the read, and the start and end of the SVDs
                        p.bytes_done == p.bytes_total && (p.svd_done == 0 || p.svd_done == p.svd_total));
      };
    }
    result = mother::pairwise(models, plan, opt);
  }

  Napi::Value toJs(Napi::Env env) const {
    const size_t width = mother::kSummaryFields;
    Napi::Array tensors = Napi::Array::New(env, result.tensors.size());
    for (size_t t = 0; t < result.tensors.size(); ++t) {
      const auto& r = result.tensors[t];
      Napi::Object o = Napi::Object::New(env);
      o.Set("sumSq", f64_array(env, r.sum_sq));
      if (options.differences) {
        o.Set("sumAbs", f64_array(env, r.sum_abs));
        o.Set("maxDiff", f64_array(env, r.max_diff));
        o.Set("minDiff", f64_array(env, r.min_diff));
      }
      o.Set("count", f64_array(env, r.count));
      o.Set("skipped", f64_array(env, r.skipped));
      o.Set("meanA", f64_array(env, r.mean_a));
      o.Set("meanB", f64_array(env, r.mean_b));
      o.Set("varA", f64_array(env, r.var_a));
      o.Set("varB", f64_array(env, r.var_b));
      o.Set("oneMinusR", f64_array(env, r.one_minus_r));
      if (options.relatedness) {
        o.Set("rShift1", f64_array(env, r.r_shift1));
        o.Set("rShift2", f64_array(env, r.r_shift2));
        o.Set("nShift", f64_array(env, r.n_shift));
      }
      if (!r.moments.empty()) {
        std::vector<double> mv(r.moments.size() * width);
        for (size_t m = 0; m < r.moments.size(); ++m) mother::pack(r.moments[m], &mv[m * width]);
        o.Set("moments", f64_array(env, mv));
      }
      o.Set("grid", f64_array(env, r.grid));
      if (!r.rank.empty()) {
        o.Set("rank", f64_array(env, r.rank));
        o.Set("rankTol", f64_array(env, r.rank_tol));
        o.Set("sigmaMax", f64_array(env, r.sigma_max));
      }
      tensors.Set(t, o);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("tensors", tensors);
    out.Set("bytesRead", number_array(env, result.bytes_read));
    out.Set("seconds", Napi::Number::New(env, result.seconds));
    out.Set("svdTotal", Napi::Number::New(env, static_cast<double>(result.svd_total)));
    out.Set("simd", options.kernels->name);
    out.Set("threads", Napi::Number::New(env, threads_used));
    put_device(env, out, gpu);
    return out;
  }
};

PairwiseOp pairwise_op(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "models must be an array");
  if (!info[1].IsArray()) throw Napi::TypeError::New(env, "plan must be an array");
  Napi::Array ms = info[0].As<Napi::Array>();
  std::vector<ModelSpec> specs;
  for (uint32_t i = 0; i < ms.Length(); ++i) {
    Napi::Value v = ms.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "models[" + std::to_string(i) + "] must be an object");
    Napi::Object o = v.As<Napi::Object>();
    ModelSpec s;
    s.files = string_array(o.Get("files"), "files");
    s.index = opt_str(o, "index");
    specs.push_back(std::move(s));
  }
  Napi::Array pa = info[1].As<Napi::Array>();
  std::vector<mother::PairPlanTensor> plan;
  for (uint32_t i = 0; i < pa.Length(); ++i) {
    Napi::Value v = pa.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "plan entries must be objects");
    Napi::Object o = v.As<Napi::Object>();
    mother::PairPlanTensor t;
    t.name = opt_str(o, "name");
    if (o.Has("names") && o.Get("names").IsArray()) t.names = string_array(o.Get("names"), "names");
    Napi::Value rows = o.Get("rows");
    if (!rows.IsArray()) throw Napi::TypeError::New(env, "plan rows must be an array");
    Napi::Array ra = rows.As<Napi::Array>();
    for (uint32_t k = 0; k < ra.Length(); ++k) t.rows.push_back(static_cast<int64_t>(ra.Get(k).As<Napi::Number>().Int64Value()));
    Napi::Value re = o.Get("rowElems");
    t.row_elems = re.IsNumber() ? static_cast<uint64_t>(re.As<Napi::Number>().Int64Value()) : 1;
    t.sketch = o.Get("sketch").ToBoolean().Value();
    t.moments = o.Get("moments").ToBoolean().Value();
    plan.push_back(std::move(t));
  }
  Napi::Object opts = options_arg(info, 2);
  mother::PairwiseOptions o;
  o.kernels = kernels_or_throw(env, opt_str(opts, "simd"));
  o.threads = opt_u32(opts, "threads", 0);
  o.chunk_elems = opt_u32(opts, "chunkElems", 0);  // 0: default_chunk_elems(N)
  o.sketch_k = opt_u32(opts, "sketchK", 64);
  o.sketch_seed = opt_u64(opts, "sketchSeed", mother::kDefaultSketchSeed);
  o.exact_rank = opts.Get("exactRank").ToBoolean().Value();
  o.job_elems = opt_u32(opts, "jobElems", 0);
  const Napi::Value diffs = opts.Get("differences");
  o.differences = diffs.IsUndefined() || diffs.IsNull() ? true : diffs.ToBoolean().Value();
  o.relatedness = opts.Get("relatedness").ToBoolean().Value();
  return PairwiseOp{std::move(specs), std::move(plan), o, device_choice(opts), {}};
}

}  // namespace

Napi::Value Pairwise(const Napi::CallbackInfo& info) {
  return PromiseWorker<PairwiseOp>::start(info.Env(), "mother.pairwise", pairwise_op(info), info[3], info[4]);
}

Napi::Value PairwiseRowMaps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PairwiseOp op = pairwise_op(info);
  if (!info[3].IsArray()) throw Napi::TypeError::New(env, "rowMaps must be an array");
  Napi::Array ra = info[3].As<Napi::Array>();
  for (uint32_t i = 0; i < ra.Length(); ++i) {
    Napi::Object o = ra.Get(i).As<Napi::Object>();
    Napi::Value mv = o.Get("map");
    if (!mv.IsTypedArray() || mv.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      throw Napi::TypeError::New(env, "rowMaps[].map must be a Uint32Array");
    Napi::Uint32Array m = mv.As<Napi::Uint32Array>();
    auto map = std::make_shared<std::vector<uint32_t>>(m.Data(), m.Data() + m.ElementLength());
    op.row_maps.push_back(RowMapSpec{o.Get("model").As<Napi::Number>().Uint32Value(), opt_str(o, "tensor"), map});
  }
  return PromiseWorker<PairwiseOp>::start(env, "mother.pairwiseRowMaps", std::move(op));
}



}  // namespace mother_addon
