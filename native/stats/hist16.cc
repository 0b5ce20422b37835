// 16-bit floats (F16, BF16) through a histogram of their bit patterns: counting costs one load
// and one increment per element, so the pass runs at the speed of the memory, and the moments
// come out of at most 65,536 distinct values, each weighted by its exact count, in float64:
// as accurate as the block sums of the SIMD kernels (which do the float64 arithmetic per
// element, the limit of their speed), and independent of the kernel set.
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels.h"

namespace mother {

namespace {

constexpr uint32_t kBins = 65536;

// Four interleaved tables (runs of equal values would otherwise stall on one counter), all
// zero between calls: the fold clears the bins it reads. 1 MiB per thread, made once.
struct Tables {
  uint32_t h[4][kBins];
};

Tables& tables() {
  thread_local std::unique_ptr<Tables> t;
  if (!t) {
    t.reset(new Tables);
    std::memset(t.get(), 0, sizeof(Tables));
  }
  return *t;
}

// Compensated (Neumaier) sums: the fold adds up to 65,536 terms whose magnitudes span the
// whole range of the format (every pattern of BF16 reaches 3e38), in the order of their bit
// patterns, where a plain float64 sum loses to cancellation what the block sums do not.
struct Sum {
  double s = 0, c = 0;
  void add(double x) {
    const double t = s + x;
    c += std::fabs(s) >= std::fabs(x) ? (s - t) + x : (x - t) + s;
    s = t;
  }
  double value() const { return s + c; }
};

float value_of(DType d, uint16_t bits) { return d == DType::BF16 ? bf16_to_f32(bits) : f16_to_f32(bits); }

// One call's worth: n < 2^34, so no table's count (n / 4 + 3) overflows 32 bits.
void accumulate_piece(DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  Tables& T = tables();
  uint64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint64_t w;
    std::memcpy(&w, p + 2 * i, 8);  // four little-endian 16-bit values
    ++T.h[0][w & 0xFFFF];
    ++T.h[1][(w >> 16) & 0xFFFF];
    ++T.h[2][(w >> 32) & 0xFFFF];
    ++T.h[3][w >> 48];
  }
  for (; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, p + 2 * i, 2);
    ++T.h[0][v];
  }
  // The bins in use, their counts; the tables cleared for the next call.
  thread_local std::vector<uint32_t> bins;
  thread_local std::vector<double> counts;
  bins.clear();
  counts.clear();
  for (uint32_t b = 0; b < kBins; b += 4) {
    uint32_t any = 0;
    for (uint32_t k = 0; k < 4; ++k) any |= T.h[0][b + k] | T.h[1][b + k] | T.h[2][b + k] | T.h[3][b + k];
    if (any == 0) continue;
    for (uint32_t k = 0; k < 4; ++k) {
      const uint64_t c = static_cast<uint64_t>(T.h[0][b + k]) + T.h[1][b + k] + T.h[2][b + k] + T.h[3][b + k];
      if (c == 0) continue;
      bins.push_back(b + k);
      counts.push_back(static_cast<double>(c));
      T.h[0][b + k] = T.h[1][b + k] = T.h[2][b + k] = T.h[3][b + k] = 0;
    }
  }
  Moments m;
  uint64_t nan = 0, inf = 0;
  double total = 0, vmin = INFINITY, vmax = -INFINITY;
  Sum sum, sum_abs;
  for (size_t j = 0; j < bins.size(); ++j) {
    const float v = value_of(d, static_cast<uint16_t>(bins[j]));
    const double c = counts[j];
    if (std::isnan(v)) { nan += static_cast<uint64_t>(c); counts[j] = 0; continue; }
    if (std::isinf(v)) { inf += static_cast<uint64_t>(c); counts[j] = 0; continue; }
    total += c;
    sum.add(c * v);
    sum_abs.add(c * std::fabs(v));
    if (v < vmin) vmin = v;
    if (v > vmax) vmax = v;
  }
  if (total > 0) {
    // two passes over the values in use: the mean, then sums of the deviations from it (the
    // residual sum sd is folded in exactly by block_moments)
    const double mean = sum.value() / total;
    Sum sd, m2, m3, m4;
    for (size_t j = 0; j < bins.size(); ++j) {
      const double c = counts[j];
      if (c == 0) continue;
      const double dv = static_cast<double>(value_of(d, static_cast<uint16_t>(bins[j]))) - mean, d2 = dv * dv;
      sd.add(c * dv);
      m2.add(c * d2);
      m3.add(c * d2 * dv);
      m4.add(c * d2 * d2);
    }
    m = block_moments(total, mean, sd.value(), m2.value(), m3.value(), m4.value(), sum_abs.value(), vmin, vmax);
  }
  m.nan = nan;
  m.inf = inf;
  merge(*acc, m);
}

}  // namespace

void accumulate_hist16(DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  constexpr uint64_t kPiece = 1ull << 32;
  for (uint64_t off = 0; off < n; off += kPiece) accumulate_piece(d, p + 2 * off, n - off < kPiece ? n - off : kPiece, acc);
}

}  // namespace mother
