// The functions only tests and benchmarks call: direct access to the kernels on arbitrary
// (e.g. unaligned) buffers, synchronous, and the plain-read baseline.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../bench/plain_read.h"
#include "../stats/kernels.h"
#include "../stats/quant_grid.h"
#include "../stats/summary.h"
#include "../stats/row_hash.h"
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
  if (!mother::dtype_from_any_name(dname, &d) || !mother::dtype_has_stats(d))
    throw Napi::TypeError::New(env, "dtype " + dname + " has no float statistics");
  const mother::Kernels* k = kernels_or_throw(env, str_or_empty(info[2]));
  uint32_t be, bb;
  mother::dtype_block(d, &be, &bb);  // GGUF block types: whole blocks
  const uint64_t n = bytes.ByteLength() / bb * be;
  mother::Moments m;
  mother::accumulate_any(k, d, bytes.Data(), n, &m);
  Napi::Float64Array out = Napi::Float64Array::New(env, mother::kSummaryFields);
  mother::pack(mother::summarize(m), out.Data());
  return out;
}

// decode(bytes: Uint8Array, dtype: string, simd?: string) => Float64Array: what the pairwise
// pass decodes (whole blocks of the GGUF block types, any float dtype); .bad on the result
// says whether the decoder reported a NaN/Inf.
Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "bytes must be a Uint8Array");
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "dtype must be a string");
  mother::DType d;
  std::string dname = info[1].As<Napi::String>().Utf8Value();
  if (!mother::dtype_from_any_name(dname, &d) || !mother::dtype_has_stats(d))
    throw Napi::TypeError::New(env, "dtype " + dname + " has no float values");
  const mother::Kernels* k = kernels_or_throw(env, str_or_empty(info[2]));
  uint32_t be, bb;
  mother::dtype_block(d, &be, &bb);
  const uint64_t n = bytes.ByteLength() / bb * be;
  Napi::Float64Array out = Napi::Float64Array::New(env, n);
  const bool bad = k->decode_f64(d, bytes.Data(), n, out.Data());
  if (mother::dtype_is_block(d)) {  // the block decoders of this kernel set, as the pairwise pass calls them
    const bool qbad = mother::quant_decode_f64(k, d, bytes.Data(), n, out.Data());
    if (qbad != bad) throw Napi::Error::New(env, "decode: the kernel set's decode_f64 and quant_decode_f64 disagree on NaN/Inf");
  }
  out.Set("bad", Napi::Boolean::New(env, bad));
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

Napi::Float64Array f64_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Float64Array");
  return info[i].As<Napi::Float64Array>();
}

// gram(rows: Float64Array[], simd?) => Float64Array(m * m): the upper triangle of the products
// (the rest NaN)
Napi::Value Gram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "rows must be an array of Float64Arrays");
  Napi::Array ra = info[0].As<Napi::Array>();
  const size_t m = ra.Length();
  std::vector<const double*> rows(m);
  size_t n = 0;
  for (uint32_t i = 0; i < m; ++i) {
    Napi::Value v = ra.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw Napi::TypeError::New(env, "rows must be an array of Float64Arrays");
    Napi::Float64Array r = v.As<Napi::Float64Array>();
    if (i == 0) n = r.ElementLength();
    if (r.ElementLength() != n) throw Napi::RangeError::New(env, "rows differ in length");
    rows[i] = r.Data();
  }
  std::vector<double> g(m * m, NAN);
  kernels_or_throw(env, str_or_empty(info[1]))->gram(rows.data(), m, n, g.data());
  Napi::Float64Array out = Napi::Float64Array::New(env, m * m);
  for (size_t i = 0; i < m * m; ++i) out[i] = g[i];
  return out;
}

// pairDd(a, b, simd?) => Float64Array [sum d^2, sum d, sum (d - mean d)^2, sum (d - mean d)(s - mean s)]
Napi::Value PairDd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float64Array a = f64_arg(info, 0, "a"), b = f64_arg(info, 1, "b");
  if (a.ElementLength() != b.ElementLength()) throw Napi::RangeError::New(env, "a and b differ in length");
  double o[4];
  kernels_or_throw(env, str_or_empty(info[2]))->pair_dd(a.Data(), b.Data(), a.ElementLength(), o);
  Napi::Float64Array out = Napi::Float64Array::New(env, 4);
  for (int i = 0; i < 4; ++i) out[i] = o[i];
  return out;
}

// moments2(x, simd?) => Float64Array [mean, sum (x - mean)^2]
Napi::Value Moments2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float64Array x = f64_arg(info, 0, "x");
  double o[2];
  kernels_or_throw(env, str_or_empty(info[1]))->moments2(x.Data(), x.ElementLength(), o);
  Napi::Float64Array out = Napi::Float64Array::New(env, 2);
  out[0] = o[0];
  out[1] = o[1];
  return out;
}

// gridBlock(x: Float64Array of 32, unitRoundoff) => the bits of stats/quant_grid.h grid_block
Napi::Value GridBlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float64Array x = f64_arg(info, 0, "x");
  if (x.ElementLength() != mother::kGridBlock) throw Napi::RangeError::New(env, "x must hold 32 values");
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "unitRoundoff must be a number");
  return Napi::Number::New(env, mother::grid_block(x.Data(), info[1].As<Napi::Number>().DoubleValue()));
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

// f16Bits(Float32Array) / bf16Bits(Float32Array) => Uint16Array: the roundings of the row hashes
template <uint16_t (*F)(float)>
Napi::Value RoundBits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, "a Float32Array");
  Napi::Float32Array x = info[0].As<Napi::Float32Array>();
  Napi::Uint16Array out = Napi::Uint16Array::New(env, x.ElementLength());
  for (size_t i = 0; i < x.ElementLength(); ++i) out[i] = F(x[i]);
  return out;
}

}  // namespace

Napi::Object Testing(Napi::Env env) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("moments", Napi::Function::New(env, Moments, "moments"));
  // the float32 pass of F16/BF16: the relative error bound of each block sum, and the block
  t.Set("f32Eps", Napi::Number::New(env, mother::kF32Eps));
  t.Set("block", Napi::Number::New(env, static_cast<double>(mother::kBlock)));
  t.Set("decode", Napi::Function::New(env, Decode, "decode"));
  t.Set("pairDiff", Napi::Function::New(env, PairDiff, "pairDiff"));
  t.Set("pairDiff4", Napi::Function::New(env, PairDiff4, "pairDiff4"));
  t.Set("sumU64", Napi::Function::New(env, SumU64, "sumU64"));
  t.Set("plainRead", Napi::Function::New(env, PlainRead, "plainRead"));
  t.Set("gram", Napi::Function::New(env, Gram, "gram"));
  t.Set("pairDd", Napi::Function::New(env, PairDd, "pairDd"));
  t.Set("moments2", Napi::Function::New(env, Moments2, "moments2"));
  t.Set("gridBlock", Napi::Function::New(env, GridBlock, "gridBlock"));
  t.Set("f16Bits", Napi::Function::New(env, RoundBits<mother::f32_to_f16_bits>, "f16Bits"));
  t.Set("bf16Bits", Napi::Function::New(env, RoundBits<mother::f32_to_bf16_bits>, "bf16Bits"));
  t.Set("pairwiseRowMaps", Napi::Function::New(env, PairwiseRowMaps, "pairwiseRowMaps"));
  { void AddSvdTesting(Napi::Env, Napi::Object&); AddSvdTesting(env, t); }  // testing_svd.cc
  return t;
}

}  // namespace mother_addon
