// AVX-512 (F, BW, VL, DQ) kernels: 16 elements per step, float64 accumulation (F16 and BF16:
// float32 over short runs, folded into float64; block_h.inc).
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#define MOTHER_ISA_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"
#include "isa_begin.h"

namespace mother {
namespace {

struct F32 { static constexpr size_t kSize = 4;
  ISA_FN static __m512 load16(const uint8_t* p) { return _mm512_loadu_ps(p); } };
struct BF16 { static constexpr size_t kSize = 2;
  ISA_FN static __m512 load16(const uint8_t* p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)); }
  // 32 elements, in an order of their own (the low 4 of each 8 in x0): for sums, min and max
  ISA_FN static void load32(const uint8_t* p, __m512& x0, __m512& x1) {
    const __m512i w = _mm512_loadu_si512(p), z = _mm512_setzero_si512();
    x0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, w));
    x1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, w)); } };
struct F16 { static constexpr size_t kSize = 2;
  ISA_FN static __m512 load16(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  ISA_FN static void load32(const uint8_t* p, __m512& x0, __m512& x1) { x0 = load16(p); x1 = load16(p + 32); } };

// fpclass bits: QNaN 0x01, +Inf 0x08, -Inf 0x10, SNaN 0x80
constexpr int kNonFinite = 0x01 | 0x08 | 0x10 | 0x80;

ISA_FN inline double hsum(__m512d v) { return _mm512_reduce_add_pd(v); }

// Float-sourced block (F32, F16, BF16). Returns false when the block holds NaN/Inf.
template <typename L>
ISA_FN bool block_f(const uint8_t* p, size_t n, Moments* out) {
  const size_t nv = n / 16 * 16;
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  __m512 mn = _mm512_set1_ps(INFINITY), mx = _mm512_set1_ps(-INFINITY);
  __mmask16 bad = 0;
  for (size_t i = 0; i < nv; i += 16) {
    __m512 x = L::load16(p + i * L::kSize);
    bad |= _mm512_fpclass_ps_mask(x, kNonFinite);
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    s0 = _mm512_add_pd(s0, lo);
    s1 = _mm512_add_pd(s1, hi);
    a0 = _mm512_add_pd(a0, _mm512_abs_pd(lo));
    a1 = _mm512_add_pd(a1, _mm512_abs_pd(hi));
    mn = _mm512_min_ps(mn, x);
    mx = _mm512_max_ps(mx, x);
  }
  if (bad) return false;
  double sum = hsum(_mm512_add_pd(s0, s1));
  double sum_abs = hsum(_mm512_add_pd(a0, a1));
  double vmin = nv ? _mm512_reduce_min_ps(mn) : INFINITY;
  double vmax = nv ? _mm512_reduce_max_ps(mx) : -INFINITY;
  // tail (< 16 elements), scalar, through the same loader on a zero-padded copy
  float tail[16];
  const size_t nt = n - nv;
  if (nt) {
    alignas(64) uint8_t buf[16 * 4] = {0};
    std::memcpy(buf, p + nv * L::kSize, nt * L::kSize);
    _mm512_storeu_ps(tail, L::load16(buf));
    for (size_t k = 0; k < nt; ++k) {
      if (!tail_extremes(tail[k], sum_abs, vmin, vmax)) return false;
      sum += tail[k];
    }
  }
  const double mean = sum / static_cast<double>(n);
  const __m512d vm = _mm512_set1_pd(mean);
  __m512d q0 = _mm512_setzero_pd(), q1 = _mm512_setzero_pd();
  __m512d c0 = _mm512_setzero_pd(), c1 = _mm512_setzero_pd();
  __m512d f0 = _mm512_setzero_pd(), f1 = _mm512_setzero_pd();
  __m512d e0 = _mm512_setzero_pd(), e1 = _mm512_setzero_pd();
  // The next block streams in from memory while this one is reduced from L1.
  const uint8_t* next = p + n * L::kSize;
  for (size_t i = 0; i < nv; i += 16) {
    _mm_prefetch(reinterpret_cast<const char*>(next + i * L::kSize), _MM_HINT_T0);
    __m512 x = L::load16(p + i * L::kSize);
    __m512d lo = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), vm);
    __m512d hi = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))), vm);
    __m512d lo2 = _mm512_mul_pd(lo, lo), hi2 = _mm512_mul_pd(hi, hi);
    e0 = _mm512_add_pd(e0, lo);
    e1 = _mm512_add_pd(e1, hi);
    q0 = _mm512_add_pd(q0, lo2);
    q1 = _mm512_add_pd(q1, hi2);
    c0 = _mm512_fmadd_pd(lo2, lo, c0);
    c1 = _mm512_fmadd_pd(hi2, hi, c1);
    f0 = _mm512_fmadd_pd(lo2, lo2, f0);
    f1 = _mm512_fmadd_pd(hi2, hi2, f1);
  }
  double sd = hsum(_mm512_add_pd(e0, e1));
  double m2 = hsum(_mm512_add_pd(q0, q1)), m3 = hsum(_mm512_add_pd(c0, c1)), m4 = hsum(_mm512_add_pd(f0, f1));
  for (size_t k = 0; k < nt; ++k) {
    tail_central(static_cast<double>(tail[k]) - mean, sd, m2, m3, m4);
  }
  *out = block_moments(static_cast<double>(n), mean, sd, m2, m3, m4, sum_abs, vmin, vmax);
  return true;
}

enum class Pass { kOk, kNonFinite, kPoorShift, kRange };

// Single pass about a shift K (the previous block's mean): sums of d = x - K, d^2, d^3, d^4,
// |x|, min, max in one read. block_moments() folds the residual mean exactly; that loses
// digits only when the block mean is far from K relative to its spread, which is detected
// (|mean - K| > std) and answered with the two-pass block.
template <typename L>
ISA_FN Pass block_f1(const uint8_t* p, size_t n, double shift, Moments* out) {
  const size_t nv = n / 16 * 16;
  const __m512d vk = _mm512_set1_pd(shift);
  __m512d e0 = _mm512_setzero_pd(), e1 = _mm512_setzero_pd();
  __m512d q0 = _mm512_setzero_pd(), q1 = _mm512_setzero_pd();
  __m512d c0 = _mm512_setzero_pd(), c1 = _mm512_setzero_pd();
  __m512d f0 = _mm512_setzero_pd(), f1 = _mm512_setzero_pd();
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  __m512 mn = _mm512_set1_ps(INFINITY), mx = _mm512_set1_ps(-INFINITY);
  __mmask16 bad = 0;
  const uint8_t* next = p + n * L::kSize;
  for (size_t i = 0; i < nv; i += 16) {
    _mm_prefetch(reinterpret_cast<const char*>(next + i * L::kSize), _MM_HINT_T0);
    __m512 x = L::load16(p + i * L::kSize);
    bad |= _mm512_fpclass_ps_mask(x, kNonFinite);
    mn = _mm512_min_ps(mn, x);
    mx = _mm512_max_ps(mx, x);
    __m512d xl = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    __m512d xh = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    a0 = _mm512_add_pd(a0, _mm512_abs_pd(xl));
    a1 = _mm512_add_pd(a1, _mm512_abs_pd(xh));
    __m512d lo = _mm512_sub_pd(xl, vk), hi = _mm512_sub_pd(xh, vk);
    __m512d lo2 = _mm512_mul_pd(lo, lo), hi2 = _mm512_mul_pd(hi, hi);
    e0 = _mm512_add_pd(e0, lo);
    e1 = _mm512_add_pd(e1, hi);
    q0 = _mm512_add_pd(q0, lo2);
    q1 = _mm512_add_pd(q1, hi2);
    c0 = _mm512_fmadd_pd(lo2, lo, c0);
    c1 = _mm512_fmadd_pd(hi2, hi, c1);
    f0 = _mm512_fmadd_pd(lo2, lo2, f0);
    f1 = _mm512_fmadd_pd(hi2, hi2, f1);
  }
  if (bad) return Pass::kNonFinite;
  double sd = hsum(_mm512_add_pd(e0, e1));
  double m2 = hsum(_mm512_add_pd(q0, q1)), m3 = hsum(_mm512_add_pd(c0, c1)), m4 = hsum(_mm512_add_pd(f0, f1));
  double sum_abs = hsum(_mm512_add_pd(a0, a1));
  double vmin = nv ? _mm512_reduce_min_ps(mn) : INFINITY;
  double vmax = nv ? _mm512_reduce_max_ps(mx) : -INFINITY;
  const size_t nt = n - nv;
  if (nt) {
    float tail[16];
    alignas(64) uint8_t buf[16 * 4] = {0};
    std::memcpy(buf, p + nv * L::kSize, nt * L::kSize);
    _mm512_storeu_ps(tail, L::load16(buf));
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
  const size_t nv = n / 8 * 8;
  __m512d s0 = _mm512_setzero_pd(), a0 = _mm512_setzero_pd();
  __m512d mn = _mm512_set1_pd(INFINITY), mx = _mm512_set1_pd(-INFINITY);
  __mmask8 bad = 0;
  for (size_t i = 0; i < nv; i += 8) {
    __m512d x = _mm512_loadu_pd(p + i * 8);
    bad |= _mm512_fpclass_pd_mask(x, kNonFinite);
    s0 = _mm512_add_pd(s0, x);
    a0 = _mm512_add_pd(a0, _mm512_abs_pd(x));
    mn = _mm512_min_pd(mn, x);
    mx = _mm512_max_pd(mx, x);
  }
  if (bad) return false;
  double sum = hsum(s0), sum_abs = hsum(a0);
  double vmin = nv ? _mm512_reduce_min_pd(mn) : INFINITY;
  double vmax = nv ? _mm512_reduce_max_pd(mx) : -INFINITY;
  for (size_t k = nv; k < n; ++k) {
    double x;
    std::memcpy(&x, p + k * 8, 8);
    if (!tail_extremes(x, sum_abs, vmin, vmax)) return false;
    sum += x;
  }
  const double mean = sum / static_cast<double>(n);
  const __m512d vm = _mm512_set1_pd(mean);
  __m512d q0 = _mm512_setzero_pd(), c0 = _mm512_setzero_pd(), f0 = _mm512_setzero_pd(), e0 = _mm512_setzero_pd();
  for (size_t i = 0; i < nv; i += 8) {
    __m512d d = _mm512_sub_pd(_mm512_loadu_pd(p + i * 8), vm);
    __m512d d2 = _mm512_mul_pd(d, d);
    e0 = _mm512_add_pd(e0, d);
    q0 = _mm512_add_pd(q0, d2);
    c0 = _mm512_fmadd_pd(d2, d, c0);
    f0 = _mm512_fmadd_pd(d2, d2, f0);
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

// The float32 operations of the 16-bit pass (block_h.inc): 16 lanes.
struct H16 {
  using vec = __m512;
  struct acc { __m512d lo, hi; };
  static constexpr size_t W = 16;
  ISA_FN static vec zero() { return _mm512_setzero_ps(); }
  ISA_FN static vec set1(float x) { return _mm512_set1_ps(x); }
  template <typename L> ISA_FN static vec load(const uint8_t* p) { return L::load16(p); }
  template <typename L> ISA_FN static void load2(const uint8_t* p, vec& x0, vec& x1) { L::load32(p, x0, x1); }
  ISA_FN static void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
  ISA_FN static void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  ISA_FN static vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  ISA_FN static vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  ISA_FN static vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  ISA_FN static vec fmsub(vec a, vec b, vec c) { return _mm512_fmsub_ps(a, b, c); }
  ISA_FN static vec abs(vec a) { return _mm512_abs_ps(a); }
  ISA_FN static vec min(vec a, vec b) { return _mm512_min_ps(a, b); }
  ISA_FN static vec max(vec a, vec b) { return _mm512_max_ps(a, b); }
  ISA_FN static float hmin(vec v) { return _mm512_reduce_min_ps(v); }
  ISA_FN static float hmax(vec v) { return _mm512_reduce_max_ps(v); }
  ISA_FN static acc acc_zero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
  ISA_FN static void fold(acc& a, vec v) {
    a.lo = _mm512_add_pd(a.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    a.hi = _mm512_add_pd(a.hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
  }
  ISA_FN static double hsum(const acc& a) { return _mm512_reduce_add_pd(_mm512_add_pd(a.lo, a.hi)); }
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
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  __m512i s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
  uint64_t i = 0;
  for (; i + 256 <= nbytes; i += 256) {
    s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(p + i));
    s1 = _mm512_add_epi64(s1, _mm512_loadu_si512(p + i + 64));
    s2 = _mm512_add_epi64(s2, _mm512_loadu_si512(p + i + 128));
    s3 = _mm512_add_epi64(s3, _mm512_loadu_si512(p + i + 192));
  }
  uint64_t s = static_cast<uint64_t>(_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3))));
  for (; i + 8 <= nbytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    s += w;
  }
  for (; i < nbytes; ++i) s += p[i];
  return s;
}

ISA_FN void pair_diff(const double* a, const double* b, size_t n, double acc[4]) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd(), t0 = _mm512_setzero_pd(), t1 = _mm512_setzero_pd();
  __m512d mx0 = _mm512_set1_pd(acc[2]), mx1 = mx0, mn0 = _mm512_set1_pd(acc[3]), mn1 = mn0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512d d0 = _mm512_sub_pd(_mm512_loadu_pd(a + i), _mm512_loadu_pd(b + i));
    __m512d d1 = _mm512_sub_pd(_mm512_loadu_pd(a + i + 8), _mm512_loadu_pd(b + i + 8));
    s0 = _mm512_fmadd_pd(d0, d0, s0);
    s1 = _mm512_fmadd_pd(d1, d1, s1);
    t0 = _mm512_add_pd(t0, _mm512_abs_pd(d0));
    t1 = _mm512_add_pd(t1, _mm512_abs_pd(d1));
    mx0 = _mm512_max_pd(mx0, d0);
    mx1 = _mm512_max_pd(mx1, d1);
    mn0 = _mm512_min_pd(mn0, d0);
    mn1 = _mm512_min_pd(mn1, d1);
  }
  double tail[4] = {hsum(_mm512_add_pd(s0, s1)), hsum(_mm512_add_pd(t0, t1)),
                    _mm512_reduce_max_pd(_mm512_max_pd(mx0, mx1)), _mm512_reduce_min_pd(_mm512_min_pd(mn0, mn1))};
  scalar_pair_diff(a + i, b + i, n - i, tail);
  acc[0] += tail[0];
  acc[1] += tail[1];
  acc[2] = tail[2];
  acc[3] = tail[3];
}

ISA_FN void pair_diff4(const double* const a[4], const double* b, size_t n, double acc[16]) {
  __m512d ss[4], sa[4], mx[4], mn[4];
  for (int k = 0; k < 4; ++k) {
    ss[k] = _mm512_setzero_pd();
    sa[k] = _mm512_setzero_pd();
    mx[k] = _mm512_set1_pd(acc[4 * k + 2]);
    mn[k] = _mm512_set1_pd(acc[4 * k + 3]);
  }
  const double *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d bv = _mm512_loadu_pd(b + i);
    const __m512d d0 = _mm512_sub_pd(_mm512_loadu_pd(a0 + i), bv);
    const __m512d d1 = _mm512_sub_pd(_mm512_loadu_pd(a1 + i), bv);
    const __m512d d2 = _mm512_sub_pd(_mm512_loadu_pd(a2 + i), bv);
    const __m512d d3 = _mm512_sub_pd(_mm512_loadu_pd(a3 + i), bv);
    ss[0] = _mm512_fmadd_pd(d0, d0, ss[0]);
    ss[1] = _mm512_fmadd_pd(d1, d1, ss[1]);
    ss[2] = _mm512_fmadd_pd(d2, d2, ss[2]);
    ss[3] = _mm512_fmadd_pd(d3, d3, ss[3]);
    sa[0] = _mm512_add_pd(sa[0], _mm512_abs_pd(d0));
    sa[1] = _mm512_add_pd(sa[1], _mm512_abs_pd(d1));
    sa[2] = _mm512_add_pd(sa[2], _mm512_abs_pd(d2));
    sa[3] = _mm512_add_pd(sa[3], _mm512_abs_pd(d3));
    mx[0] = _mm512_max_pd(mx[0], d0);
    mx[1] = _mm512_max_pd(mx[1], d1);
    mx[2] = _mm512_max_pd(mx[2], d2);
    mx[3] = _mm512_max_pd(mx[3], d3);
    mn[0] = _mm512_min_pd(mn[0], d0);
    mn[1] = _mm512_min_pd(mn[1], d1);
    mn[2] = _mm512_min_pd(mn[2], d2);
    mn[3] = _mm512_min_pd(mn[3], d3);
  }
  for (int k = 0; k < 4; ++k) {
    double t[4] = {hsum(ss[k]), hsum(sa[k]), _mm512_reduce_max_pd(mx[k]), _mm512_reduce_min_pd(mn[k])};
    scalar_pair_diff(a[k] + i, b + i, n - i, t);
    acc[4 * k] += t[0];
    acc[4 * k + 1] += t[1];
    acc[4 * k + 2] = t[2];
    acc[4 * k + 3] = t[3];
  }
}

template <typename L>
ISA_FN bool decode_t(const uint8_t* p, size_t n, double* out) {
  __mmask16 bad = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 x = L::load16(p + i * L::kSize);
    bad |= _mm512_fpclass_ps_mask(x, kNonFinite);
    _mm512_storeu_pd(out + i, _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
    _mm512_storeu_pd(out + i + 8, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))));
  }
  bool tail_bad = false;
  if (i < n) {
    DType d = L::kSize == 4 ? DType::F32 : std::is_same<L, BF16>::value ? DType::BF16 : DType::F16;
    tail_bad = scalar_decode_f64(d, p + i * L::kSize, n - i, out + i);
  }
  return bad != 0 || tail_bad;
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
  __mmask16 bad = 0;
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 x = L::load16(p + i * L::kSize);
    bad |= _mm512_fpclass_ps_mask(x, kNonFinite);
    const __m512d y0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), _mm512_loadu_pd(ref + i));
    const __m512d y1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))),
                                     _mm512_loadu_pd(ref + i + 8));
    _mm512_storeu_pd(out + i, y0);
    _mm512_storeu_pd(out + i + 8, y1);
    s0 = _mm512_add_pd(s0, y0);
    s1 = _mm512_add_pd(s1, y1);
  }
  double s = hsum(_mm512_add_pd(s0, s1));
  bool tail_bad = false;
  if (i < n) {
    DType d = L::kSize == 4 ? DType::F32 : std::is_same<L, BF16>::value ? DType::BF16 : DType::F16;
    double t;
    tail_bad = scalar_decode_center(d, p + i * L::kSize, n - i, ref + i, out + i, &t);
    s += t;
  }
  *sum = s;
  return bad != 0 || tail_bad;
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

// 8 lanes, 4 x 4 register tiles (16 accumulators + 8 rows in the 32 zmm registers).
struct V {
  using vec = __m512d;
  static constexpr size_t W = 8;
  static constexpr int MR = 4;
  ISA_FN static vec zero() { return _mm512_setzero_pd(); }
  ISA_FN static vec set1(double x) { return _mm512_set1_pd(x); }
  ISA_FN static vec load(const double* p) { return _mm512_loadu_pd(p); }
  ISA_FN static void store(double* p, vec v) { _mm512_storeu_pd(p, v); }
  ISA_FN static vec add(vec a, vec b) { return _mm512_add_pd(a, b); }
  ISA_FN static vec sub(vec a, vec b) { return _mm512_sub_pd(a, b); }
  ISA_FN static vec mul(vec a, vec b) { return _mm512_mul_pd(a, b); }
  ISA_FN static vec fma(vec a, vec b, vec c) { return _mm512_fmadd_pd(a, b, c); }
  ISA_FN static double sfma(double a, double b, double c) { return __builtin_fma(a, b, c); }
  ISA_FN static double hsum(vec v) {
    // (lanes 0-3 + lanes 4-7), then as the AVX2 hsum: a fixed order
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};
#include "gram.inc"

const Kernels kAvx512 = {"avx512", accumulate, sum_u64, pair_diff, pair_diff4, decode_f64, decode_center, sketch_rows,
                         MOTHER_ROW_KERNELS};

}  // namespace
}  // namespace mother

#include "isa_end.h"

namespace mother {
const Kernels* kernels_avx512() { return &kAvx512; }
}  // namespace mother

#else
namespace mother {
const Kernels* kernels_avx512() { return nullptr; }
}  // namespace mother
#endif
