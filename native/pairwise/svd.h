// Singular values of a small dense matrix (one-sided Jacobi, Hestenes): accurate to a few
// ulps relative to the largest singular value, which rank decisions need.
#pragma once
#include <cstddef>
#include <vector>

namespace mother {

// a: m x n row-major (copied). Returns the min(m, n) singular values, largest first.
std::vector<double> singular_values(const double* a, size_t m, size_t n);

}  // namespace mother
