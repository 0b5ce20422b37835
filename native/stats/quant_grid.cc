#include "quant_grid.h"

#include <cmath>

#include "../core/dtype.h"

namespace mother {

namespace {

double unit_roundoff(DType d) {
  switch (d) {
    case DType::F32: return 0x1p-24;
    case DType::F16: return 0x1p-11;
    case DType::BF16: return 0x1p-8;
    default: return -1;  // not tested
  }
}

bool on_grid(const double* x, double scale, double tol) {
  for (uint64_t i = 0; i < kGridBlock; ++i) {
    const double q = x[i] * scale;
    if (std::fabs(q - std::nearbyint(q)) > tol) return false;
  }
  return true;
}

}  // namespace

unsigned grid_block(const double* x, double u) {
  double a = 0;
  for (uint64_t i = 0; i < kGridBlock; ++i) {
    if (!std::isfinite(x[i])) return 0;
    a = std::fabs(x[i]) > a ? std::fabs(x[i]) : a;
  }
  if (!(a > 0) || !(u > 0)) return 0;
  unsigned bits = 0;
  const double levels[2] = {8, 127};
  for (int l = 0; l < 2; ++l) {
    const double L = levels[l], tol = 2 * L * u + 1e-9;
    if (tol > 0.2) continue;
    bits |= 1u << (2 * l);
    if (on_grid(x, L / a, tol)) bits |= 2u << (2 * l);
  }
  return bits;
}

void sample_grid(const Kernels* k, const TensorView& v, const uint8_t* at, uint64_t first, uint64_t count, double* out) {
  const double u = unit_roundoff(v.dtype);
  if (!(u > 0) || v.row_map || v.shape.size() != 2 || v.shape[1] % kGridBlock != 0) return;
  uint32_t elems = 1, bytes = 0;
  dtype_block(v.dtype, &elems, &bytes);
  const uint64_t end = first + count;
  double x[kGridBlock];
  for (uint64_t b = (first + kGridStep - 1) / kGridStep * kGridStep; b + kGridBlock <= end; b += kGridStep) {
    if (k->decode_f64(v.dtype, at + (b - first) * bytes, kGridBlock, x)) continue;  // NaN/Inf
    const unsigned bits = grid_block(x, u);
    out[kGridTested4] += bits & 1u ? 1 : 0;
    out[kGridOn4] += bits & 2u ? 1 : 0;
    out[kGridTested8] += bits & 4u ? 1 : 0;
    out[kGridOn8] += bits & 8u ? 1 : 0;
  }
}

}  // namespace mother
