// The reference the blocked SVD (svd.cc) is checked and timed against: the one-sided Jacobi
// (Hestenes) method the core used before, unblocked, one thread. Only tests and benchmarks
// include this header (native/addon/testing_svd.cc, native/tools/svd_check.cc).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace mother {

// a: m x n row-major. The min(m, n) singular values, largest first.
inline std::vector<double> singular_values_jacobi(const double* a, size_t m, size_t n) {
  // Work on the columns of A (or of A^T when m < n): column-major copy, cols x rows.
  const bool transpose = m < n;
  const size_t rows = transpose ? n : m, cols = transpose ? m : n;
  std::vector<double> c(rows * cols);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (transpose) c[i * rows + j] = a[i * n + j];  // column i of A^T = row i of A
      else c[j * rows + i] = a[i * n + j];
    }
  const double eps = 1e-15;
  for (int sweep = 0; sweep < 60; ++sweep) {
    bool rotated = false;
    for (size_t p = 0; p + 1 < cols; ++p) {
      double* cp = &c[p * rows];
      for (size_t q = p + 1; q < cols; ++q) {
        double* cq = &c[q * rows];
        double alpha = 0, beta = 0, gamma = 0;
        for (size_t r = 0; r < rows; ++r) {
          alpha += cp[r] * cp[r];
          beta += cq[r] * cq[r];
          gamma += cp[r] * cq[r];
        }
        if (gamma == 0 || std::fabs(gamma) <= eps * std::sqrt(alpha * beta)) continue;
        rotated = true;
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1 + zeta * zeta));
        const double cs = 1 / std::sqrt(1 + t * t), sn = cs * t;
        for (size_t r = 0; r < rows; ++r) {
          const double x = cp[r], y = cq[r];
          cp[r] = cs * x - sn * y;
          cq[r] = sn * x + cs * y;
        }
      }
    }
    if (!rotated) break;
  }
  std::vector<double> s(cols);
  for (size_t j = 0; j < cols; ++j) {
    double norm = 0;
    for (size_t r = 0; r < rows; ++r) norm += c[j * rows + r] * c[j * rows + r];
    s[j] = std::sqrt(norm);
  }
  std::sort(s.begin(), s.end(), [](double x, double y) { return x > y; });
  return s;
}

}  // namespace mother
