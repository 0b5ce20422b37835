// Per-ISA reduction kernels. Each ISA lives in its own translation unit compiled for that
// ISA only (function target attributes), picked once at start-up by dispatch.cc.
//
// Algorithm: the input is cut into blocks of kBlock elements that stay in L1, reduced in
// float64 and folded into the running Moments with the exact pairwise merge.
//  - scalar (the reference path): two passes per block: sum, sum|x|, min, max and NaN/Inf
//    detection, then the central sums of (x - block mean)^1..4 re-read from L1
//    (corrected two-pass algorithm);
//  - SIMD: one pass per block about a shift K, the previous block's mean: sums of
//    (x - K)^1..4, sum|x|, min, max, while the next block is prefetched. The residual
//    mean is folded in exactly by block_moments(); when the block mean is far from K
//    relative to its spread (|mean - K| > std, e.g. the first block, a level shift) the
//    block is redone with two passes.
//    F16 and BF16 (AVX2, AVX-512): the same single pass in float32 over short runs folded
//    into float64 (block_h.inc), redone in float64 when a guard fails.
// Blocks that hold a NaN or Inf are redone by the scalar kernel, which skips and counts
// them. Every path agrees with the scalar one to rounding (tested at 1e-12), but for F16 and
// BF16 on AVX2 and AVX-512, which agree to the float32 pass's stated bound (README, "Accuracy
// of the 16-bit SIMD path"; test/helpers/f32_bound.ts).
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/dtype.h"
#include "../core/moments.h"
#include "quant.h"

namespace mother {

constexpr size_t kBlock = 2048;
// The float32 pass of F16 and BF16 (block_h.inc): float32 additions per lane before a fold into
// float64, and the relative error bound of each block sum that follows (README, "Accuracy of
// the 16-bit SIMD path").
constexpr size_t kF32Run = 32;
constexpr double kF32Eps = (kF32Run + 8) * 0x1p-24;

struct Kernels {
  const char* name;
  // Folds the n elements of dtype d (F16, BF16, F32 or F64) at p (any alignment) into *acc.
  void (*accumulate)(DType d, const uint8_t* p, uint64_t n, Moments* acc);
  // Sum of the little-endian u64 words of [p, p + nbytes) (tail bytes added one by one):
  // the "plain read" baseline that benchmarks compare against.
  uint64_t (*sum_u64)(const uint8_t* p, uint64_t nbytes);
  // Pairwise differences of two decoded rows (the pairwise engine's inner loop): over
  // d = a[i] - b[i], acc[0] += sum d^2, acc[1] += sum |d|, acc[2] = max(acc[2], max d),
  // acc[3] = min(acc[3], min d). Inputs are finite (callers route non-finite rows elsewhere).
  void (*pair_diff)(const double* a, const double* b, size_t n, double acc[4]);
  // Four pairs (a[k], b) at once, b loaded once: acc[4k..4k+3] as pair_diff's acc. The
  // a rows stay in L1 while b streams: N^2 pair work at the speed of the arithmetic.
  void (*pair_diff4)(const double* const a[4], const double* b, size_t n, double acc[16]);
  // Decodes n elements of a float dtype at p (any alignment) to float64; returns true if any
  // is NaN or +-Inf. The pairwise engine's first step.
  bool (*decode_f64)(DType d, const uint8_t* p, size_t n, double* out);
  // decode_f64 fused with the centring of the Gram path: out = x - ref (x the decoded values),
  // *sum = sum out; true if any x is NaN or +-Inf (out and *sum are then of no use).
  bool (*decode_center)(DType d, const uint8_t* p, size_t n, const double* ref, double* out, double* sum);
  // y (rows x k) = w (rows x n) * omega (n x k), row-major float64 (the rank sketch).
  void (*sketch_rows)(const double* w, size_t rows, size_t n, const double* omega, size_t k, double* y);

  // ---- the pairwise pass's row kernels (gram.inc; inputs finite) ----
  // Gram products of m rows of n elements: g[i * m + j] = sum_e rows[i][e] rows[j][e] for
  // i <= j (the upper triangle of the m x m matrix g; the rest is left as it is). Float64,
  // register-blocked; see gram.inc for the summation order.
  void (*gram)(const double* const* rows, size_t m, size_t n, double* g);
  // c[i * m + j] = sum_e a[i][e] b[j][e] for every i <= j (and some i > j; the rest of c is left
  // as it is): the shifted cross products of the relatedness null.
  void (*cross_upper)(const double* const* a, const double* const* b, size_t m, size_t n, double* c);
  // y = x - r elementwise (y may be x); returns sum y.
  double (*center)(const double* x, const double* r, size_t n, double* y);
  // y = x - c (y may be x); returns sum y.
  double (*shift)(const double* x, double c, size_t n, double* y);
  // sum x.
  double (*sum)(const double* x, size_t n);
  // out = {mean, sum (x - mean)^2} (corrected two-pass).
  void (*moments2)(const double* x, size_t n, double out[2]);
  // d = a - b, s = a + b: out = {sum d^2, sum d, sum (d - mean d)^2, sum (d - mean d)(s - mean s)}
  // (the last two corrected two-pass; the last is sum (a - mean a)^2 - sum (b - mean b)^2).
  void (*pair_dd)(const double* a, const double* b, size_t n, double out[4]);
};

// The scalar decode_f64 (every dtype), used by the SIMD ones for tails and 8-bit formats.
bool scalar_decode_f64(DType d, const uint8_t* p, size_t n, double* out);
// decode_center as decode_f64 then out -= ref (every dtype), for the formats a kernel set does
// not fuse.
bool scalar_decode_center(DType d, const uint8_t* p, size_t n, const double* ref, double* out, double* sum);

// The scalar pair_diff, also used for the tails and by callers that need it directly.
void scalar_pair_diff(const double* a, const double* b, size_t n, double acc[4]);
void scalar_pair_diff4(const double* const a[4], const double* b, size_t n, double acc[16]);

// The scalar steps every vector kernel takes on the last few elements of a block (the
// compiler inlines them into each ISA's code).
// Folds x into sum |x|, min and max; false when x is NaN or +-Inf.
inline bool tail_extremes(double x, double& sum_abs, double& vmin, double& vmax) {
  if (__builtin_isnan(x) || __builtin_isinf(x)) return false;
  sum_abs += x < 0 ? -x : x;
  vmin = x < vmin ? x : vmin;
  vmax = x > vmax ? x : vmax;
  return true;
}
// Folds d (an element minus the block's centre) into the sums of d, d^2, d^3, d^4.
inline void tail_central(double d, double& sd, double& m2, double& m3, double& m4) {
  const double d2 = d * d;
  sd += d;
  m2 += d2;
  m3 += d2 * d;
  m4 += d2 * d2;
}

// Moments of one block of n elements, skipping and counting NaN/Inf (scalar, any dtype with
// stats except the 8-bit ones). Used by every kernel for blocks that hold non-finite values.
void scalar_block_moments(DType d, const uint8_t* p, uint64_t n, Moments* out);

// 8-bit float formats: a 256-bin histogram per call, reduced exactly to moments.
void accumulate_f8(DType d, const uint8_t* p, uint64_t n, Moments* acc);

// Folds n elements of any dtype with statistics: the kernel set's accumulate for F16, BF16,
// F32 and F64, the histogram for the 8-bit formats, the block decoders for the GGUF block
// types (quant.h; p on a block boundary).
inline void accumulate_any(const Kernels* k, DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  switch (d) {
    case DType::F32: case DType::F64: case DType::F16: case DType::BF16:
      k->accumulate(d, p, n, acc);
      break;
    default:
      if (dtype_is_block(d)) quant_accumulate(k, d, p, n, acc);
      else accumulate_f8(d, p, n, acc);
      break;
  }
}

const Kernels* kernels_scalar();
const Kernels* kernels_avx2();    // nullptr when not compiled for this architecture
const Kernels* kernels_avx512();  // nullptr when not compiled for this architecture
const Kernels* kernels_neon();    // nullptr when not compiled for this architecture

}  // namespace mother
