// loraProducts(files: string[], index: string,
//              items: { tensor, left: Float64Array, right: Float64Array, r, rows, cols, gram?: 'left' | 'right' }[],
//              options: { simd, threads }, cancel?: Int32Array)
//   => Promise<{ products: ({ value, sumSq, gram: Float64Array (r x r), finite } | null)[] }>
// Per item: <X, right left>, ||X||_F^2 and Y^T Y (Y = X left^T; with gram 'right' Z Z^T, Z = right^T X)
// for the model's tensor X named `tensor` ([rows, cols]; left is
// r x cols, right rows x r, row-major), or null where the model has no such tensor with
// statistics of that shape (native/pairwise/lora_products.h). The factors are copied before
// the worker starts.
#include <string>
#include <utility>
#include <vector>

#include "../formats/reader.h"
#include "../pairwise/lora_products.h"
#include "args.h"
#include "exports.h"
#include "promise_worker.h"

namespace mother_addon {

namespace {

struct LoraItem {
  std::string tensor;
  std::vector<double> left, right;
  uint64_t r = 0, rows = 0, cols = 0;
  bool right_gram = false;
};

struct LoraProductsOp {
  std::vector<std::string> files;
  std::string index;
  std::vector<LoraItem> items;
  const mother::Kernels* kernels;
  unsigned threads;

  std::vector<mother::LoraProduct> results;

  void run(ProgressChannel& progress) {
    mother::Model model = mother::open_model(files, index);
    results.resize(items.size());
    for (size_t t = 0; t < items.size(); ++t) {
      const LoraItem& it = items[t];
      for (const auto& v : model.tensors) {
        if (v.name != it.tensor) continue;
        results[t] = mother::lora_product(kernels, v, it.left.data(), it.right.data(), it.r, it.rows, it.cols, threads,
                                          progress.cancel(), it.right_gram);
        break;
      }
    }
  }

  Napi::Value toJs(Napi::Env env) const {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array products = Napi::Array::New(env, results.size());
    for (size_t t = 0; t < results.size(); ++t) {
      const auto& r = results[t];
      if (!r.ok) {
        products.Set(t, env.Null());
        continue;
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("value", Napi::Number::New(env, r.value));
      o.Set("sumSq", Napi::Number::New(env, r.sum_sq));
      Napi::Float64Array g = Napi::Float64Array::New(env, r.gram.size());
      for (size_t e = 0; e < r.gram.size(); ++e) g[e] = r.gram[e];
      o.Set("gram", g);
      o.Set("finite", Napi::Boolean::New(env, r.finite));
      products.Set(t, o);
    }
    out.Set("products", products);
    return out;
  }
};

uint64_t dim(Napi::Env env, const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(env, std::string("items[].") + key + " must be a non-negative integer");
  return static_cast<uint64_t>(d);
}

std::vector<double> f64s(Napi::Env env, const Napi::Object& o, const char* key, uint64_t want) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(env, std::string("items[].") + key + " must be a Float64Array");
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  if (a.ElementLength() != want)
    throw Napi::RangeError::New(env, std::string("items[].") + key + " has " + std::to_string(a.ElementLength()) +
                                         " elements, expected " + std::to_string(want));
  return std::vector<double>(a.Data(), a.Data() + a.ElementLength());
}

}  // namespace

Napi::Value LoraProducts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto files = string_array(info[0], "files");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "index must be a string");
  std::string index = info[1].As<Napi::String>().Utf8Value();
  if (files.empty() && index.empty()) throw Napi::TypeError::New(env, "no files to read");
  if (!info[2].IsArray()) throw Napi::TypeError::New(env, "items must be an array");
  Napi::Array arr = info[2].As<Napi::Array>();
  std::vector<LoraItem> items;
  items.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    if (!e.IsObject()) throw Napi::TypeError::New(env, "items[] must be objects");
    Napi::Object o = e.As<Napi::Object>();
    if (!o.Get("tensor").IsString()) throw Napi::TypeError::New(env, "items[].tensor must be a string");
    LoraItem it;
    it.tensor = o.Get("tensor").As<Napi::String>().Utf8Value();
    it.r = dim(env, o, "r");
    it.rows = dim(env, o, "rows");
    it.cols = dim(env, o, "cols");
    if (it.r == 0 || it.r > 65536 || it.rows > (uint64_t{1} << 40) || it.cols > (uint64_t{1} << 40))
      throw Napi::RangeError::New(env, "items[]: r must be 1 to 65536, rows and cols below 2^40");
    Napi::Value side = o.Get("gram");
    if (!side.IsUndefined()) {
      const std::string s = side.IsString() ? side.As<Napi::String>().Utf8Value() : "";
      if (s != "left" && s != "right") throw Napi::TypeError::New(env, "items[].gram must be 'left' or 'right'");
      it.right_gram = s == "right";
    }
    it.left = f64s(env, o, "left", it.r * it.cols);
    it.right = f64s(env, o, "right", it.rows * it.r);
    items.push_back(std::move(it));
  }
  Napi::Object opts = options_arg(info, 3);
  const mother::Kernels* kernels = kernels_or_throw(env, opt_str(opts, "simd"));
  unsigned threads = opt_u32(opts, "threads", 0);
  return PromiseWorker<LoraProductsOp>::start(env, "mother.loraProducts",
                                              LoraProductsOp{std::move(files), std::move(index), std::move(items), kernels, threads, {}},
                                              Napi::Value(), info[4]);
}

}  // namespace mother_addon
