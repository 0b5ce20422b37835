#include "lora_products.h"

#include <vector>

#include "../core/parallel.h"
#include "../stats/decode.h"

namespace mother {

LoraProduct lora_product(const Kernels* k, const TensorView& v, const double* left, const double* right, uint64_t r,
                         uint64_t rows, uint64_t cols, unsigned threads, const int32_t* cancel, bool right_gram) {
  LoraProduct out;
  // one group's Gram scratch: r x r (Y^T Y), or r x cols (Z = R^T X, its Gram formed at the end)
  const uint64_t scratch = right_gram ? r * cols : r * r;
  const bool want_gram = r <= (uint64_t{1} << 20) && scratch <= kLoraScratchBytes / sizeof(double);
  if (!v.has_stats() || v.shape.size() != 2 || v.shape[0] != rows || v.shape[1] != cols || r == 0) return out;
  if (rows == 0 || cols == 0) {
    out.ok = true;
    if (want_gram) out.gram.assign(r * r, 0.0);
    return out;
  }
  const uint64_t row_elems = view_row_elems(v);
  if (row_elems != cols || row_elems % view_align(v) != 0) return out;
  // omega = L^T (cols x r), the layout sketch_rows takes
  std::vector<double> omega(cols * r);
  for (uint64_t c = 0; c < r; ++c)
    for (uint64_t i = 0; i < cols; ++i) omega[i * r + c] = left[c * cols + i];
  // blocks of kLoraRowsPerJob rows, in at most kLoraGroups groups of consecutive blocks: a group's
  // blocks are summed in order on one thread, the groups in group order (bounded memory, and a
  // result that does not depend on the thread count)
  const uint64_t blocks = (rows + kLoraRowsPerJob - 1) / kLoraRowsPerJob;
  uint64_t groups = blocks < kLoraGroups ? blocks : kLoraGroups;
  if (want_gram) {
    const uint64_t fit = kLoraScratchBytes / sizeof(double) / scratch;  // >= 1
    if (groups > fit) groups = fit;
  }
  std::vector<double> partial(groups, 0.0), squares(groups, 0.0), grams(want_gram ? groups * scratch : 0, 0.0);
  std::vector<uint8_t> bad(groups, 0);
  parallel_for(groups, resolve_threads(threads), [&](size_t gi) {
    const uint64_t b0 = gi * blocks / groups, b1 = (gi + 1) * blocks / groups;
    thread_local std::vector<double> w, y;
    double s = 0, q = 0;
    double* g = want_gram ? grams.data() + gi * scratch : nullptr;
    for (uint64_t b = b0; b < b1; ++b) {
      check_cancel(cancel, "adapter products");
      const uint64_t first = b * kLoraRowsPerJob;
      const uint64_t n = (first + kLoraRowsPerJob <= rows ? kLoraRowsPerJob : rows - first);
      w.resize(n * cols);
      y.resize(n * r);
      if (decode_f64(k, v, first * cols, n * cols, w.data())) bad[gi] = 1;
      k->sketch_rows(w.data(), n, cols, omega.data(), r, y.data());
      for (uint64_t o = 0; o < n; ++o) {
        const double* ro = right + (first + o) * r;
        const double* yo = y.data() + o * r;
        for (uint64_t c = 0; c < r; ++c) s += ro[c] * yo[c];
      }
      for (uint64_t e = 0; e < n * cols; ++e) q += w[e] * w[e];
      if (g && right_gram) {
        // Z += R[block]^T X[block]: row c of Z gathers the block's rows weighted by R's column c
        for (uint64_t o = 0; o < n; ++o) {
          const double* ro = right + (first + o) * r;
          const double* wo = w.data() + o * cols;
          for (uint64_t c = 0; c < r; ++c) {
            const double rc = ro[c];
            double* zc = g + c * cols;
            for (uint64_t e = 0; e < cols; ++e) zc[e] += rc * wo[e];
          }
        }
      } else if (g) {
        for (uint64_t o = 0; o < n; ++o) {
          const double* yo = y.data() + o * r;
          for (uint64_t a = 0; a < r; ++a)
            for (uint64_t c = a; c < r; ++c) g[a * r + c] += yo[a] * yo[c];
        }
      }
    }
    partial[gi] = s;
    squares[gi] = q;
  });
  double total = 0, sq = 0;
  for (uint64_t j = 0; j < groups; ++j) {
    total += partial[j];
    sq += squares[j];
    if (bad[j]) out.finite = false;
  }
  out.value = total;
  out.sum_sq = sq;
  out.gram.assign(want_gram ? r * r : 0, 0.0);
  if (want_gram && right_gram) {
    // Z = the groups' parts in group order, then Z Z^T
    std::vector<double> z(scratch, 0.0);
    for (uint64_t j = 0; j < groups; ++j)
      for (uint64_t e = 0; e < scratch; ++e) z[e] += grams[j * scratch + e];
    for (uint64_t a = 0; a < r; ++a)
      for (uint64_t c = a; c < r; ++c) {
        double t = 0;
        for (uint64_t e = 0; e < cols; ++e) t += z[a * cols + e] * z[c * cols + e];
        out.gram[a * r + c] = out.gram[c * r + a] = t;
      }
  } else if (want_gram) {
    for (uint64_t j = 0; j < groups; ++j)
      for (uint64_t e = 0; e < r * r; ++e) out.gram[e] += grams[j * scratch + e];
    for (uint64_t a = 0; a < r; ++a)
      for (uint64_t c = 0; c < a; ++c) out.gram[a * r + c] = out.gram[c * r + a];
  }
  out.ok = true;
  return out;
}

}  // namespace mother
