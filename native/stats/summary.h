// The per-tensor statistics a pass reports, from the Moments it accumulated.
#pragma once
#include <cmath>
#include <limits>

#include "../core/moments.h"

namespace mother {

// Final statistics, defined as numpy/scipy define them (population moments, ddof = 0):
// std = sqrt(m2/n); skewness = (m3/n) / (m2/n)^1.5; kurtosis = (m4/n) / (m2/n)^2 - 3 (Fisher,
// biased: scipy.stats.kurtosis defaults). Like scipy, skewness and kurtosis are NaN when the
// variance is zero to within float64 resolution of the mean (constant data), or n == 0.
struct Summary {
  double count, mean, std, skewness, kurtosis, min, max, l2, abs_mean;
  double nan, inf;
};

inline Summary summarize(const Moments& m) {
  const double qnan = std::numeric_limits<double>::quiet_NaN();
  Summary s;
  s.count = m.n;
  s.nan = static_cast<double>(m.nan);
  s.inf = static_cast<double>(m.inf);
  if (m.n == 0) {
    s.mean = s.std = s.skewness = s.kurtosis = s.min = s.max = s.abs_mean = qnan;
    s.l2 = 0;
    return s;
  }
  const double var = m.m2 / m.n;
  s.mean = m.mean + m.mean_lo;
  s.std = std::sqrt(var);
  // scipy: zero = m2 <= (finfo(float64).resolution * mean)^2, resolution = 1e-15
  const double tiny = 1e-15 * s.mean;
  if (var <= tiny * tiny) {
    s.skewness = qnan;
    s.kurtosis = qnan;
  } else {
    s.skewness = (m.m3 / m.n) / (var * std::sqrt(var));
    s.kurtosis = (m.m4 / m.n) / (var * var) - 3.0;
  }
  s.min = m.min;
  s.max = m.max;
  s.l2 = std::sqrt(m.m2 + m.n * s.mean * s.mean);
  s.abs_mean = m.sum_abs / m.n;
  return s;
}

}  // namespace mother
