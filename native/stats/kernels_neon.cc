// NEON (AArch64 Advanced SIMD) kernels: 4 elements per step, float64 accumulation.
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

namespace mother {
namespace {

struct F32 { static constexpr size_t kSize = 4;
  static float32x4_t load4(const uint8_t* p) { return vreinterpretq_f32_u8(vld1q_u8(p)); } };
struct BF16 { static constexpr size_t kSize = 2;
  static float32x4_t load4(const uint8_t* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8(p)), 16)); } };
struct F16 { static constexpr size_t kSize = 2;
  static float32x4_t load4(const uint8_t* p) { return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p))); } };

template <typename L>
bool block_f(const uint8_t* p, size_t n, Moments* out) {
  const size_t nv = n / 4 * 4;
  const uint32x4_t expmask = vdupq_n_u32(0x7F800000u);
  float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0), a0 = vdupq_n_f64(0), a1 = vdupq_n_f64(0);
  float32x4_t mn = vdupq_n_f32(INFINITY), mx = vdupq_n_f32(-INFINITY);
  uint32x4_t bad = vdupq_n_u32(0);
  for (size_t i = 0; i < nv; i += 4) {
    float32x4_t x = L::load4(p + i * L::kSize);
    bad = vorrq_u32(bad, vceqq_u32(vandq_u32(vreinterpretq_u32_f32(x), expmask), expmask));
    float64x2_t lo = vcvt_f64_f32(vget_low_f32(x)), hi = vcvt_high_f64_f32(x);
    s0 = vaddq_f64(s0, lo);
    s1 = vaddq_f64(s1, hi);
    a0 = vaddq_f64(a0, vabsq_f64(lo));
    a1 = vaddq_f64(a1, vabsq_f64(hi));
    mn = vminq_f32(mn, x);
    mx = vmaxq_f32(mx, x);
  }
  if (vmaxvq_u32(bad)) return false;
  double sum = vaddvq_f64(vaddq_f64(s0, s1)), sum_abs = vaddvq_f64(vaddq_f64(a0, a1));
  double vmin = nv ? vminvq_f32(mn) : INFINITY, vmax = nv ? vmaxvq_f32(mx) : -INFINITY;
  float tail[4];
  const size_t nt = n - nv;
  if (nt) {
    uint8_t buf[16] = {0};
    std::memcpy(buf, p + nv * L::kSize, nt * L::kSize);
    vst1q_f32(tail, L::load4(buf));
    for (size_t k = 0; k < nt; ++k) {
      if (!tail_extremes(tail[k], sum_abs, vmin, vmax)) return false;
      sum += tail[k];
    }
  }
  const double mean = sum / static_cast<double>(n);
  const float64x2_t vm = vdupq_n_f64(mean);
  float64x2_t q0 = vdupq_n_f64(0), q1 = vdupq_n_f64(0), c0 = vdupq_n_f64(0), c1 = vdupq_n_f64(0);
  float64x2_t f0 = vdupq_n_f64(0), f1 = vdupq_n_f64(0), e0 = vdupq_n_f64(0), e1 = vdupq_n_f64(0);
  for (size_t i = 0; i < nv; i += 4) {
    float32x4_t x = L::load4(p + i * L::kSize);
    float64x2_t lo = vsubq_f64(vcvt_f64_f32(vget_low_f32(x)), vm), hi = vsubq_f64(vcvt_high_f64_f32(x), vm);
    float64x2_t lo2 = vmulq_f64(lo, lo), hi2 = vmulq_f64(hi, hi);
    e0 = vaddq_f64(e0, lo);
    e1 = vaddq_f64(e1, hi);
    q0 = vaddq_f64(q0, lo2);
    q1 = vaddq_f64(q1, hi2);
    c0 = vfmaq_f64(c0, lo2, lo);
    c1 = vfmaq_f64(c1, hi2, hi);
    f0 = vfmaq_f64(f0, lo2, lo2);
    f1 = vfmaq_f64(f1, hi2, hi2);
  }
  double sd = vaddvq_f64(vaddq_f64(e0, e1));
  double m2 = vaddvq_f64(vaddq_f64(q0, q1)), m3 = vaddvq_f64(vaddq_f64(c0, c1)), m4 = vaddvq_f64(vaddq_f64(f0, f1));
  for (size_t k = 0; k < nt; ++k) {
    tail_central(static_cast<double>(tail[k]) - mean, sd, m2, m3, m4);
  }
  *out = block_moments(static_cast<double>(n), mean, sd, m2, m3, m4, sum_abs, vmin, vmax);
  return true;
}

enum class Pass { kOk, kNonFinite, kPoorShift };

// Single pass about a shift K (the previous block's mean); see kernels_avx512.cc.
template <typename L>
Pass block_f1(const uint8_t* p, size_t n, double shift, Moments* out) {
  const size_t nv = n / 4 * 4;
  const uint32x4_t expmask = vdupq_n_u32(0x7F800000u);
  const float64x2_t vk = vdupq_n_f64(shift);
  float64x2_t e0 = vdupq_n_f64(0), e1 = vdupq_n_f64(0), q0 = vdupq_n_f64(0), q1 = vdupq_n_f64(0);
  float64x2_t c0 = vdupq_n_f64(0), c1 = vdupq_n_f64(0), f0 = vdupq_n_f64(0), f1 = vdupq_n_f64(0);
  float64x2_t a0 = vdupq_n_f64(0), a1 = vdupq_n_f64(0);
  float32x4_t mn = vdupq_n_f32(INFINITY), mx = vdupq_n_f32(-INFINITY);
  uint32x4_t bad = vdupq_n_u32(0);
  for (size_t i = 0; i < nv; i += 4) {
    float32x4_t x = L::load4(p + i * L::kSize);
    bad = vorrq_u32(bad, vceqq_u32(vandq_u32(vreinterpretq_u32_f32(x), expmask), expmask));
    mn = vminq_f32(mn, x);
    mx = vmaxq_f32(mx, x);
    float64x2_t xl = vcvt_f64_f32(vget_low_f32(x)), xh = vcvt_high_f64_f32(x);
    a0 = vaddq_f64(a0, vabsq_f64(xl));
    a1 = vaddq_f64(a1, vabsq_f64(xh));
    float64x2_t lo = vsubq_f64(xl, vk), hi = vsubq_f64(xh, vk);
    float64x2_t lo2 = vmulq_f64(lo, lo), hi2 = vmulq_f64(hi, hi);
    e0 = vaddq_f64(e0, lo);
    e1 = vaddq_f64(e1, hi);
    q0 = vaddq_f64(q0, lo2);
    q1 = vaddq_f64(q1, hi2);
    c0 = vfmaq_f64(c0, lo2, lo);
    c1 = vfmaq_f64(c1, hi2, hi);
    f0 = vfmaq_f64(f0, lo2, lo2);
    f1 = vfmaq_f64(f1, hi2, hi2);
  }
  if (vmaxvq_u32(bad)) return Pass::kNonFinite;
  double sd = vaddvq_f64(vaddq_f64(e0, e1));
  double m2 = vaddvq_f64(vaddq_f64(q0, q1)), m3 = vaddvq_f64(vaddq_f64(c0, c1)), m4 = vaddvq_f64(vaddq_f64(f0, f1));
  double sum_abs = vaddvq_f64(vaddq_f64(a0, a1));
  double vmin = nv ? vminvq_f32(mn) : INFINITY, vmax = nv ? vmaxvq_f32(mx) : -INFINITY;
  const size_t nt = n - nv;
  if (nt) {
    float tail[4];
    uint8_t buf[16] = {0};
    std::memcpy(buf, p + nv * L::kSize, nt * L::kSize);
    vst1q_f32(tail, L::load4(buf));
    for (size_t k = 0; k < nt; ++k) {
      if (!tail_extremes(tail[k], sum_abs, vmin, vmax)) return Pass::kNonFinite;
      tail_central(static_cast<double>(tail[k]) - shift, sd, m2, m3, m4);
    }
  }
  const double nn = static_cast<double>(n);
  const double c = sd / nn;
  if (!(c * c * nn <= 0.5 * m2)) return Pass::kPoorShift;
  *out = block_moments(nn, shift, sd, m2, m3, m4, sum_abs, vmin, vmax);
  return Pass::kOk;
}

template <typename L>
void run_f(DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  double shift = NAN;  // no block seen yet: the first block takes two passes
  for (uint64_t i = 0; i < n; i += kBlock) {
    size_t len = static_cast<size_t>(n - i < kBlock ? n - i : kBlock);
    const uint8_t* q = p + i * L::kSize;
    Moments b;
    Pass r = __builtin_isnan(shift) ? Pass::kPoorShift : block_f1<L>(q, len, shift, &b);
    if (r == Pass::kPoorShift && !block_f<L>(q, len, &b)) r = Pass::kNonFinite;
    if (r == Pass::kNonFinite) scalar_block_moments(d, q, len, &b);
    if (b.n > 0) shift = b.mean;
    merge(*acc, b);
  }
}

void accumulate(DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  switch (d) {
    case DType::F32: run_f<F32>(d, p, n, acc); break;
    case DType::BF16: run_f<BF16>(d, p, n, acc); break;
    case DType::F16: run_f<F16>(d, p, n, acc); break;
    default: kernels_scalar()->accumulate(d, p, n, acc); break;  // F64 and 8-bit formats
  }
}

uint64_t sum_u64(const uint8_t* p, uint64_t nbytes) {
  uint64x2_t s0 = vdupq_n_u64(0), s1 = vdupq_n_u64(0);
  uint64_t i = 0;
  for (; i + 32 <= nbytes; i += 32) {
    s0 = vaddq_u64(s0, vreinterpretq_u64_u8(vld1q_u8(p + i)));
    s1 = vaddq_u64(s1, vreinterpretq_u64_u8(vld1q_u8(p + i + 16)));
  }
  uint64_t r = vaddvq_u64(vaddq_u64(s0, s1));
  for (; i + 8 <= nbytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    r += w;
  }
  for (; i < nbytes; ++i) r += p[i];
  return r;
}

void pair_diff(const double* a, const double* b, size_t n, double acc[4]) {
  float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0), t0 = vdupq_n_f64(0), t1 = vdupq_n_f64(0);
  float64x2_t mx = vdupq_n_f64(acc[2]), mn = vdupq_n_f64(acc[3]);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float64x2_t d0 = vsubq_f64(vld1q_f64(a + i), vld1q_f64(b + i));
    float64x2_t d1 = vsubq_f64(vld1q_f64(a + i + 2), vld1q_f64(b + i + 2));
    s0 = vfmaq_f64(s0, d0, d0);
    s1 = vfmaq_f64(s1, d1, d1);
    t0 = vaddq_f64(t0, vabsq_f64(d0));
    t1 = vaddq_f64(t1, vabsq_f64(d1));
    mx = vmaxq_f64(mx, vmaxq_f64(d0, d1));
    mn = vminq_f64(mn, vminq_f64(d0, d1));
  }
  double tail[4] = {vaddvq_f64(vaddq_f64(s0, s1)), vaddvq_f64(vaddq_f64(t0, t1)), vmaxvq_f64(mx), vminvq_f64(mn)};
  scalar_pair_diff(a + i, b + i, n - i, tail);
  acc[0] += tail[0];
  acc[1] += tail[1];
  acc[2] = tail[2];
  acc[3] = tail[3];
}

#define ISA_FN
#include "sketch_rows.inc"
#undef ISA_FN

void pair_diff4(const double* const a[4], const double* b, size_t n, double acc[16]) {
  for (int k = 0; k < 4; ++k) pair_diff(a[k], b, n, acc + 4 * k);
}

// 2 lanes, 4 x 4 register tiles (16 accumulators + 8 rows in the 32 q registers).
struct V {
  using vec = float64x2_t;
  static constexpr size_t W = 2;
  static constexpr int MR = 4;
  static vec zero() { return vdupq_n_f64(0); }
  static vec set1(double x) { return vdupq_n_f64(x); }
  static vec load(const double* p) { return vld1q_f64(p); }
  static void store(double* p, vec v) { vst1q_f64(p, v); }
  static vec add(vec a, vec b) { return vaddq_f64(a, b); }
  static vec sub(vec a, vec b) { return vsubq_f64(a, b); }
  static vec mul(vec a, vec b) { return vmulq_f64(a, b); }
  static vec fma(vec a, vec b, vec c) { return vfmaq_f64(c, a, b); }
  static double sfma(double a, double b, double c) { return __builtin_fma(a, b, c); }
  static double hsum(vec v) { return vgetq_lane_f64(v, 0) + vgetq_lane_f64(v, 1); }
};
#define ISA_FN
#include "gram.inc"
#undef ISA_FN

const Kernels kNeon = {"neon", accumulate, sum_u64, pair_diff, pair_diff4, scalar_decode_f64, scalar_decode_center, sketch_rows,
                       MOTHER_ROW_KERNELS};

}  // namespace

const Kernels* kernels_neon() { return &kNeon; }
}  // namespace mother

#else
namespace mother {
const Kernels* kernels_neon() { return nullptr; }
}  // namespace mother
#endif
