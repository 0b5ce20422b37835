#include "shift_null.h"

#include <algorithm>
#include <cmath>

#include "../stats/decode.h"
#include "pair_plan.h"

namespace mother {

namespace {

// One pair's segment from raw windows, over e < n where all three values are finite: two
// passes (means, then deviations; corrected two-pass sums).
void direct_segment(const double* a, const double* b1, const double* b2, uint64_t n, double* acc) {
  double cnt = 0, sa = 0, s1 = 0, s2 = 0;
  for (uint64_t e = 0; e < n; ++e) {
    if (!std::isfinite(a[e]) || !std::isfinite(b1[e]) || !std::isfinite(b2[e])) continue;
    cnt += 1, sa += a[e], s1 += b1[e], s2 += b2[e];
  }
  if (cnt == 0) return;
  const double ma = sa / cnt, m1 = s1 / cnt, m2 = s2 / cnt;
  double ra = 0, r1 = 0, r2 = 0, qa = 0, q1 = 0, q2 = 0, c1 = 0, c2 = 0;
  for (uint64_t e = 0; e < n; ++e) {
    if (!std::isfinite(a[e]) || !std::isfinite(b1[e]) || !std::isfinite(b2[e])) continue;
    const double da = a[e] - ma, d1 = b1[e] - m1, d2 = b2[e] - m2;
    ra += da, r1 += d1, r2 += d2;
    qa += da * da, q1 += d1 * d1, q2 += d2 * d2;
    c1 += da * d1, c2 += da * d2;
  }
  merge_shift_moments(acc, cnt, ma + ra / cnt, qa - ra * (ra / cnt), m1 + r1 / cnt, q1 - r1 * (r1 / cnt),
                      c1 - ra * (r1 / cnt), m2 + r2 / cnt, q2 - r2 * (r2 / cnt), c2 - ra * (r2 / cnt));
}

}  // namespace

void shift_windows(const Kernels* k, const std::vector<const TensorView*>& views, const std::vector<uint64_t>& elems,
                   uint64_t row_elems, uint64_t first, uint64_t count, uint64_t release_from, double* pairs,
                   ShiftScratch& s) {
  const size_t n_models = views.size();
  if (n_models < 2 || count == 0) return;
  const uint64_t R = row_elems > 0 ? row_elems : 1, W = kShiftWindow;
  const uint64_t stride = W * kShiftEvery;
  s.buf.resize(n_models * 3 * W);
  s.len.assign(n_models, 0);
  s.bad.assign(n_models, 0);
  s.clean.assign(n_models, 0);
  s.mom.resize(n_models * 6);
  auto win = [&](size_t m, int q) { return s.buf.data() + (m * 3 + static_cast<size_t>(q)) * W; };
  for (uint64_t p0 = (first + stride - 1) / stride * stride; p0 < first + count; p0 += stride) {
    uint64_t lmax = 0;
    for (size_t m = 0; m < n_models; ++m) {
      s.len[m] = 0;
      if (!views[m] || elems[m] < 2 * R) continue;
      const uint64_t lim = elems[m] - 2 * R;
      s.len[m] = lim > p0 ? std::min(W, lim - p0) : 0;
      lmax = std::max(lmax, s.len[m]);
    }
    if (lmax == 0) continue;
    for (size_t m = 0; m < n_models; ++m) {
      const uint64_t l = s.len[m];
      if (!l) continue;
      const TensorView& v = *views[m];
      bool bad = decode_f64(k, v, p0, l, win(m, 0));
      bad |= decode_f64(k, v, p0 + R, l, win(m, 1));
      bad |= decode_f64(k, v, p0 + 2 * R, l, win(m, 2));
      s.bad[m] = bad;
      s.clean[m] = !bad && l == lmax;
      // pages read at or beyond release_from: dropped (another job's, or none of a job's)
      for (int q = 0; q < 3; ++q) {
        const uint64_t lo = p0 + static_cast<uint64_t>(q) * R, hi = lo + l;
        const uint64_t from = std::max(lo, release_from);
        if (from < hi) release_view_pages(v, from, hi - from);
      }
    }
    // pairs with a model that is not clean here: directly, on the raw windows
    for (size_t i = 0; i < n_models; ++i)
      for (size_t j = i + 1; j < n_models; ++j) {
        if (!s.len[i] || !s.len[j] || (s.clean[i] && s.clean[j])) continue;
        direct_segment(win(i, 0), win(j, 1), win(j, 2), std::min(s.len[i], s.len[j]),
                       pairs + kPairFields * pair_index(i, j, n_models));
      }
    // the clean models: windows centred on their means, then the cross products
    s.idx.clear();
    for (size_t m = 0; m < n_models; ++m)
      if (s.clean[m]) s.idx.push_back(m);
    const size_t M = s.idx.size();
    if (M < 2) continue;
    s.ra.resize(M), s.rb1.resize(M), s.rb2.resize(M);
    for (size_t a = 0; a < M; ++a) {
      const size_t m = s.idx[a];
      double* mo = &s.mom[m * 6];
      for (int q = 0; q < 3; ++q) {
        k->moments2(win(m, q), lmax, mo + 2 * q);
        k->shift(win(m, q), mo[2 * q], lmax, win(m, q));
      }
      s.ra[a] = win(m, 0), s.rb1[a] = win(m, 1), s.rb2[a] = win(m, 2);
    }
    s.c1.resize(M * M), s.c2.resize(M * M);
    k->cross_upper(s.ra.data(), s.rb1.data(), M, lmax, s.c1.data());
    k->cross_upper(s.ra.data(), s.rb2.data(), M, lmax, s.c2.data());
    const double n = static_cast<double>(lmax);
    for (size_t a = 0; a < M; ++a)
      for (size_t b = a + 1; b < M; ++b) {
        const size_t i = s.idx[a], j = s.idx[b];
        const double* mi = &s.mom[i * 6];
        const double* mj = &s.mom[j * 6];
        merge_shift_moments(pairs + kPairFields * pair_index(i, j, n_models), n, mi[0], mi[1], mj[2], mj[3],
                            s.c1[a * M + b], mj[4], mj[5], s.c2[a * M + b]);
      }
  }
}

}  // namespace mother
