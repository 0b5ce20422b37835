// Singular values of a dense matrix, accurate to a few ulps relative to the largest singular
// value, which rank decisions need: Householder bidiagonalisation with blocked (rank-2b,
// level-3) trailing updates, then implicit-shift QR on the bidiagonal (values only, with the
// Demmel-Kahan zero-shift sweeps and their convergence tests). See svd.cc.
#pragma once
#include <cstddef>
#include <vector>

namespace mother {

// a: m x n row-major (copied). Returns the min(m, n) singular values, largest first; NaNs when
// a holds a NaN or an infinity. threads: 0 = automatic (this thread alone below 192 x 192, else
// every core, but only while no other call runs: callers that spread pairs over threads keep
// one thread per pair), 1 = this thread only, > 1 = that many. The values do not depend on it.
std::vector<double> singular_values(const double* a, size_t m, size_t n, unsigned threads = 0);

namespace svd_detail {
struct SvdKernels;
// singular_values on a given kernel set (svd_kernels.h): what tests use to check each set.
std::vector<double> singular_values_using(const SvdKernels& kernels, const double* a, size_t m, size_t n,
                                          unsigned threads);
// The singular values of the upper bidiagonal matrix with diagonal d[0..n) and superdiagonal
// e[0..n-1), in place in d, unsorted and non-negative (e is destroyed). False when the QR
// iteration did not converge (d then holds its approximations).
bool bidiagonal_singular_values(double* d, double* e, size_t n);
}  // namespace svd_detail

}  // namespace mother
