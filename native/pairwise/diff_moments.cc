#include "diff_moments.h"

#include "../core/parallel.h"
#include "../stats/decode.h"

namespace mother {

DiffMoments diff_moments(const Kernels* k, const std::vector<const TensorView*>& views, uint64_t max_rows,
                         const int32_t* cancel) {
  DiffMoments out;
  const size_t n = views.size();
  const TensorView* first = nullptr;
  size_t present = 0;
  for (const TensorView* v : views) {
    if (!v) continue;
    if (!v->has_stats() || v->shape.size() != 2) return out;
    if (!first) first = v;
    if (v->shape != first->shape) return out;
    const uint64_t re = view_row_elems(*v);
    if (re != v->shape[1] || re == 0 || re % view_align(*v) != 0) return out;
    ++present;
  }
  if (present < 2 || max_rows == 0) return out;
  out.rows = first->shape[0];
  out.cols = first->shape[1];
  if (out.rows == 0) return out;
  // the strided row indices floor(i R / b) in 64 bits (b <= 2^16, R < 2^47)
  if (max_rows > (1u << 16) || out.rows >= (uint64_t{1} << 47)) return DiffMoments{};
  out.sampled = out.rows < max_rows ? out.rows : max_rows;
  out.pairs.assign(n * (n - 1) / 2, Moments{});
  std::vector<std::vector<double>> row(n);
  std::vector<double> d(out.cols);
  for (size_t m = 0; m < n; ++m)
    if (views[m]) row[m].resize(out.cols);
  for (uint64_t i = 0; i < out.sampled; ++i) {
    if ((i & 15) == 0) check_cancel(cancel, "difference moments");
    const uint64_t r = i * out.rows / out.sampled;
    for (size_t m = 0; m < n; ++m)
      if (views[m]) decode_f64(k, *views[m], r * out.cols, out.cols, row[m].data());
    size_t p = 0;
    for (size_t a = 0; a < n; ++a)
      for (size_t b = a + 1; b < n; ++b, ++p) {
        if (!views[a] || !views[b]) continue;
        const double* x = row[a].data();
        const double* y = row[b].data();
        for (uint64_t e = 0; e < out.cols; ++e) d[e] = x[e] - y[e];
        // a NaN or an infinity is counted by the kernel, not folded
        k->accumulate(DType::F64, reinterpret_cast<const uint8_t*>(d.data()), out.cols, &out.pairs[p]);
      }
  }
  out.ok = true;
  return out;
}

}  // namespace mother
