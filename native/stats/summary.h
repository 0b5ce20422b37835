// The per-tensor statistics a pass reports, from the Moments it accumulated.
#pragma once
#include <cmath>
#include <cstddef>
#include <limits>

#include "../core/moments.h"

namespace mother {

// The slots of a summary, in the order every result packs them (scan's per-tensor stats,
// pairwise's per-model moments, the addon's moments()): X(member, "jsName"). The addon
// exports the names (layouts.summary), so TypeScript reads the slots by name.
#define MOTHER_SUMMARY_FIELDS(X) \
  X(count, "count")              \
  X(mean, "mean")                \
  X(std, "std")                  \
  X(skewness, "skewness")        \
  X(kurtosis, "kurtosis")        \
  X(min, "min")                  \
  X(max, "max")                  \
  X(l2, "l2")                    \
  X(abs_mean, "absMean")         \
  X(nan, "nan")                  \
  X(inf, "inf")                  \
  X(has_stats, "hasStats")

// Final statistics, defined as numpy/scipy define them (population moments, ddof = 0):
// std = sqrt(m2/n); skewness = (m3/n) / (m2/n)^1.5; kurtosis = (m4/n) / (m2/n)^2 - 3 (Fisher,
// biased: scipy.stats.kurtosis defaults). Like scipy, skewness and kurtosis are NaN when the
// variance is zero to within float64 resolution of the mean (constant data), or n == 0.
// count, nan and inf count elements. has_stats is 1 when the summary describes values (a
// tensor with a float dtype, reduced); the default summary, all zeros, describes none.
// Every slot is a double, as it is packed.
struct Summary {
#define MOTHER_SUMMARY_MEMBER(member, name) double member = 0;
  MOTHER_SUMMARY_FIELDS(MOTHER_SUMMARY_MEMBER)
#undef MOTHER_SUMMARY_MEMBER
};

#define MOTHER_SUMMARY_COUNT(member, name) +1
constexpr size_t kSummaryFields = 0 MOTHER_SUMMARY_FIELDS(MOTHER_SUMMARY_COUNT);
#undef MOTHER_SUMMARY_COUNT

#define MOTHER_SUMMARY_NAME(member, name) name,
constexpr const char* kSummaryFieldNames[kSummaryFields] = {MOTHER_SUMMARY_FIELDS(MOTHER_SUMMARY_NAME)};
#undef MOTHER_SUMMARY_NAME

// Writes the kSummaryFields slots of s to out, in layout order.
inline void pack(const Summary& s, double* out) {
#define MOTHER_SUMMARY_PACK(member, name) *out++ = s.member;
  MOTHER_SUMMARY_FIELDS(MOTHER_SUMMARY_PACK)
#undef MOTHER_SUMMARY_PACK
}

inline Summary summarize(const Moments& m) {
  const double qnan = std::numeric_limits<double>::quiet_NaN();
  Summary s;
  s.has_stats = 1;
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
