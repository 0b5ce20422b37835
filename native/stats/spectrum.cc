#include "spectrum.h"

#include <cmath>
#include <limits>
#include <vector>

#include "../core/error.h"
#include "../pairwise/svd.h"
#include "decode.h"

namespace mother {

double entropy_of_singular_values(const double* s, uint64_t n) {
  double total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (!std::isfinite(s[i])) return std::numeric_limits<double>::quiet_NaN();
    total += s[i] * s[i];
  }
  if (!(total > 0)) return std::numeric_limits<double>::quiet_NaN();
  double h = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const double p = s[i] * s[i] / total;
    if (p > 0) h -= p * std::log(p);
  }
  return h;
}

Spectrum spectral_entropy(const Kernels* k, const TensorView& v, uint64_t max_dim, const int32_t* cancel) {
  Spectrum out;
  if (!v.has_stats() || v.count == 0 || v.shape.size() != 2 || max_dim == 0) return out;
  const uint64_t row_elems = view_row_elems(v);
  if (row_elems == 0 || row_elems != v.shape[1] || row_elems % view_align(v) != 0) return out;
  out.rows = v.shape[0];
  out.cols = v.shape[1];
  if (out.rows == 0 || out.cols == 0) return out;
  out.block_rows = out.rows < max_dim ? out.rows : max_dim;
  out.block_cols = out.cols < max_dim ? out.cols : max_dim;
  const uint64_t br = out.block_rows, bc = out.block_cols;
  // the strided indices floor(i R / b) in 64 bits: i < b <= 2^16 and R, C < 2^47 (a tensor of
  // more rows than that has more elements than any file holds)
  if (max_dim > (1u << 16) || out.rows >= (uint64_t{1} << 47) || out.cols >= (uint64_t{1} << 47)) return Spectrum{};
  std::vector<double> row(out.cols), block(br * bc);
  for (uint64_t i = 0; i < br; ++i) {
    if (cancel && (i & 63) == 0 && *cancel) throw Error(ErrorCode::Cancelled, "", v.name, "spectral entropy cancelled");
    // evenly strided rows and columns
    const uint64_t r = i * out.rows / br;
    decode_f64(k, v, r * out.cols, out.cols, row.data());
    for (uint64_t j = 0; j < bc; ++j) {
      const uint64_t c = j * out.cols / bc;
      block[i * bc + j] = row[c];
    }
  }
  const std::vector<double> s = singular_values(block.data(), br, bc, 1);
  out.entropy = entropy_of_singular_values(s.data(), s.size());
  out.top = s.empty() ? 0 : s[0];
  out.ok = true;
  return out;
}

}  // namespace mother
