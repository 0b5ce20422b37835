// The functions only tests and benchmarks call: direct access to the kernels on arbitrary
// (e.g. unaligned) buffers, synchronous, and the plain-read baseline.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../bench/plain_read.h"
#include "../stats/summary.h"
#include "args.h"
#include "exports.h"
#include "promise_worker.h"

namespace mother_addon {

namespace {

// moments(bytes: Uint8Array, dtype: string, simd?: string) => Float64Array(layouts.summary.length)
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
  const mother::Kernels* k = kernels_or_throw(env, str_or_empty(info[2]));
  const uint64_t n = bytes.ByteLength() / (mother::dtype_bits(d) / 8);
  mother::Moments m;
  mother::accumulate_any(k, d, bytes.Data(), n, &m);
  Napi::Float64Array out = Napi::Float64Array::New(env, mother::kSummaryFields);
  mother::pack(mother::summarize(m), out.Data());
  return out;
}

// pairDiff(a: Float64Array, b: Float64Array, simd?) => Float64Array [sumSq, sumAbs, max, min]
Napi::Value PairDiff(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || !info[1].IsTypedArray()) throw Napi::TypeError::New(env, "a and b must be Float64Arrays");
  Napi::Float64Array a = info[0].As<Napi::Float64Array>(), b = info[1].As<Napi::Float64Array>();
  if (a.ElementLength() != b.ElementLength()) throw Napi::RangeError::New(env, "a and b differ in length");
  double acc[4] = {0, 0, -INFINITY, INFINITY};
  kernels_or_throw(env, str_or_empty(info[2]))->pair_diff(a.Data(), b.Data(), a.ElementLength(), acc);
  Napi::Float64Array out = Napi::Float64Array::New(env, 4);
  for (int i = 0; i < 4; ++i) out[i] = acc[i];
  return out;
}

// pairDiff4([a0, a1, a2, a3]: Float64Array[], b: Float64Array, simd?) => Float64Array(16)
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
  double acc[16];
  for (int k = 0; k < 4; ++k) {
    acc[4 * k] = acc[4 * k + 1] = 0;
    acc[4 * k + 2] = -INFINITY;
    acc[4 * k + 3] = INFINITY;
  }
  kernels_or_throw(env, str_or_empty(info[2]))->pair_diff4(a, b.Data(), b.ElementLength(), acc);
  Napi::Float64Array out = Napi::Float64Array::New(env, 16);
  for (int i = 0; i < 16; ++i) out[i] = acc[i];
  return out;
}

// sumU64(bytes: Uint8Array, simd?) => bigint: the plain-read kernel
Napi::Value SumU64(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "bytes must be a Uint8Array");
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  return Napi::BigInt::New(env, kernels_or_throw(env, str_or_empty(info[1]))->sum_u64(bytes.Data(), bytes.ByteLength()));
}

struct PlainReadOp {
  std::vector<std::string> files;
  unsigned threads;
  const mother::Kernels* kernels;
  uint64_t chunk_bytes;
  mother::PlainReadResult r;

  void run(ProgressChannel&) { r = mother::plain_read(files, threads, kernels, chunk_bytes); }

  Napi::Value toJs(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(r.bytes)));
    o.Set("seconds", Napi::Number::New(env, r.seconds));
    o.Set("checksum", Napi::BigInt::New(env, r.checksum));
    o.Set("simd", kernels->name);
    return o;
  }
};

// plainRead(files: string[], options: {threads, simd, chunkBytes}) => Promise<{bytes, seconds, checksum, simd}>
Napi::Value PlainRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto files = string_array(info[0], "files");
  Napi::Object opts = options_arg(info, 1);
  const mother::Kernels* k = kernels_or_throw(env, opt_str(opts, "simd"));
  return PromiseWorker<PlainReadOp>::start(
      env, "mother.plainRead", PlainReadOp{std::move(files), opt_u32(opts, "threads", 0), k, opt_u32(opts, "chunkBytes", 16u << 20)});
}

}  // namespace

Napi::Object Testing(Napi::Env env) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("moments", Napi::Function::New(env, Moments, "moments"));
  t.Set("pairDiff", Napi::Function::New(env, PairDiff, "pairDiff"));
  t.Set("pairDiff4", Napi::Function::New(env, PairDiff4, "pairDiff4"));
  t.Set("sumU64", Napi::Function::New(env, SumU64, "sumU64"));
  t.Set("plainRead", Napi::Function::New(env, PlainRead, "plainRead"));
  { void AddSvdTesting(Napi::Env, Napi::Object&); AddSvdTesting(env, t); }  // testing_svd.cc
  return t;
}

}  // namespace mother_addon
