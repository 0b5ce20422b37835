// Portable scalar kernels: the reference every SIMD kernel is tested against.
#include <cmath>
#include <cstring>

#include "kernels.h"

namespace mother {

namespace {

struct LoadF32 { static constexpr size_t kSize = 4; static double at(const uint8_t* p, size_t i) { float f; std::memcpy(&f, p + 4 * i, 4); return f; } };
struct LoadF64 { static constexpr size_t kSize = 8; static double at(const uint8_t* p, size_t i) { double f; std::memcpy(&f, p + 8 * i, 8); return f; } };
struct LoadF16 { static constexpr size_t kSize = 2; static double at(const uint8_t* p, size_t i) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); return f16_to_f32(h); } };
struct LoadBF16 { static constexpr size_t kSize = 2; static double at(const uint8_t* p, size_t i) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); return bf16_to_f32(h); } };

template <typename L>
void block(const uint8_t* p, size_t n, Moments* out) {
  Moments b;
  double sum = 0, sum_abs = 0, mn = INFINITY, mx = -INFINITY;
  size_t finite = 0;
  for (size_t i = 0; i < n; ++i) {
    double x = L::at(p, i);
    if (std::isnan(x)) { ++b.nan; continue; }
    if (std::isinf(x)) { ++b.inf; continue; }
    ++finite;
    sum += x;
    sum_abs += std::fabs(x);
    mn = x < mn ? x : mn;
    mx = x > mx ? x : mx;
  }
  if (finite > 0) {
    const double mean = sum / static_cast<double>(finite);
    double sd = 0, m2 = 0, m3 = 0, m4 = 0;
    for (size_t i = 0; i < n; ++i) {
      double x = L::at(p, i);
      if (!std::isfinite(x)) continue;
      double d = x - mean, d2 = d * d;
      sd += d;
      m2 += d2;
      m3 += d2 * d;
      m4 += d2 * d2;
    }
    uint64_t nan = b.nan, inf = b.inf;
    b = block_moments(static_cast<double>(finite), mean, sd, m2, m3, m4, sum_abs, mn, mx);
    b.nan = nan;
    b.inf = inf;
  }
  *out = b;
}

template <typename L>
void accumulate_t(const uint8_t* p, uint64_t n, Moments* acc) {
  for (uint64_t i = 0; i < n; i += kBlock) {
    size_t len = static_cast<size_t>(n - i < kBlock ? n - i : kBlock);
    Moments b;
    block<L>(p + i * L::kSize, len, &b);
    merge(*acc, b);
  }
}

void accumulate(DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  switch (d) {
    case DType::F32: accumulate_t<LoadF32>(p, n, acc); break;
    case DType::F64: accumulate_t<LoadF64>(p, n, acc); break;
    case DType::F16: accumulate_t<LoadF16>(p, n, acc); break;
    case DType::BF16: accumulate_t<LoadBF16>(p, n, acc); break;
    default: accumulate_f8(d, p, n, acc); break;
  }
}

uint64_t sum_u64(const uint8_t* p, uint64_t nbytes) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  uint64_t i = 0;
  for (; i + 32 <= nbytes; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    s0 += w[0]; s1 += w[1]; s2 += w[2]; s3 += w[3];
  }
  uint64_t s = s0 + s1 + s2 + s3;
  for (; i + 8 <= nbytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    s += w;
  }
  for (; i < nbytes; ++i) s += p[i];
  return s;
}

#define ISA_FN
#include "sketch_rows.inc"

// One lane; no fused multiply-add (the portable reference).
struct V {
  using vec = double;
  static constexpr size_t W = 1;
  static constexpr int MR = 3;
  static vec zero() { return 0.0; }
  static vec set1(double x) { return x; }
  static vec load(const double* p) { return *p; }
  static void store(double* p, vec v) { *p = v; }
  static vec add(vec a, vec b) { return a + b; }
  static vec sub(vec a, vec b) { return a - b; }
  static vec mul(vec a, vec b) { return a * b; }
  static vec fma(vec a, vec b, vec c) { return a * b + c; }
  static double sfma(double a, double b, double c) { return a * b + c; }
  static double hsum(vec v) { return v; }
};
#include "gram.inc"
#undef ISA_FN

const Kernels kScalar = {"scalar", accumulate, sum_u64, scalar_pair_diff, scalar_pair_diff4, scalar_decode_f64,
                         scalar_decode_center, sketch_rows, MOTHER_ROW_KERNELS};

}  // namespace

void scalar_block_moments(DType d, const uint8_t* p, uint64_t n, Moments* out) {
  switch (d) {
    case DType::F32: block<LoadF32>(p, n, out); break;
    case DType::F64: block<LoadF64>(p, n, out); break;
    case DType::F16: block<LoadF16>(p, n, out); break;
    case DType::BF16: block<LoadBF16>(p, n, out); break;
    default: { Moments m; accumulate_f8(d, p, n, &m); *out = m; } break;
  }
}

void scalar_pair_diff(const double* a, const double* b, size_t n, double acc[4]) {
  double ss = 0, sa = 0, mx = acc[2], mn = acc[3];
  for (size_t i = 0; i < n; ++i) {
    double d = a[i] - b[i];
    ss += d * d;
    sa += std::fabs(d);
    mx = d > mx ? d : mx;
    mn = d < mn ? d : mn;
  }
  acc[0] += ss;
  acc[1] += sa;
  acc[2] = mx;
  acc[3] = mn;
}

void scalar_pair_diff4(const double* const a[4], const double* b, size_t n, double acc[16]) {
  for (int k = 0; k < 4; ++k) scalar_pair_diff(a[k], b, n, acc + 4 * k);
}

bool scalar_decode_f64(DType d, const uint8_t* p, size_t n, double* out) {
  if (dtype_is_block(d)) return quant_decode_f64(kernels_scalar(), d, p, n, out);  // GGUF blocks
  switch (d) {
    case DType::F64: std::memcpy(out, p, n * 8); break;
    case DType::F32: for (size_t i = 0; i < n; ++i) out[i] = LoadF32::at(p, i); break;
    case DType::F16: for (size_t i = 0; i < n; ++i) out[i] = LoadF16::at(p, i); break;
    case DType::BF16: for (size_t i = 0; i < n; ++i) out[i] = LoadBF16::at(p, i); break;
    default: {
      float lut[256];
      for (int b = 0; b < 256; ++b) lut[b] = f8_to_f32(d, static_cast<uint8_t>(b));
      for (size_t i = 0; i < n; ++i) out[i] = lut[p[i]];
    }
  }
  // (x - x) is NaN exactly for NaN and +-Inf; four independent sums keep the loop fast.
  double q0 = 0, q1 = 0, q2 = 0, q3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    q0 += out[i] - out[i];
    q1 += out[i + 1] - out[i + 1];
    q2 += out[i + 2] - out[i + 2];
    q3 += out[i + 3] - out[i + 3];
  }
  for (; i < n; ++i) q0 += out[i] - out[i];
  const double q = q0 + q1 + q2 + q3;
  return q != 0 || std::isnan(q);
}

bool scalar_decode_center(DType d, const uint8_t* p, size_t n, const double* ref, double* out, double* sum) {
  const bool bad = scalar_decode_f64(d, p, n, out);
  double s = 0;
  for (size_t i = 0; i < n; ++i) {
    out[i] -= ref[i];
    s += out[i];
  }
  *sum = s;
  return bad;
}

void accumulate_f8(DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  float value[256];
  for (int b = 0; b < 256; ++b) value[b] = f8_to_f32(d, static_cast<uint8_t>(b));
  // Counts fit in 64 bits; four interleaved histograms avoid store-to-load stalls on runs
  // of equal bytes.
  uint64_t h[4][256];
  std::memset(h, 0, sizeof(h));
  uint64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    ++h[0][p[i]];
    ++h[1][p[i + 1]];
    ++h[2][p[i + 2]];
    ++h[3][p[i + 3]];
  }
  for (; i < n; ++i) ++h[0][p[i]];
  Moments m;
  uint64_t nan = 0, inf = 0;
  double cnt[256];
  double sum = 0, total = 0, sum_abs = 0, vmin = INFINITY, vmax = -INFINITY;
  for (int b = 0; b < 256; ++b) {
    uint64_t c = h[0][b] + h[1][b] + h[2][b] + h[3][b];
    cnt[b] = static_cast<double>(c);
    if (c == 0) continue;
    float v = value[b];
    if (std::isnan(v)) { nan += c; cnt[b] = 0; continue; }
    if (std::isinf(v)) { inf += c; cnt[b] = 0; continue; }
    total += cnt[b];
    sum += cnt[b] * v;
    sum_abs += cnt[b] * std::fabs(v);
    if (v < vmin) vmin = v;
    if (v > vmax) vmax = v;
  }
  if (total > 0) {
    const double mean = sum / total;
    double sd = 0, m2 = 0, m3 = 0, m4 = 0;
    for (int b = 0; b < 256; ++b) {
      if (cnt[b] == 0) continue;
      double dv = static_cast<double>(value[b]) - mean, d2 = dv * dv;
      sd += cnt[b] * dv;
      m2 += cnt[b] * d2;
      m3 += cnt[b] * d2 * dv;
      m4 += cnt[b] * d2 * d2;
    }
    m = block_moments(total, mean, sd, m2, m3, m4, sum_abs, vmin, vmax);
  }
  m.nan = nan;
  m.inf = inf;
  merge(*acc, m);
}

const Kernels* kernels_scalar() { return &kScalar; }

}  // namespace mother
