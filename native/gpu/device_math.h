// What the CUDA kernels (cuda_backend.cu) and the CPU emulator (emulator_backend.cc) share:
// element decoders, launch geometry, and the per-thread steps. Both back ends follow the same
// decomposition (which thread takes which element, in which order partial sums meet), and
// both are built without fused multiply-add, so the emulator reproduces the GPU's results bit
// for bit: benchmarks/gpu/ checks exactly that on a real device, and the tests here check the
// host side against the emulator.
#pragma once
#include <cstdint>
#include <cstring>

#include "../core/dtype.h"
#include "../core/moments.h"
#include "gpu_api.h"

#if defined(__CUDACC__)
#define MOTHER_HDI __host__ __device__ __forceinline__
#else
#define MOTHER_HDI inline
#endif

namespace mother {
namespace gpu {

// ---- launch geometry (a function of the sizes only, never of the device) --------------------

constexpr unsigned kThreads = 256;  // threads per block, every kernel
constexpr unsigned kWarp = 32;
constexpr unsigned kWarps = kThreads / kWarp;
constexpr unsigned kTileValues = 8;                  // moments: values per lane per tile
constexpr unsigned kTile = kWarp * kTileValues;      // moments: elements per warp tile (256)
constexpr unsigned kMaxBlocks = 1024;                // moments, decode: blocks per launch at most
constexpr unsigned kPairTile = 4;                    // pairs: a thread block covers 4 x 4 models
constexpr unsigned kPairFields = MOTHER_GPU_PAIR_FIELDS;  // pairs: doubles per pair out
constexpr unsigned kPairMaxBlocksX = 256;            // pairs: element blocks per launch at most
constexpr unsigned kPairElemsPerThread = 4;          // pairs: elements per thread at least
constexpr unsigned kCentralTile = 2;                 // pair_central: a thread block covers 2 x 2 models
constexpr unsigned kCentralFields = MOTHER_GPU_CENTRAL_FIELDS;  // pair_central: doubles per pair out
constexpr unsigned kGemmTile = 32;                   // sketch: 32 x 32 output tiles
constexpr unsigned kSketchSlab = 256;                // sketch: rows per partial of psi^T y

MOTHER_HDI uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// moments(): warp tiles of kTile elements; block b's warp w takes tiles b*kWarps + w,
// then + blocks*kWarps, ...
inline unsigned moments_blocks(uint64_t count) {
  const uint64_t tiles = ceil_div(count, kTile);
  const uint64_t b = ceil_div(tiles, kWarps);
  return static_cast<unsigned>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}
// decode(): thread t of block b takes elements b*kThreads + t, then + blocks*kThreads, ...
inline unsigned decode_blocks(uint64_t count) {
  const uint64_t b = ceil_div(count, kThreads * uint64_t{8});
  return static_cast<unsigned>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}
// pairs(): thread t of element block bx takes positions bx*kThreads + t, + bx_count*kThreads, ...
inline unsigned pairs_blocks_x(uint64_t max_len) {
  const uint64_t b = ceil_div(max_len, uint64_t{kThreads} * kPairElemsPerThread);
  return static_cast<unsigned>(b < 1 ? 1 : (b > kPairMaxBlocksX ? kPairMaxBlocksX : b));
}
// Model tiles (I, J), I <= J, of `tile` models each (kPairTile for pairs(), kCentralTile for
// pair_central()), in row-major upper-triangle order.
inline unsigned pair_model_tiles(uint32_t n_models, unsigned tile = kPairTile) {
  const unsigned nb = static_cast<unsigned>(ceil_div(n_models, tile));
  return nb * (nb + 1) / 2;
}
MOTHER_HDI void pair_tile_coords(unsigned tile, unsigned nb, unsigned* I, unsigned* J) {
  unsigned i = 0, rem = tile;
  while (rem >= nb - i) { rem -= nb - i; ++i; }
  *I = i;
  *J = i + rem;
}
MOTHER_HDI uint64_t pair_of(uint64_t i, uint64_t j, uint64_t n) { return i * (2 * n - i - 1) / 2 + (j - i - 1); }

// ---- element decoding -----------------------------------------------------------------------

MOTHER_HDI double f64_from_bits(uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(b));
#else
  double d;
  std::memcpy(&d, &b, 8);
  return d;
#endif
}
MOTHER_HDI float f32_bits(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float f;
  std::memcpy(&f, &b, 4);
  return f;
#endif
}
MOTHER_HDI double quiet_nan() { return f64_from_bits(0x7ff8000000000000ull); }
MOTHER_HDI double infinity() { return f64_from_bits(0x7ff0000000000000ull); }
MOTHER_HDI bool is_finite(double x) { return x - x == 0.0; }  // false for NaN and +-Inf
// 2^e for -1074 <= e <= 1023, exactly.
MOTHER_HDI double pow2(int e) {
  if (e >= -1022) return f64_from_bits(static_cast<uint64_t>(e + 1023) << 52);
  return f64_from_bits(uint64_t{1} << (e + 1074));
}

MOTHER_HDI double decode_f16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  if (exp == 0x1F) return f32_bits(sign | 0x7F800000u | (man << 13));
  if (exp == 0) {
    const double v = static_cast<double>(man) * pow2(-24);
    return sign ? -v : v;
  }
  return f32_bits(sign | ((exp + 112) << 23) | (man << 13));
}
MOTHER_HDI double decode_bf16(uint16_t h) { return f32_bits(static_cast<uint32_t>(h) << 16); }

MOTHER_HDI double minifloat(uint8_t b, int e, int m, int bias) {
  const int sign = (b >> (e + m)) & 1, exp = (b >> m) & ((1 << e) - 1), man = b & ((1 << m) - 1);
  const double v = exp == 0 ? static_cast<double>(man) * pow2(1 - bias - m)
                            : static_cast<double>((1 << m) | man) * pow2(exp - bias - m);
  return sign ? -v : v;
}
// The 8-bit formats, as f8_to_f32 in native/core/dtype.cc.
MOTHER_HDI double decode_f8(uint32_t d, uint8_t b) {
  switch (static_cast<DType>(d)) {
    case DType::F8_E4M3: return (b & 0x7F) == 0x7F ? quiet_nan() : minifloat(b, 4, 3, 7);
    case DType::F8_E5M2:
      if ((b & 0x7C) == 0x7C) return (b & 0x03) ? quiet_nan() : ((b & 0x80) ? -infinity() : infinity());
      return minifloat(b, 5, 2, 15);
    case DType::F8_E4M3FNUZ: return b == 0x80 ? quiet_nan() : minifloat(b, 4, 3, 8);
    case DType::F8_E5M2FNUZ: return b == 0x80 ? quiet_nan() : minifloat(b, 5, 2, 16);
    case DType::F8_E8M0: return b == 0xFF ? quiet_nan() : pow2(static_cast<int>(b) - 127);
    default: return quiet_nan();
  }
}

// Element i of an array of dtype d at src (aligned to 16 bytes).
MOTHER_HDI double load(uint32_t d, const void* src, uint64_t i) {
  switch (static_cast<DType>(d)) {
    case DType::F64: return static_cast<const double*>(src)[i];
    case DType::F32: return static_cast<const float*>(src)[i];
    case DType::F16: return decode_f16(static_cast<const uint16_t*>(src)[i]);
    case DType::BF16: return decode_bf16(static_cast<const uint16_t*>(src)[i]);
    default: return decode_f8(d, static_cast<const uint8_t*>(src)[i]);
  }
}

// ---- per-thread steps -------------------------------------------------------------------------

// Central sums of one warp tile about its mean, per lane.
struct LaneCentral {
  double sd = 0, sd2 = 0, sd3 = 0, sd4 = 0, sum_abs = 0;
  double min = infinity(), max = -infinity();
};
MOTHER_HDI void lane_central(LaneCentral& c, double x, double mean) {
  const double d = x - mean, d2 = d * d;
  c.sd += d;
  c.sd2 += d2;
  c.sd3 += d2 * d;
  c.sd4 += d2 * d2;
  c.sum_abs += x < 0 ? -x : x;
  c.min = x < c.min ? x : c.min;
  c.max = x > c.max ? x : c.max;
}

// Pair accumulators of one position: a, b decoded values.
struct PairAcc {
  double sum_sq = 0, sum_abs = 0, max = -infinity(), min = infinity(), skipped = 0, sum_a = 0, sum_b = 0;
};
MOTHER_HDI void pair_step(PairAcc& p, double a, double b) {
  if (!is_finite(a) || !is_finite(b)) {
    p.skipped += 1;
    return;
  }
  const double d = a - b;
  p.sum_sq += d * d;
  p.sum_abs += d < 0 ? -d : d;
  p.max = d > p.max ? d : p.max;
  p.min = d < p.min ? d : p.min;
  p.sum_a += a;
  p.sum_b += b;
}
// How pairs() reduces field f (0 .. kPairFields - 1) across lanes, warps and blocks: max for
// field 2, min for field 3, sums otherwise.
MOTHER_HDI double pair_fold(unsigned f, double v, double o) { return f == 2 ? (o > v ? o : v) : f == 3 ? (o < v ? o : v) : v + o; }

// pair_central(): the centres of a pair from its pairs() output p (kPairFields doubles) and the
// two rows' lengths: c[0] = mean of a, c[1] = mean of b, c[2] = c[0] - c[1] (0 when nothing was
// compared).
MOTHER_HDI void pair_centres(const double* p, uint64_t la, uint64_t lb, double c[3]) {
  const double n = static_cast<double>(la < lb ? la : lb) - p[4];
  if (n > 0) {
    c[0] = p[5] / n;
    c[1] = p[6] / n;
  } else {
    c[0] = c[1] = 0;
  }
  c[2] = c[0] - c[1];
}
struct CentralAcc {
  double sa = 0, qa = 0, sb = 0, qb = 0, sd = 0, qd = 0, qds = 0;
};
MOTHER_HDI void central_step(CentralAcc& q, double a, double b, const double c[3]) {
  if (!is_finite(a) || !is_finite(b)) return;
  const double da = a - c[0], db = b - c[1], dd = (a - b) - c[2];
  q.sa += da;
  q.qa += da * da;
  q.sb += db;
  q.qb += db * db;
  q.sd += dd;
  q.qd += dd * dd;
  q.qds += dd * (da + db);
}

// ---- the warp butterfly, for the emulator: v[l] <- sum over the warp, every lane the same
// value, summed in the order __shfl_xor_sync's steps 16, 8, 4, 2, 1 sum them. -------------------
template <typename T, typename Op>
inline void butterfly(T (&v)[kWarp], Op op) {
  for (unsigned off = kWarp / 2; off > 0; off /= 2) {
    T next[kWarp];
    for (unsigned l = 0; l < kWarp; ++l) next[l] = op(v[l], v[l ^ off]);
    for (unsigned l = 0; l < kWarp; ++l) v[l] = next[l];
  }
}

}  // namespace gpu
}  // namespace mother
