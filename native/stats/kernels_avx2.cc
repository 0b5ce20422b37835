// AVX2 + FMA + F16C kernels: 8 elements per step, float64 accumulation (F16 and BF16: float32
// over short runs, folded into float64; block_h.inc).
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#define MOTHER_ISA_TARGET "avx2,fma,f16c"
#include "isa_begin.h"

namespace mother {
namespace {

struct F32 { static constexpr size_t kSize = 4;
  ISA_FN static __m256 load8(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); } };
struct BF16 { static constexpr size_t kSize = 2;
  ISA_FN static __m256 load8(const uint8_t* p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)); }
  // 16 elements, in an order of their own (elements 0-3 and 8-11 in x0): for sums, min and max
  ISA_FN static void load16(const uint8_t* p, __m256& x0, __m256& x1) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), z = _mm256_setzero_si256();
    x0 = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, w));
    x1 = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, w)); } };
struct F16 { static constexpr size_t kSize = 2;
  ISA_FN static __m256 load8(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  ISA_FN static void load16(const uint8_t* p, __m256& x0, __m256& x1) { x0 = load8(p); x1 = load8(p + 16); } };

ISA_FN inline double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
ISA_FN inline float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
ISA_FN inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
ISA_FN inline __m256d absd(__m256d v) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v); }

template <typename L>
ISA_FN bool block_f(const uint8_t* p, size_t n, Moments* out) {
  const size_t nv = n / 8 * 8;
  const __m256i expmask = _mm256_set1_epi32(0x7F800000);
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  __m256 mn = _mm256_set1_ps(INFINITY), mx = _mm256_set1_ps(-INFINITY);
  __m256i bad = _mm256_setzero_si256();
  for (size_t i = 0; i < nv; i += 8) {
    __m256 x = L::load8(p + i * L::kSize);
    __m256i e = _mm256_and_si256(_mm256_castps_si256(x), expmask);
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(e, expmask));
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
    __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
    s0 = _mm256_add_pd(s0, lo);
    s1 = _mm256_add_pd(s1, hi);
    a0 = _mm256_add_pd(a0, absd(lo));
    a1 = _mm256_add_pd(a1, absd(hi));
    mn = _mm256_min_ps(mn, x);
    mx = _mm256_max_ps(mx, x);
  }
  if (!_mm256_testz_si256(bad, bad)) return false;
  double sum = hsum(_mm256_add_pd(s0, s1));
  double sum_abs = hsum(_mm256_add_pd(a0, a1));
  double vmin = nv ? hmin(mn) : INFINITY;
  double vmax = nv ? hmax(mx) : -INFINITY;
  float tail[8];
  const size_t nt = n - nv;
  if (nt) {
    alignas(32) uint8_t buf[8 * 4] = {0};
    std::memcpy(buf, p + nv * L::kSize, nt * L::kSize);
    _mm256_storeu_ps(tail, L::load8(buf));
    for (size_t k = 0; k < nt; ++k) {
      if (!tail_extremes(tail[k], sum_abs, vmin, vmax)) return false;
      sum += tail[k];
    }
  }
  const double mean = sum / static_cast<double>(n);
  const __m256d vm = _mm256_set1_pd(mean);
  __m256d q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
  __m256d c0 = _mm256_setzero_pd(), c1 = _mm256_setzero_pd();
  __m256d f0 = _mm256_setzero_pd(), f1 = _mm256_setzero_pd();
  __m256d e0 = _mm256_setzero_pd(), e1 = _mm256_setzero_pd();
  // The next block streams in from memory while this one is reduced from L1.
  const uint8_t* next = p + n * L::kSize;
  for (size_t i = 0; i < nv; i += 8) {
    _mm_prefetch(reinterpret_cast<const char*>(next + i * L::kSize), _MM_HINT_T0);
    __m256 x = L::load8(p + i * L::kSize);
    __m256d lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), vm);
    __m256d hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), vm);
    __m256d lo2 = _mm256_mul_pd(lo, lo), hi2 = _mm256_mul_pd(hi, hi);
    e0 = _mm256_add_pd(e0, lo);
    e1 = _mm256_add_pd(e1, hi);
    q0 = _mm256_add_pd(q0, lo2);
    q1 = _mm256_add_pd(q1, hi2);
    c0 = _mm256_fmadd_pd(lo2, lo, c0);
    c1 = _mm256_fmadd_pd(hi2, hi, c1);
    f0 = _mm256_fmadd_pd(lo2, lo2, f0);
    f1 = _mm256_fmadd_pd(hi2, hi2, f1);
  }
  double sd = hsum(_mm256_add_pd(e0, e1));
  double m2 = hsum(_mm256_add_pd(q0, q1)), m3 = hsum(_mm256_add_pd(c0, c1)), m4 = hsum(_mm256_add_pd(f0, f1));
  for (size_t k = 0; k < nt; ++k) {
    tail_central(static_cast<double>(tail[k]) - mean, sd, m2, m3, m4);
  }
  *out = block_moments(static_cast<double>(n), mean, sd, m2, m3, m4, sum_abs, vmin, vmax);
  return true;
}

enum class Pass { kOk, kNonFinite, kPoorShift, kRange };

// Single pass about a shift K (the previous block's mean); see kernels_avx512.cc.
template <typename L>
ISA_FN Pass block_f1(const uint8_t* p, size_t n, double shift, Moments* out) {
  const size_t nv = n / 8 * 8;
  const __m256i expmask = _mm256_set1_epi32(0x7F800000);
  const __m256d vk = _mm256_set1_pd(shift);
  __m256d e0 = _mm256_setzero_pd(), e1 = _mm256_setzero_pd();
  __m256d q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
  __m256d c0 = _mm256_setzero_pd(), c1 = _mm256_setzero_pd();
  __m256d f0 = _mm256_setzero_pd(), f1 = _mm256_setzero_pd();
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  __m256 mn = _mm256_set1_ps(INFINITY), mx = _mm256_set1_ps(-INFINITY);
  __m256i bad = _mm256_setzero_si256();
  const uint8_t* next = p + n * L::kSize;
  for (size_t i = 0; i < nv; i += 8) {
    _mm_prefetch(reinterpret_cast<const char*>(next + i * L::kSize), _MM_HINT_T0);
    __m256 x = L::load8(p + i * L::kSize);
    __m256i e = _mm256_and_si256(_mm256_castps_si256(x), expmask);
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(e, expmask));
    mn = _mm256_min_ps(mn, x);
    mx = _mm256_max_ps(mx, x);
    __m256d xl = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
    __m256d xh = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
    a0 = _mm256_add_pd(a0, absd(xl));
    a1 = _mm256_add_pd(a1, absd(xh));
    __m256d lo = _mm256_sub_pd(xl, vk), hi = _mm256_sub_pd(xh, vk);
    __m256d lo2 = _mm256_mul_pd(lo, lo), hi2 = _mm256_mul_pd(hi, hi);
    e0 = _mm256_add_pd(e0, lo);
    e1 = _mm256_add_pd(e1, hi);
    q0 = _mm256_add_pd(q0, lo2);
    q1 = _mm256_add_pd(q1, hi2);
    c0 = _mm256_fmadd_pd(lo2, lo, c0);
    c1 = _mm256_fmadd_pd(hi2, hi, c1);
    f0 = _mm256_fmadd_pd(lo2, lo2, f0);
    f1 = _mm256_fmadd_pd(hi2, hi2, f1);
  }
  if (!_mm256_testz_si256(bad, bad)) return Pass::kNonFinite;
  double sd = hsum(_mm256_add_pd(e0, e1));
  double m2 = hsum(_mm256_add_pd(q0, q1)), m3 = hsum(_mm256_add_pd(c0, c1)), m4 = hsum(_mm256_add_pd(f0, f1));
  double sum_abs = hsum(_mm256_add_pd(a0, a1));
  double vmin = nv ? hmin(mn) : INFINITY;
  double vmax = nv ? hmax(mx) : -INFINITY;
  const size_t nt = n - nv;
  if (nt) {
    float tail[8];
    alignas(32) uint8_t buf[8 * 4] = {0};
    std::memcpy(buf, p + nv * L::kSize, nt * L::kSize);
    _mm256_storeu_ps(tail, L::load8(buf));
    for (size_t k = 0; k < nt; ++k) {
      if (!tail_extremes(tail[k], sum_abs, vmin, vmax)) return Pass::kNonFinite;
      tail_central(static_cast<double>(tail[k]) - shift, sd, m2, m3, m4);
    }
  }
  const double nn = static_cast<double>(n);
  const double c = sd / nn;
  if (!(c * c * nn <= 0.5 * m2)) return Pass::kPoorShift;  // |mean - K| > std (or NaN)
  *out = block_moments(nn, shift, sd, m2, m3, m4, sum_abs, vmin, vmax);
  return Pass::kOk;
}

ISA_FN bool block_f64(const uint8_t* p, size_t n, Moments* out) {
  const size_t nv = n / 4 * 4;
  const __m256i expmask = _mm256_set1_epi64x(0x7FF0000000000000LL);
  __m256d s0 = _mm256_setzero_pd(), a0 = _mm256_setzero_pd();
  __m256d mn = _mm256_set1_pd(INFINITY), mx = _mm256_set1_pd(-INFINITY);
  __m256i bad = _mm256_setzero_si256();
  for (size_t i = 0; i < nv; i += 4) {
    __m256d x = _mm256_loadu_pd(reinterpret_cast<const double*>(p + i * 8));
    __m256i e = _mm256_and_si256(_mm256_castpd_si256(x), expmask);
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi64(e, expmask));
    s0 = _mm256_add_pd(s0, x);
    a0 = _mm256_add_pd(a0, absd(x));
    mn = _mm256_min_pd(mn, x);
    mx = _mm256_max_pd(mx, x);
  }
  if (!_mm256_testz_si256(bad, bad)) return false;
  double sum = hsum(s0), sum_abs = hsum(a0);
  double lanes_min[4], lanes_max[4];
  _mm256_storeu_pd(lanes_min, mn);
  _mm256_storeu_pd(lanes_max, mx);
  double vmin = INFINITY, vmax = -INFINITY;
  for (int k = 0; k < 4; ++k) {
    vmin = lanes_min[k] < vmin ? lanes_min[k] : vmin;
    vmax = lanes_max[k] > vmax ? lanes_max[k] : vmax;
  }
  for (size_t k = nv; k < n; ++k) {
    double x;
    std::memcpy(&x, p + k * 8, 8);
    if (!tail_extremes(x, sum_abs, vmin, vmax)) return false;
    sum += x;
  }
  const double mean = sum / static_cast<double>(n);
  const __m256d vm = _mm256_set1_pd(mean);
  __m256d q0 = _mm256_setzero_pd(), c0 = _mm256_setzero_pd(), f0 = _mm256_setzero_pd(), e0 = _mm256_setzero_pd();
  for (size_t i = 0; i < nv; i += 4) {
    __m256d d = _mm256_sub_pd(_mm256_loadu_pd(reinterpret_cast<const double*>(p + i * 8)), vm);
    __m256d d2 = _mm256_mul_pd(d, d);
    e0 = _mm256_add_pd(e0, d);
    q0 = _mm256_add_pd(q0, d2);
    c0 = _mm256_fmadd_pd(d2, d, c0);
    f0 = _mm256_fmadd_pd(d2, d2, f0);
  }
  double sd = hsum(e0), m2 = hsum(q0), m3 = hsum(c0), m4 = hsum(f0);
  for (size_t k = nv; k < n; ++k) {
    double x;
    std::memcpy(&x, p + k * 8, 8);
    tail_central(x - mean, sd, m2, m3, m4);
  }
  *out = block_moments(static_cast<double>(n), mean, sd, m2, m3, m4, sum_abs, vmin, vmax);
  return true;
}

// The float32 operations of the 16-bit pass (block_h.inc): 8 lanes.
struct H16 {
  using vec = __m256;
  struct acc { __m256d lo, hi; };
  static constexpr size_t W = 8;
  ISA_FN static vec zero() { return _mm256_setzero_ps(); }
  ISA_FN static vec set1(float x) { return _mm256_set1_ps(x); }
  template <typename L> ISA_FN static vec load(const uint8_t* p) { return L::load8(p); }
  template <typename L> ISA_FN static void load2(const uint8_t* p, vec& x0, vec& x1) { L::load16(p, x0, x1); }
  ISA_FN static void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
  ISA_FN static void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  ISA_FN static vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  ISA_FN static vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  ISA_FN static vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  ISA_FN static vec fmsub(vec a, vec b, vec c) { return _mm256_fmsub_ps(a, b, c); }
  ISA_FN static vec abs(vec a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF))); }
  ISA_FN static vec min(vec a, vec b) { return _mm256_min_ps(a, b); }
  ISA_FN static vec max(vec a, vec b) { return _mm256_max_ps(a, b); }
  ISA_FN static float hmin(vec v) { return mother::hmin(v); }
  ISA_FN static float hmax(vec v) { return mother::hmax(v); }
  ISA_FN static acc acc_zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
  ISA_FN static void fold(acc& a, vec v) {
    a.lo = _mm256_add_pd(a.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a.hi = _mm256_add_pd(a.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  ISA_FN static double hsum(const acc& a) { return mother::hsum(_mm256_add_pd(a.lo, a.hi)); }
};
#include "block_h.inc"

template <typename L>
ISA_FN void run_f(DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  double shift = NAN;  // no block seen yet: the first block takes two passes
  double spread = 0;   // the previous block's std (the 16-bit pass's scale)
  for (uint64_t i = 0; i < n; i += kBlock) {
    size_t len = static_cast<size_t>(n - i < kBlock ? n - i : kBlock);
    const uint8_t* q = p + i * L::kSize;
    Moments b;
    Pass r = Pass::kPoorShift;
    if (!__builtin_isnan(shift)) {
      if constexpr (L::kSize == 2) r = block_h<L>(q, len, shift, spread, &b);
      else r = block_f1<L>(q, len, shift, &b);
    }
    if (r == Pass::kPoorShift && !block_f<L>(q, len, &b)) r = Pass::kNonFinite;
    if (r == Pass::kNonFinite) scalar_block_moments(d, q, len, &b);
    if (b.n > 0) {
      shift = b.mean;
      spread = std::sqrt(b.m2 / b.n);
    }
    merge(*acc, b);
  }
}

ISA_FN void accumulate(DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  switch (d) {
    case DType::F32: run_f<F32>(d, p, n, acc); break;
    case DType::BF16: run_f<BF16>(d, p, n, acc); break;
    case DType::F16: run_f<F16>(d, p, n, acc); break;
    case DType::F64:
      for (uint64_t i = 0; i < n; i += kBlock) {
        size_t len = static_cast<size_t>(n - i < kBlock ? n - i : kBlock);
        Moments b;
        if (!block_f64(p + i * 8, len, &b)) scalar_block_moments(d, p + i * 8, len, &b);
        merge(*acc, b);
      }
      break;
    default: accumulate_f8(d, p, n, acc); break;
  }
}

ISA_FN uint64_t sum_u64(const uint8_t* p, uint64_t nbytes) {
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
  __m256i s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256();
  uint64_t i = 0;
  for (; i + 128 <= nbytes; i += 128) {
    s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
  uint64_t lanes[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), s);
  uint64_t r = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i + 8 <= nbytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    r += w;
  }
  for (; i < nbytes; ++i) r += p[i];
  return r;
}

ISA_FN void pair_diff(const double* a, const double* b, size_t n, double acc[4]) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), t0 = _mm256_setzero_pd(), t1 = _mm256_setzero_pd();
  __m256d mx0 = _mm256_set1_pd(acc[2]), mx1 = mx0, mn0 = _mm256_set1_pd(acc[3]), mn1 = mn0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256d d0 = _mm256_sub_pd(_mm256_loadu_pd(a + i), _mm256_loadu_pd(b + i));
    __m256d d1 = _mm256_sub_pd(_mm256_loadu_pd(a + i + 4), _mm256_loadu_pd(b + i + 4));
    s0 = _mm256_fmadd_pd(d0, d0, s0);
    s1 = _mm256_fmadd_pd(d1, d1, s1);
    t0 = _mm256_add_pd(t0, absd(d0));
    t1 = _mm256_add_pd(t1, absd(d1));
    mx0 = _mm256_max_pd(mx0, d0);
    mx1 = _mm256_max_pd(mx1, d1);
    mn0 = _mm256_min_pd(mn0, d0);
    mn1 = _mm256_min_pd(mn1, d1);
  }
  double lmx[4], lmn[4];
  _mm256_storeu_pd(lmx, _mm256_max_pd(mx0, mx1));
  _mm256_storeu_pd(lmn, _mm256_min_pd(mn0, mn1));
  double tail[4] = {hsum(_mm256_add_pd(s0, s1)), hsum(_mm256_add_pd(t0, t1)), lmx[0], lmn[0]};
  for (int k = 1; k < 4; ++k) {
    tail[2] = lmx[k] > tail[2] ? lmx[k] : tail[2];
    tail[3] = lmn[k] < tail[3] ? lmn[k] : tail[3];
  }
  scalar_pair_diff(a + i, b + i, n - i, tail);
  acc[0] += tail[0];
  acc[1] += tail[1];
  acc[2] = tail[2];
  acc[3] = tail[3];
}

ISA_FN void pair_diff4(const double* const a[4], const double* b, size_t n, double acc[16]) {
  __m256d ss[4], sa[4], mx[4], mn[4];
  for (int k = 0; k < 4; ++k) {
    ss[k] = _mm256_setzero_pd();
    sa[k] = _mm256_setzero_pd();
    mx[k] = _mm256_set1_pd(acc[4 * k + 2]);
    mn[k] = _mm256_set1_pd(acc[4 * k + 3]);
  }
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d bv = _mm256_loadu_pd(b + i);
    for (int k = 0; k < 4; ++k) {
      const __m256d d = _mm256_sub_pd(_mm256_loadu_pd(a[k] + i), bv);
      ss[k] = _mm256_fmadd_pd(d, d, ss[k]);
      sa[k] = _mm256_add_pd(sa[k], absd(d));
      mx[k] = _mm256_max_pd(mx[k], d);
      mn[k] = _mm256_min_pd(mn[k], d);
    }
  }
  for (int k = 0; k < 4; ++k) {
    double lmx[4], lmn[4];
    _mm256_storeu_pd(lmx, mx[k]);
    _mm256_storeu_pd(lmn, mn[k]);
    double t[4] = {hsum(ss[k]), hsum(sa[k]), lmx[0], lmn[0]};
    for (int q = 1; q < 4; ++q) {
      t[2] = lmx[q] > t[2] ? lmx[q] : t[2];
      t[3] = lmn[q] < t[3] ? lmn[q] : t[3];
    }
    scalar_pair_diff(a[k] + i, b + i, n - i, t);
    acc[4 * k] += t[0];
    acc[4 * k + 1] += t[1];
    acc[4 * k + 2] = t[2];
    acc[4 * k + 3] = t[3];
  }
}

template <typename L>
ISA_FN bool decode_t(const uint8_t* p, size_t n, double* out) {
  const __m256i expmask = _mm256_set1_epi32(0x7F800000);
  __m256i bad = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = L::load8(p + i * L::kSize);
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(x), expmask), expmask));
    _mm256_storeu_pd(out + i, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
    _mm256_storeu_pd(out + i + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
  }
  bool tail_bad = false;
  if (i < n) {
    DType d = L::kSize == 4 ? DType::F32 : std::is_same<L, BF16>::value ? DType::BF16 : DType::F16;
    tail_bad = scalar_decode_f64(d, p + i * L::kSize, n - i, out + i);
  }
  return !_mm256_testz_si256(bad, bad) || tail_bad;
}

ISA_FN bool decode_f64(DType d, const uint8_t* p, size_t n, double* out) {
  switch (d) {
    case DType::F32: return decode_t<F32>(p, n, out);
    case DType::BF16: return decode_t<BF16>(p, n, out);
    case DType::F16: return decode_t<F16>(p, n, out);
    default: return scalar_decode_f64(d, p, n, out);
  }
}

template <typename L>
ISA_FN bool decode_center_t(const uint8_t* p, size_t n, const double* ref, double* out, double* sum) {
  const __m256i expmask = _mm256_set1_epi32(0x7F800000);
  __m256i bad = _mm256_setzero_si256();
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = L::load8(p + i * L::kSize);
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(x), expmask), expmask));
    const __m256d y0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_loadu_pd(ref + i));
    const __m256d y1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), _mm256_loadu_pd(ref + i + 4));
    _mm256_storeu_pd(out + i, y0);
    _mm256_storeu_pd(out + i + 4, y1);
    s0 = _mm256_add_pd(s0, y0);
    s1 = _mm256_add_pd(s1, y1);
  }
  double s = hsum(_mm256_add_pd(s0, s1));
  bool tail_bad = false;
  if (i < n) {
    DType d = L::kSize == 4 ? DType::F32 : std::is_same<L, BF16>::value ? DType::BF16 : DType::F16;
    double t;
    tail_bad = scalar_decode_center(d, p + i * L::kSize, n - i, ref + i, out + i, &t);
    s += t;
  }
  *sum = s;
  return !_mm256_testz_si256(bad, bad) || tail_bad;
}

ISA_FN bool decode_center(DType d, const uint8_t* p, size_t n, const double* ref, double* out, double* sum) {
  switch (d) {
    case DType::F32: return decode_center_t<F32>(p, n, ref, out, sum);
    case DType::BF16: return decode_center_t<BF16>(p, n, ref, out, sum);
    case DType::F16: return decode_center_t<F16>(p, n, ref, out, sum);
    default: return scalar_decode_center(d, p, n, ref, out, sum);
  }
}

#include "sketch_rows.inc"

// 4 lanes, 3 x 3 register tiles (9 accumulators + 6 rows in the 16 ymm registers).
struct V {
  using vec = __m256d;
  static constexpr size_t W = 4;
  static constexpr int MR = 3;
  ISA_FN static vec zero() { return _mm256_setzero_pd(); }
  ISA_FN static vec set1(double x) { return _mm256_set1_pd(x); }
  ISA_FN static vec load(const double* p) { return _mm256_loadu_pd(p); }
  ISA_FN static void store(double* p, vec v) { _mm256_storeu_pd(p, v); }
  ISA_FN static vec add(vec a, vec b) { return _mm256_add_pd(a, b); }
  ISA_FN static vec sub(vec a, vec b) { return _mm256_sub_pd(a, b); }
  ISA_FN static vec mul(vec a, vec b) { return _mm256_mul_pd(a, b); }
  ISA_FN static vec fma(vec a, vec b, vec c) { return _mm256_fmadd_pd(a, b, c); }
  ISA_FN static double sfma(double a, double b, double c) { return __builtin_fma(a, b, c); }
  ISA_FN static double hsum(vec v) { return mother::hsum(v); }
};
#include "gram.inc"

const Kernels kAvx2 = {"avx2", accumulate, sum_u64, pair_diff, pair_diff4, decode_f64, decode_center, sketch_rows, MOTHER_ROW_KERNELS};

}  // namespace
}  // namespace mother

#include "isa_end.h"

namespace mother {
const Kernels* kernels_avx2() { return &kAvx2; }
}  // namespace mother

#else
namespace mother {
const Kernels* kernels_avx2() { return nullptr; }
}  // namespace mother
#endif
