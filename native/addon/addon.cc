// N-API bindings. Thin: argument unpacking, AsyncWorkers that run the core off the event
// loop, thread-safe progress callbacks, and conversion of core errors to JS errors that
// carry { code, file, tensor }.
#include <napi.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../bench/plain_read.h"
#include "../core/error.h"
#include "../core/parallel.h"
#include "../formats/reader.h"
#include "../gpu/gpu_backend.h"
#include "../pairwise/pairwise.h"
#include "../stats/dispatch.h"
#include "../stats/model_stats.h"

namespace {

using mother::Error;
using mother::ErrorCode;

// Float64 slots per tensor in scan's stats, per model in pairwise's moments, and of moments().
constexpr size_t kStatFields = mother::kSummaryFields;

struct ErrorInfo {
  std::string code, file, tensor, message;
};

ErrorInfo to_info(const Error& e) {
  return ErrorInfo{mother::error_code_name(e.code()), e.file(), e.tensor(), e.what()};
}

Napi::Error make_error(Napi::Env env, const ErrorInfo& info) {
  Napi::Error err = Napi::Error::New(env, info.message);
  err.Set("code", Napi::String::New(env, info.code));
  if (!info.file.empty()) err.Set("file", Napi::String::New(env, info.file));
  if (!info.tensor.empty()) err.Set("tensor", Napi::String::New(env, info.tensor));
  return err;
}

// Runs a worker's job on its thread and records what it threw: core errors keep their code,
// file and tensor; anything else (bad_alloc, ...) becomes ERR_INTERNAL. Returns false on error.
template <typename Fn>
bool capture(Fn&& fn, ErrorInfo* info) {
  try {
    fn();
    return true;
  } catch (const Error& e) {
    *info = to_info(e);
  } catch (const std::exception& e) {
    *info = ErrorInfo{mother::error_code_name(ErrorCode::Internal), "", "", e.what()};
  }
  return false;
}

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

uint32_t opt_u32(const Napi::Object& o, const char* key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 4294967295.0 || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be a non-negative integer");
  return static_cast<uint32_t>(d);
}

std::string opt_str(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return "";
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

const mother::Kernels* kernels_or_throw(Napi::Env env, const std::string& simd) {
  try {
    return mother::select_kernels(simd);
  } catch (const Error& e) {
    throw make_error(env, to_info(e));
  }
}

// Where a pass runs: the CPU, or the GPU backend library at `library` (opened on the worker
// thread: loading CUDA takes a while). The JS side resolves 'auto' and MOTHER_BACKEND.
struct DeviceChoice {
  bool gpu = false;
  std::string library;
  mother::GpuBackend* open() const { return gpu ? &mother::GpuBackend::open(library) : nullptr; }
};

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

// Progress from worker threads to a JS callback, throttled to one report per 100 ms (and the
// last one), plus the cancellation flag the caller shares through an Int32Array. Both workers
// below use it.
class ProgressChannel {
 public:
  // Field names and values of one report, as numbers.
  using Fields = std::vector<std::pair<const char*, double>>;

  void open(Napi::Env env, Napi::Function fn, const char* name) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, fn, name, 0, 1);
    open_ = true;
  }
  void set_cancel(Napi::Int32Array flag) {
    cancel_ref_ = Napi::Persistent(flag);
    cancel_ = flag.Data();
  }
  const int32_t* cancel() const { return cancel_; }
  bool is_open() const { return open_; }

  // Called from worker threads (never concurrently: the engines serialise progress calls).
  void report(Fields fields, bool last) {
    auto now = std::chrono::steady_clock::now();
    if (!last && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    auto* msg = new Fields(std::move(fields));
    napi_status st = tsfn_.NonBlockingCall(msg, [](Napi::Env env, Napi::Function cb, Fields* f) {
      Napi::Object o = Napi::Object::New(env);
      for (const auto& kv : *f) o.Set(kv.first, Napi::Number::New(env, kv.second));
      delete f;
      cb.Call({o});
    });
    if (st != napi_ok) delete msg;
  }
  // On the main thread, when the worker settles.
  void close() {
    if (open_) {
      tsfn_.Release();
      open_ = false;
    }
  }

 private:
  Napi::ThreadSafeFunction tsfn_;
  bool open_ = false;
  Napi::Reference<Napi::Int32Array> cancel_ref_;
  const int32_t* cancel_ = nullptr;
  std::chrono::steady_clock::time_point last_{};
};

// ---- scan ---------------------------------------------------------------------------------

class ScanWorker : public Napi::AsyncWorker {
 public:
  ScanWorker(Napi::Env env, std::vector<std::string> files, std::string index, unsigned threads,
             const mother::Kernels* kernels, uint64_t chunk_bytes, DeviceChoice device)
      : Napi::AsyncWorker(env, "mother.scan"), deferred_(Napi::Promise::Deferred::New(env)),
        files_(std::move(files)), index_(std::move(index)), threads_(threads), kernels_(kernels),
        chunk_bytes_(chunk_bytes), device_(std::move(device)) {}

  Napi::Promise promise() { return deferred_.Promise(); }
  ProgressChannel& progress() { return progress_; }

 protected:
  void Execute() override {
    auto job = [&] {
      mother::Model model = mother::open_model(files_, index_);
      mother::ScanOptions opt;
      opt.threads = mother::resolve_threads(threads_);
      opt.kernels = kernels_;
      opt.chunk_bytes = chunk_bytes_;
      opt.cancel = progress_.cancel();
      opt.gpu = gpu_ = device_.open();
      threads_used_ = opt.threads;
      if (progress_.is_open()) {
        opt.progress = [this](const mother::ScanProgress& p) {
          progress_.report({{"bytesDone", static_cast<double>(p.bytes_done)},
                            {"bytesTotal", static_cast<double>(p.bytes_total)},
                            {"tensorsDone", static_cast<double>(p.tensors_done)},
                            {"tensorsTotal", static_cast<double>(p.tensors_total)}},
                           p.bytes_done == p.bytes_total);
        };
      }
      auto t0 = std::chrono::steady_clock::now();
      results_ = mother::scan_model(model, opt);
      seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (const auto& f : model.files) paths_.push_back(f.path());
      for (const auto& t : model.tensors) {
        names_.push_back(t.name);
        dtypes_.push_back(mother::dtype_name(t.dtype));
        shapes_.push_back(t.shape);
        file_of_.push_back(t.file);
        bytes_ += t.bytes;
      }
    };
    if (!capture(job, &error_)) SetError(error_.message);
  }

  void OnOK() override {
    Napi::Env env = Env();
    progress_.close();
    const size_t n = names_.size();
    Napi::Object out = Napi::Object::New(env);
    Napi::Array files = Napi::Array::New(env, paths_.size());
    for (size_t i = 0; i < paths_.size(); ++i) files.Set(i, paths_[i]);
    out.Set("files", files);
    Napi::Array names = Napi::Array::New(env, n), dtypes = Napi::Array::New(env, n), shapes = Napi::Array::New(env, n);
    Napi::Uint32Array file_of = Napi::Uint32Array::New(env, n);
    Napi::Float64Array stats = Napi::Float64Array::New(env, n * kStatFields);
    for (size_t i = 0; i < n; ++i) {
      names.Set(i, names_[i]);
      dtypes.Set(i, dtypes_[i]);
      Napi::Array shape = Napi::Array::New(env, shapes_[i].size());
      for (size_t k = 0; k < shapes_[i].size(); ++k) shape.Set(k, Napi::Number::New(env, static_cast<double>(shapes_[i][k])));
      shapes.Set(i, shape);
      file_of[i] = file_of_[i];
      mother::pack(results_[i], stats.Data() + i * kStatFields);
    }
    out.Set("names", names);
    out.Set("dtypes", dtypes);
    out.Set("shapes", shapes);
    out.Set("fileIndex", file_of);
    out.Set("stats", stats);
    out.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
    out.Set("seconds", Napi::Number::New(env, seconds_));
    out.Set("simd", Napi::String::New(env, kernels_->name));
    out.Set("threads", Napi::Number::New(env, threads_used_));
    put_device(env, out, gpu_);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error&) override {
    progress_.close();
    deferred_.Reject(make_error(Env(), error_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<std::string> files_;
  std::string index_;
  unsigned threads_;
  const mother::Kernels* kernels_;
  uint64_t chunk_bytes_;
  DeviceChoice device_;
  mother::GpuBackend* gpu_ = nullptr;
  ProgressChannel progress_;

  std::vector<mother::Summary> results_;
  std::vector<std::string> paths_, names_, dtypes_;
  std::vector<std::vector<uint64_t>> shapes_;
  std::vector<uint32_t> file_of_;
  uint64_t bytes_ = 0;
  double seconds_ = 0;
  unsigned threads_used_ = 0;
  ErrorInfo error_;
};

// scan(files: string[], index: string, options: {threads, simd, chunkBytes},
//      onProgress?: (p) => void, cancel?: Int32Array) => Promise<RawScan>
Napi::Value Scan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto files = string_array(info[0], "files");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "index must be a string");
  std::string index = info[1].As<Napi::String>().Utf8Value();
  if (files.empty() && index.empty()) throw Napi::TypeError::New(env, "no files to scan");
  Napi::Object opts = info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
  unsigned threads = opt_u32(opts, "threads", 0);
  uint64_t chunk = opt_u32(opts, "chunkBytes", 16u << 20);
  const mother::Kernels* kernels = kernels_or_throw(env, opt_str(opts, "simd"));
  auto* w = new ScanWorker(env, std::move(files), std::move(index), threads, kernels, chunk, device_choice(opts));
  if (info.Length() > 3 && info[3].IsFunction()) w->progress().open(env, info[3].As<Napi::Function>(), "mother.scan.progress");
  if (info.Length() > 4 && info[4].IsTypedArray() && info[4].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array)
    w->progress().set_cancel(info[4].As<Napi::Int32Array>());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// ---- inspect: headers only ----------------------------------------------------------------

class InspectWorker : public Napi::AsyncWorker {
 public:
  InspectWorker(Napi::Env env, std::vector<std::string> files, std::string index)
      : Napi::AsyncWorker(env, "mother.inspect"), deferred_(Napi::Promise::Deferred::New(env)),
        files_(std::move(files)), index_(std::move(index)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (!capture([&] { model_ = std::make_unique<mother::Model>(mother::open_model(files_, index_)); }, &error_))
      SetError(error_.message);
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    Napi::Array files = Napi::Array::New(env, model_->files.size());
    for (size_t i = 0; i < model_->files.size(); ++i) {
      const auto& f = model_->files[i];
      Napi::Object fo = Napi::Object::New(env);
      fo.Set("path", f.path());
      fo.Set("size", Napi::Number::New(env, static_cast<double>(f.map->size())));
      fo.Set("headerBytes", Napi::Number::New(env, static_cast<double>(f.header_bytes)));
      Napi::Object meta = Napi::Object::New(env);
      // napi strings keep embedded NULs; DefineProperty keeps "__proto__" an own data property
      for (const auto& kv : f.metadata)
        meta.DefineProperty(Napi::PropertyDescriptor::Value(Napi::String::New(env, kv.first), Napi::String::New(env, kv.second),
                                                            napi_default_jsproperty));
      fo.Set("metadata", meta);
      files.Set(i, fo);
    }
    out.Set("files", files);
    Napi::Array tensors = Napi::Array::New(env, model_->tensors.size());
    for (size_t i = 0; i < model_->tensors.size(); ++i) {
      const auto& t = model_->tensors[i];
      Napi::Object to = Napi::Object::New(env);
      to.Set("name", t.name);
      to.Set("dtype", mother::dtype_name(t.dtype));
      Napi::Array shape = Napi::Array::New(env, t.shape.size());
      for (size_t k = 0; k < t.shape.size(); ++k) shape.Set(k, Napi::Number::New(env, static_cast<double>(t.shape[k])));
      to.Set("shape", shape);
      to.Set("file", Napi::Number::New(env, t.file));
      to.Set("offset", Napi::Number::New(env, static_cast<double>(t.offset)));
      to.Set("bytes", Napi::Number::New(env, static_cast<double>(t.bytes)));
      tensors.Set(i, to);
    }
    out.Set("tensors", tensors);
    model_.reset();
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error&) override { deferred_.Reject(make_error(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<std::string> files_;
  std::string index_;
  std::unique_ptr<mother::Model> model_;
  ErrorInfo error_;
};

Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto files = string_array(info[0], "files");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "index must be a string");
  auto* w = new InspectWorker(env, std::move(files), info[1].As<Napi::String>().Utf8Value());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// ---- plain read baseline ------------------------------------------------------------------

class PlainReadWorker : public Napi::AsyncWorker {
 public:
  PlainReadWorker(Napi::Env env, std::vector<std::string> files, unsigned threads, const mother::Kernels* k,
                  uint64_t chunk)
      : Napi::AsyncWorker(env, "mother.plainRead"), deferred_(Napi::Promise::Deferred::New(env)),
        files_(std::move(files)), threads_(threads), kernels_(k), chunk_(chunk) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (!capture([&] { r_ = mother::plain_read(files_, threads_, kernels_, chunk_); }, &error_)) SetError(error_.message);
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(r_.bytes)));
    o.Set("seconds", Napi::Number::New(env, r_.seconds));
    o.Set("checksum", Napi::BigInt::New(env, r_.checksum));
    o.Set("simd", kernels_->name);
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error&) override { deferred_.Reject(make_error(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<std::string> files_;
  unsigned threads_;
  const mother::Kernels* kernels_;
  uint64_t chunk_;
  mother::PlainReadResult r_;
  ErrorInfo error_;
};

Napi::Value PlainRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto files = string_array(info[0], "files");
  Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  const mother::Kernels* k = kernels_or_throw(env, opt_str(opts, "simd"));
  auto* w = new PlainReadWorker(env, std::move(files), opt_u32(opts, "threads", 0), k, opt_u32(opts, "chunkBytes", 16u << 20));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// ---- pairwise ------------------------------------------------------------------------------

struct ModelSpec {
  std::vector<std::string> files;
  std::string index;
};

class PairwiseWorker : public Napi::AsyncWorker {
 public:
  PairwiseWorker(Napi::Env env, std::vector<ModelSpec> specs, std::vector<mother::PairPlanTensor> plan,
                 unsigned threads, const mother::Kernels* kernels, uint64_t chunk)
      : Napi::AsyncWorker(env, "mother.pairwise"), deferred_(Napi::Promise::Deferred::New(env)),
        specs_(std::move(specs)), plan_(std::move(plan)), threads_(threads), kernels_(kernels), chunk_(chunk) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  ProgressChannel& progress() { return progress_; }
  void set_job_elems(uint64_t n) { job_elems_ = n; }
  void set_device(DeviceChoice d) { device_ = std::move(d); }
  void rank_options(unsigned k, uint64_t seed, bool exact) {
    sketch_k_ = k;
    sketch_seed_ = seed;
    exact_rank_ = exact;
  }

 protected:
  void Execute() override {
    auto job = [&] {
      std::vector<mother::Model> models;
      models.reserve(specs_.size());
      for (const auto& s : specs_) models.push_back(mother::open_model(s.files, s.index));
      mother::PairwiseOptions opt;
      opt.threads = mother::resolve_threads(threads_);
      opt.kernels = kernels_;
      opt.chunk_elems = chunk_;
      opt.job_elems = job_elems_;
      opt.cancel = progress_.cancel();
      opt.sketch_k = sketch_k_;
      opt.sketch_seed = sketch_seed_;
      opt.exact_rank = exact_rank_;
      opt.gpu = gpu_ = exact_rank_ ? nullptr : device_.open();
      threads_used_ = opt.threads;
      if (progress_.is_open()) {
        opt.progress = [this](const mother::PairwiseProgress& p) {
          progress_.report({{"bytesDone", static_cast<double>(p.bytes_done)}, {"bytesTotal", static_cast<double>(p.bytes_total)}},
                           p.bytes_done == p.bytes_total);
        };
      }
      result_ = mother::pairwise(models, plan_, opt);
    };
    if (!capture(job, &error_)) SetError(error_.message);
  }

  void OnOK() override {
    Napi::Env env = Env();
    progress_.close();
    auto f64 = [&](const std::vector<double>& v) {
      Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
      if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(double));
      return a;
    };
    Napi::Array tensors = Napi::Array::New(env, result_.tensors.size());
    for (size_t t = 0; t < result_.tensors.size(); ++t) {
      const auto& r = result_.tensors[t];
      Napi::Object o = Napi::Object::New(env);
      o.Set("sumSq", f64(r.sum_sq));
      o.Set("sumAbs", f64(r.sum_abs));
      o.Set("maxDiff", f64(r.max_diff));
      o.Set("minDiff", f64(r.min_diff));
      o.Set("count", f64(r.count));
      o.Set("skipped", f64(r.skipped));
      if (!r.moments.empty()) {
        std::vector<double> mv(r.moments.size() * kStatFields);
        for (size_t m = 0; m < r.moments.size(); ++m) mother::pack(r.moments[m], &mv[m * kStatFields]);
        o.Set("moments", f64(mv));
      }
      if (!r.rank.empty()) {
        o.Set("rank", f64(r.rank));
        o.Set("rankTol", f64(r.rank_tol));
        o.Set("sigmaMax", f64(r.sigma_max));
      }
      tensors.Set(t, o);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("tensors", tensors);
    Napi::Array bytes = Napi::Array::New(env, result_.bytes_read.size());
    for (size_t m = 0; m < result_.bytes_read.size(); ++m) bytes.Set(m, Napi::Number::New(env, static_cast<double>(result_.bytes_read[m])));
    out.Set("bytesRead", bytes);
    out.Set("seconds", Napi::Number::New(env, result_.seconds));
    out.Set("simd", kernels_->name);
    out.Set("threads", Napi::Number::New(env, threads_used_));
    put_device(env, out, gpu_);
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error&) override {
    progress_.close();
    deferred_.Reject(make_error(Env(), error_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<ModelSpec> specs_;
  DeviceChoice device_;
  mother::GpuBackend* gpu_ = nullptr;
  std::vector<mother::PairPlanTensor> plan_;
  unsigned threads_;
  const mother::Kernels* kernels_;
  uint64_t chunk_;
  ProgressChannel progress_;
  mother::PairwiseResult result_;
  unsigned threads_used_ = 0;
  unsigned sketch_k_ = 64;
  uint64_t sketch_seed_ = 0x6d6f7468;
  bool exact_rank_ = false;
  uint64_t job_elems_ = 0;
  ErrorInfo error_;
};

// pairwise(models: {files: string[], index: string}[], plan: {name, rows: number[], rowElems}[],
//          options, onProgress?, cancel?) => Promise<RawPairwise>
Napi::Value Pairwise(const Napi::CallbackInfo& info) {
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
  Napi::Object opts = info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
  const mother::Kernels* k = kernels_or_throw(env, opt_str(opts, "simd"));
  auto* w = new PairwiseWorker(env, std::move(specs), std::move(plan), opt_u32(opts, "threads", 0), k,
                               opt_u32(opts, "chunkElems", 1024));
  w->rank_options(opt_u32(opts, "sketchK", 64), opt_u32(opts, "sketchSeed", 0x6d6f7468), opts.Get("exactRank").ToBoolean().Value());
  w->set_job_elems(opt_u32(opts, "jobElems", 0));
  w->set_device(device_choice(opts));
  if (info.Length() > 3 && info[3].IsFunction()) w->progress().open(env, info[3].As<Napi::Function>(), "mother.pairwise.progress");
  if (info.Length() > 4 && info[4].IsTypedArray() && info[4].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array)
    w->progress().set_cancel(info[4].As<Napi::Int32Array>());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// ---- GPU backend probe ------------------------------------------------------------------------

class GpuOpenWorker : public Napi::AsyncWorker {
 public:
  GpuOpenWorker(Napi::Env env, std::string library)
      : Napi::AsyncWorker(env, "mother.gpuOpen"), deferred_(Napi::Promise::Deferred::New(env)), library_(std::move(library)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (!capture([&] { g_ = &mother::GpuBackend::open(library_); }, &error_)) SetError(error_.message);
  }
  void OnOK() override {
    Napi::Env env = Env();
    const mother_gpu_info& i = g_->info();
    Napi::Object o = Napi::Object::New(env);
    o.Set("library", g_->library());
    o.Set("backend", i.backend);
    o.Set("device", i.device);
    o.Set("computeCapability", std::to_string(i.cc_major) + "." + std::to_string(i.cc_minor));
    o.Set("multiprocessors", Napi::Number::New(env, i.multiprocessors));
    o.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(i.memory_bytes)));
    o.Set("runtimeVersion", Napi::Number::New(env, i.runtime_version));
    o.Set("driverVersion", Napi::Number::New(env, i.driver_version));
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error&) override { deferred_.Reject(make_error(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string library_;
  mother::GpuBackend* g_ = nullptr;
  ErrorInfo error_;
};

// gpuOpen(library: string) => Promise<GpuInfo>: loads the backend library and opens device 0
// (once per library per process), or rejects with ERR_BACKEND saying why.
Napi::Value GpuOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "library must be a string");
  auto* w = new GpuOpenWorker(env, info[0].As<Napi::String>().Utf8Value());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// pairDiff(a: Float64Array, b: Float64Array, simd) => Float64Array [sumSq, sumAbs, max, min]
Napi::Value PairDiff(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || !info[1].IsTypedArray()) throw Napi::TypeError::New(env, "a and b must be Float64Arrays");
  Napi::Float64Array a = info[0].As<Napi::Float64Array>(), b = info[1].As<Napi::Float64Array>();
  if (a.ElementLength() != b.ElementLength()) throw Napi::RangeError::New(env, "a and b differ in length");
  std::string simd = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  double acc[4] = {0, 0, -INFINITY, INFINITY};
  kernels_or_throw(env, simd)->pair_diff(a.Data(), b.Data(), a.ElementLength(), acc);
  Napi::Float64Array out = Napi::Float64Array::New(env, 4);
  for (int i = 0; i < 4; ++i) out[i] = acc[i];
  return out;
}

// ---- kernel access for tests --------------------------------------------------------------

// moments(bytes: Uint8Array, dtype: string, simd: string) => Float64Array(kStatFields)
// Synchronous; meant for tests of the kernels on arbitrary (e.g. unaligned) buffers.
Napi::Value Moments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "bytes must be a Uint8Array");
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "dtype must be a string");
  mother::DType d;
  std::string dname = info[1].As<Napi::String>().Utf8Value();
  if (!mother::dtype_from_name(dname, &d) || !mother::dtype_has_stats(d))
    throw Napi::TypeError::New(env, "dtype " + dname + " has no float statistics");
  std::string simd = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  const mother::Kernels* k = kernels_or_throw(env, simd);
  const uint64_t esize = mother::dtype_bits(d) / 8;
  const uint64_t n = bytes.ByteLength() / esize;
  mother::Moments m;
  mother::accumulate_any(k, d, bytes.Data(), n, &m);
  Napi::Float64Array out = Napi::Float64Array::New(env, kStatFields);
  mother::pack(mother::summarize(m), out.Data());
  return out;
}

// pairDiff4([a0, a1, a2, a3]: Float64Array[], b: Float64Array, simd) => Float64Array(16)
Napi::Value PairDiff4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() != 4 || !info[1].IsTypedArray())
    throw Napi::TypeError::New(env, "pairDiff4 takes four Float64Arrays and one Float64Array");
  Napi::Array rows = info[0].As<Napi::Array>();
  Napi::Float64Array b = info[1].As<Napi::Float64Array>();
  const double* a[4];
  for (uint32_t k = 0; k < 4; ++k) {
    Napi::Float64Array r = rows.Get(k).As<Napi::Float64Array>();
    if (r.ElementLength() != b.ElementLength()) throw Napi::RangeError::New(env, "rows differ in length");
    a[k] = r.Data();
  }
  std::string simd = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  double acc[16];
  for (int k = 0; k < 4; ++k) {
    acc[4 * k] = acc[4 * k + 1] = 0;
    acc[4 * k + 2] = -INFINITY;
    acc[4 * k + 3] = INFINITY;
  }
  kernels_or_throw(env, simd)->pair_diff4(a, b.Data(), b.ElementLength(), acc);
  Napi::Float64Array out = Napi::Float64Array::New(env, 16);
  for (int i = 0; i < 16; ++i) out[i] = acc[i];
  return out;
}

Napi::Value SumU64(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "bytes must be a Uint8Array");
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  std::string simd = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  return Napi::BigInt::New(env, kernels_or_throw(env, simd)->sum_u64(bytes.Data(), bytes.ByteLength()));
}

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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("scan", Napi::Function::New(env, Scan, "scan"));
  exports.Set("inspect", Napi::Function::New(env, Inspect, "inspect"));
  exports.Set("plainRead", Napi::Function::New(env, PlainRead, "plainRead"));
  exports.Set("pairwise", Napi::Function::New(env, Pairwise, "pairwise"));
  exports.Set("gpuOpen", Napi::Function::New(env, GpuOpen, "gpuOpen"));
  exports.Set("pairDiff", Napi::Function::New(env, PairDiff, "pairDiff"));
  exports.Set("pairDiff4", Napi::Function::New(env, PairDiff4, "pairDiff4"));
  exports.Set("moments", Napi::Function::New(env, Moments, "moments"));
  exports.Set("sumU64", Napi::Function::New(env, SumU64, "sumU64"));
  exports.Set("simdPaths", Napi::Function::New(env, SimdPaths, "simdPaths"));
  exports.Set("simdDefault", Napi::Function::New(env, SimdDefault, "simdDefault"));
  exports.Set("statFields", Napi::Number::New(env, static_cast<double>(kStatFields)));
  return exports;
}

}  // namespace

NODE_API_MODULE(mother, Init)
