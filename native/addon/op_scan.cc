// scan(files: string[], index: string, options: {threads, simd, chunkBytes, backend, gpuLibrary},
//      onProgress?: (p) => void, cancel?: Int32Array) => Promise<RawScan>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "../core/parallel.h"
#include "../formats/reader.h"
#include "../stats/model_stats.h"
#include "args.h"
#include "exports.h"
#include "promise_worker.h"

namespace mother_addon {

namespace {

struct ScanOp {
  std::vector<std::string> files;
  std::string index;
  unsigned threads;
  const mother::Kernels* kernels;
  uint64_t chunk_bytes;
  DeviceChoice device;

  mother::Model model;
  std::vector<mother::Summary> results;
  mother::GpuBackend* gpu = nullptr;
  double seconds = 0;
  unsigned threads_used = 0;

  void run(ProgressChannel& progress) {
    model = mother::open_model(files, index);
    mother::ScanOptions opt;
    opt.threads = threads_used = mother::resolve_threads(threads);
    opt.kernels = kernels;
    opt.chunk_bytes = chunk_bytes;
    opt.cancel = progress.cancel();
    opt.gpu = gpu = device.open();
    if (progress.is_open()) {
      opt.progress = [&progress](const mother::ScanProgress& p) {
        progress.report({{"bytesDone", static_cast<double>(p.bytes_done)},
                         {"bytesTotal", static_cast<double>(p.bytes_total)},
                         {"tensorsDone", static_cast<double>(p.tensors_done)},
                         {"tensorsTotal", static_cast<double>(p.tensors_total)}},
                        p.bytes_done == p.bytes_total);
      };
    }
    auto t0 = std::chrono::steady_clock::now();
    results = mother::scan_model(model, opt);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  Napi::Value toJs(Napi::Env env) const {
    const size_t n = model.tensors.size();
    const size_t width = mother::kSummaryFields;
    Napi::Object out = Napi::Object::New(env);
    Napi::Array paths = Napi::Array::New(env, model.files.size());
    for (size_t i = 0; i < model.files.size(); ++i) paths.Set(i, model.files[i].path());
    out.Set("files", paths);
    Napi::Array names = Napi::Array::New(env, n), dtypes = Napi::Array::New(env, n), shapes = Napi::Array::New(env, n);
    Napi::Array unreadable = Napi::Array::New(env, n);  // why a tensor's values were not read, or null
    Napi::Uint32Array file_of = Napi::Uint32Array::New(env, n);
    Napi::Float64Array stats = Napi::Float64Array::New(env, n * width);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      const mother::TensorView& t = model.tensors[i];
      names.Set(i, t.name);
      dtypes.Set(i, mother::view_dtype_name(t));
      shapes.Set(i, number_array(env, t.shape));
      file_of[i] = t.file;
      unreadable.Set(i, t.unreadable.empty() ? env.Null() : Napi::Value(Napi::String::New(env, t.unreadable)));
      mother::pack(results[i], stats.Data() + i * width);
      bytes += t.bytes;
    }
    out.Set("names", names);
    out.Set("dtypes", dtypes);
    out.Set("shapes", shapes);
    out.Set("unreadable", unreadable);
    out.Set("fileIndex", file_of);
    out.Set("stats", stats);
    out.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes)));
    out.Set("seconds", Napi::Number::New(env, seconds));
    out.Set("simd", Napi::String::New(env, kernels->name));
    out.Set("threads", Napi::Number::New(env, threads_used));
    put_device(env, out, gpu);
    return out;
  }
};

}  // namespace

Napi::Value Scan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto files = string_array(info[0], "files");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "index must be a string");
  std::string index = info[1].As<Napi::String>().Utf8Value();
  if (files.empty() && index.empty()) throw Napi::TypeError::New(env, "no files to scan");
  Napi::Object opts = options_arg(info, 2);
  const unsigned threads = opt_u32(opts, "threads", 0);
  const uint64_t chunk = opt_u32(opts, "chunkBytes", 16u << 20);
  const mother::Kernels* kernels = kernels_or_throw(env, opt_str(opts, "simd"));
  return PromiseWorker<ScanOp>::start(env, "mother.scan",
                                      ScanOp{std::move(files), std::move(index), threads, kernels, chunk, device_choice(opts)},
                                      info[3], info[4]);
}

}  // namespace mother_addon
