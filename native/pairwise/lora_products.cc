#include "lora_products.h"

#include <vector>

#include "../core/parallel.h"
#include "../stats/decode.h"

namespace mother {

LoraProduct lora_product(const Kernels* k, const TensorView& v, const double* left, const double* right, uint64_t r,
                         uint64_t rows, uint64_t cols, unsigned threads, const int32_t* cancel) {
  LoraProduct out;
  if (!v.has_stats() || v.shape.size() != 2 || v.shape[0] != rows || v.shape[1] != cols || r == 0) return out;
  if (rows == 0 || cols == 0) {
    out.ok = true;
    return out;
  }
  const uint64_t row_elems = view_row_elems(v);
  if (row_elems != cols || row_elems % view_align(v) != 0) return out;
  // omega = L^T (cols x r), the layout sketch_rows takes
  std::vector<double> omega(cols * r);
  for (uint64_t c = 0; c < r; ++c)
    for (uint64_t i = 0; i < cols; ++i) omega[i * r + c] = left[c * cols + i];
  const uint64_t jobs = (rows + kLoraRowsPerJob - 1) / kLoraRowsPerJob;
  std::vector<double> partial(jobs, 0.0);
  std::vector<uint8_t> bad(jobs, 0);
  parallel_for(jobs, resolve_threads(threads), [&](size_t j) {
    check_cancel(cancel, "adapter products");
    const uint64_t first = j * kLoraRowsPerJob;
    const uint64_t n = (first + kLoraRowsPerJob <= rows ? kLoraRowsPerJob : rows - first);
    thread_local std::vector<double> w, y;
    w.resize(n * cols);
    y.resize(n * r);
    if (decode_f64(k, v, first * cols, n * cols, w.data())) bad[j] = 1;
    k->sketch_rows(w.data(), n, cols, omega.data(), r, y.data());
    double s = 0;
    for (uint64_t o = 0; o < n; ++o) {
      const double* ro = right + (first + o) * r;
      const double* yo = y.data() + o * r;
      for (uint64_t c = 0; c < r; ++c) s += ro[c] * yo[c];
    }
    partial[j] = s;
  });
  double total = 0;
  for (uint64_t j = 0; j < jobs; ++j) {
    total += partial[j];
    if (bad[j]) out.finite = false;
  }
  out.value = total;
  out.ok = true;
  return out;
}

}  // namespace mother
