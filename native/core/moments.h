// Central moments with exact-as-possible float64 merging (Chan et al. / Pebay 2008).
// A Moments value describes the finite elements of some range; NaN and +-Inf are only counted.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

// The merge and block formulas are shared by the CPU kernels (native/stats/), the pairwise
// engine and the GPU kernels (native/gpu/), which nvcc compiles for the device as well: hence
// core/, below all of them.
#ifndef MOTHER_HD
#if defined(__CUDACC__)
#define MOTHER_HD __host__ __device__
#else
#define MOTHER_HD
#endif
#endif

namespace mother {

struct Moments {
  double n = 0;      // finite elements (a double: merges need it as one; exact below 2^53)
  double mean = 0;   // the mean is mean + mean_lo (a double-double): block means of data with
  double mean_lo = 0;// mean >> std must differ exactly, or the merge terms lose digits
  double m2 = 0;     // sum (x - mean)^2
  double m3 = 0;     // sum (x - mean)^3
  double m4 = 0;     // sum (x - mean)^4
  double sum_abs = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  uint64_t nan = 0;
  uint64_t inf = 0;
};

// a <- a (+) b. Exact formulas for combining the central moments of two disjoint sets.
MOTHER_HD inline void merge(Moments& a, const Moments& b) {
  a.nan += b.nan;
  a.inf += b.inf;
  if (b.n == 0) return;
  if (a.n == 0) {
    uint64_t nan = a.nan, inf = a.inf;
    a = b;
    a.nan = nan;
    a.inf = inf;
    return;
  }
  const double na = a.n, nb = b.n, n = na + nb;
  // b.mean - a.mean is exact when the means are close (Sterbenz), which is when it matters.
  const double delta = (b.mean - a.mean) + (b.mean_lo - a.mean_lo);
  const double d_n = delta / n;
  const double d2 = delta * delta;
  const double nanb = na * nb;
  const double m2 = a.m2 + b.m2 + d2 * nanb / n;
  const double m3 = a.m3 + b.m3 + d2 * delta * nanb * (na - nb) / (n * n) +
                    3.0 * d_n * (na * b.m2 - nb * a.m2);
  const double m4 = a.m4 + b.m4 + d2 * d2 * nanb * (na * na - na * nb + nb * nb) / (n * n * n) +
                    6.0 * d2 * (na * na * b.m2 + nb * nb * a.m2) / (n * n) +
                    4.0 * d_n * (na * b.m3 - nb * a.m3);
  {
    // a.mean += delta * nb / n, in double-double
    const double t = delta * (nb / n);
    const double hi = a.mean + t;
    const double bb = hi - a.mean;
    const double err = (a.mean - (hi - bb)) + (t - bb);
    const double lo = a.mean_lo + err;
    a.mean = hi + lo;
    a.mean_lo = lo - (a.mean - hi);
  }
  a.m2 = m2;
  a.m3 = m3;
  a.m4 = m4;
  a.n = n;
  a.sum_abs += b.sum_abs;
  if (b.min < a.min) a.min = b.min;
  if (b.max > a.max) a.max = b.max;
}

// Moments of one block from sums of d = x - mean over its n finite elements: sd = sum d,
// sd2..sd4 = sum d^2..d^4. `mean` is only approximately the block mean (rounded); the residual
// c = sd / n is folded in exactly (corrected two-pass algorithm, Chan, Golub & LeVeque 1983).
MOTHER_HD inline Moments block_moments(double n, double mean, double sd, double sd2, double sd3, double sd4,
                             double sum_abs, double min, double max) {
  Moments b;
  if (n == 0) return b;
  const double c = sd / n, c2 = c * c;
  b.n = n;
  b.mean = mean;
  b.mean_lo = c;
  b.m2 = sd2 - n * c2;
  b.m3 = sd3 - 3.0 * c * sd2 + 2.0 * n * c2 * c;
  b.m4 = sd4 - 4.0 * c * sd3 + 6.0 * c2 * sd2 - 3.0 * n * c2 * c2;
  b.sum_abs = sum_abs;
  b.min = min;
  b.max = max;
  return b;
}

}  // namespace mother
