// The test- and benchmark-only functions of the SVD (native/pairwise/svd.h), under the addon's
// testing object (testing.cc adds them):
//   singularValues(a: Float64Array, m, n, options?: { threads?, method?: 'blocked' | 'jacobi',
//                  kernels?: 'auto' | 'baseline' | 'avx2' })
//     => { values: Float64Array, seconds: number, kernels: string }
//     the min(m, n) singular values of the m x n row-major a, largest first; seconds: the
//     call alone; 'jacobi' is the one-sided Jacobi the core used before (the reference).
//   bidiagonalSingularValues(d: Float64Array, e: Float64Array) => Float64Array
//     the QR stage alone, on the upper bidiagonal (d, e), sorted largest first.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "../pairwise/svd.h"
#include "../pairwise/svd_kernels.h"
#include "../pairwise/svd_reference.h"
#include "args.h"

namespace mother_addon {

namespace {

Napi::Float64Array float64_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Float64Array");
  return info[i].As<Napi::Float64Array>();
}

Napi::Value SingularValues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float64Array a = float64_arg(info, 0, "a");
  if (!info[1].IsNumber() || !info[2].IsNumber()) throw Napi::TypeError::New(env, "m and n must be numbers");
  const double md = info[1].As<Napi::Number>().DoubleValue(), nd = info[2].As<Napi::Number>().DoubleValue();
  if (!(md >= 0 && nd >= 0) || md != static_cast<double>(static_cast<size_t>(md)) ||
      nd != static_cast<double>(static_cast<size_t>(nd)) || md * nd != static_cast<double>(a.ElementLength()))
    throw Napi::RangeError::New(env, "a must hold m x n values (m, n non-negative integers)");
  const size_t m = static_cast<size_t>(md), n = static_cast<size_t>(nd);
  Napi::Object opts = options_arg(info, 3);
  const unsigned threads = opt_u32(opts, "threads", 0);
  const std::string method = opt_str(opts, "method"), kernels = opt_str(opts, "kernels");
  if (!method.empty() && method != "blocked" && method != "jacobi")
    throw Napi::RangeError::New(env, "method must be 'blocked' or 'jacobi'");
  const mother::svd_detail::SvdKernels* k = &mother::svd_detail::svd_kernels();
  if (kernels == "baseline") k = &mother::svd_detail::svd_kernels_baseline();
  else if (kernels == "avx2") {
    k = mother::svd_detail::svd_kernels_avx2();
    if (!k) throw Napi::Error::New(env, "the AVX2 SVD kernels are not available on this CPU or build");
  } else if (!kernels.empty() && kernels != "auto") {
    throw Napi::RangeError::New(env, "kernels must be 'auto', 'baseline' or 'avx2'");
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<double> s = method == "jacobi" ? mother::singular_values_jacobi(a.Data(), m, n)
                                                   : mother::svd_detail::singular_values_using(*k, a.Data(), m, n, threads);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Napi::Object out = Napi::Object::New(env);
  out.Set("values", f64_array(env, s));
  out.Set("seconds", Napi::Number::New(env, seconds));
  out.Set("kernels", method == "jacobi" ? "jacobi" : k->name);
  return out;
}

Napi::Value BidiagonalSingularValues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Float64Array d = float64_arg(info, 0, "d"), e = float64_arg(info, 1, "e");
  const size_t n = d.ElementLength();
  if (e.ElementLength() + 1 != n && !(n == 0 && e.ElementLength() == 0))
    throw Napi::RangeError::New(env, "e must hold d.length - 1 values");
  std::vector<double> dv(d.Data(), d.Data() + n), ev(e.Data(), e.Data() + e.ElementLength());
  ev.push_back(0);
  if (!mother::svd_detail::bidiagonal_singular_values(dv.data(), ev.data(), n))
    throw Napi::Error::New(env, "the bidiagonal QR iteration did not converge");
  std::sort(dv.begin(), dv.end(), [](double x, double y) { return x > y; });
  return f64_array(env, dv);
}

}  // namespace

void AddSvdTesting(Napi::Env env, Napi::Object& t) {
  t.Set("singularValues", Napi::Function::New(env, SingularValues, "singularValues"));
  t.Set("bidiagonalSingularValues", Napi::Function::New(env, BidiagonalSingularValues, "bidiagonalSingularValues"));
}

}  // namespace mother_addon
