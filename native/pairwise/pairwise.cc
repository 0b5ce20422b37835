#include "pairwise.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "../core/parallel.h"
#include "../stats/decode.h"
#include "../stats/dispatch.h"
#include "../stats/quant_grid.h"
#include "pair_plan.h"
#include "shift_null.h"

namespace mother {

namespace {

// A job's results, owned (PairPartial points into them).
struct Partial {
  std::vector<double> pairs;      // kPairFields per pair
  std::vector<double> sketch;     // sketch tensors: per model k x k
  std::vector<double> norm2;      // sketch tensors: per model sum w^2
  std::vector<Moments> moments;   // moments tensors: per model
  std::vector<double> grid;       // per model, kGridFields
  PairPartial view() const {
    return PairPartial{pairs.data(), norm2.empty() ? nullptr : norm2.data(), sketch.empty() ? nullptr : sketch.data(),
                       moments.empty() ? nullptr : moments.data(), grid.data()};
  }
};

// The Gram form's guard: a pair's sum of squared differences from Gram products,
// G_ii + G_jj - 2 G_ij, is taken when it is at least kGramTol (G_ii + G_jj). Each product is
// off by at most about n/W units of roundoff of sqrt(G_ii G_jj) (n elements summed on W lanes),
// so the difference is then within 2 (n/W) u / kGramTol of itself: 6e-11 relative for n = 1024
// on AVX2, 2.4e-10 on the scalar path. Below that (near-identical models far from the
// reference) the pair's sub-chunk is computed directly.
constexpr double kGramTol = 1.0 / 1024;

// sum |d|, max d, min d of two rows where either may hold NaN/Inf (those positions skipped):
// acc = {sum d^2 (unused), sum |d|, max, min} as the pair_diff kernels keep it.
void diff_skipping(const double* a, const double* b, size_t n, double acc[4]) {
  double ss = 0, sa = 0, mx = acc[2], mn = acc[3];
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) continue;
    const double d = a[i] - b[i];
    ss += d * d;
    sa += std::fabs(d);
    mx = d > mx ? d : mx;
    mn = d < mn ? d : mn;
  }
  acc[0] += ss;
  acc[1] += sa;
  acc[2] = mx;
  acc[3] = mn;
}

// One pair's segment of n positions computed directly, any values (positions where either is
// NaN/Inf skipped and counted): sum of squared differences, and the moments of a, b and
// d = a - b by two passes (corrected two-pass sums), and m2a - m2b as the co-moment of d and
// a + b, into acc (kPairFields).
void pair_segment_direct(const double* a, const double* b, size_t n, double* acc) {
  double cnt = 0, sk = 0, sa = 0, sb = 0, sd = 0, ss = 0;
  for (size_t e = 0; e < n; ++e) {
    if (!std::isfinite(a[e]) || !std::isfinite(b[e])) { sk += 1; continue; }
    const double d = a[e] - b[e];
    cnt += 1, sa += a[e], sb += b[e], sd += d, ss += d * d;
  }
  acc[kSkipped] += sk;
  acc[kSumSq] += ss;
  if (cnt == 0) return;
  const double ma = sa / cnt, mb = sb / cnt, md = sd / cnt;
  double ra = 0, rb = 0, rd = 0, qa = 0, qb = 0, qd = 0, x = 0;
  for (size_t e = 0; e < n; ++e) {
    if (!std::isfinite(a[e]) || !std::isfinite(b[e])) continue;
    const double da = a[e] - ma, db = b[e] - mb, dd = (a[e] - b[e]) - md;
    ra += da, rb += db, rd += dd;
    qa += da * da, qb += db * db, qd += dd * dd, x += dd * (da + db);
  }
  merge_pair_moments(acc, cnt, ma + ra / cnt, qa - ra * (ra / cnt), mb + rb / cnt, qb - rb * (rb / cnt), md + rd / cnt,
                     qd - rd * (rd / cnt), x - rd * ((ra + rb) / cnt));
}

}  // namespace

PairwiseResult pairwise(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                        const PairwiseOptions& options) {
  const size_t n_models = models.size();
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  const Kernels* kernels = options.kernels ? options.kernels : select_kernels("");
  const uint64_t chunk = options.chunk_elems > 0 ? options.chunk_elems : default_chunk_elems(n_models);

  const ResolvedPlan resolved = resolve_plan(models, plan);
  const auto& refs = resolved.refs;
  const uint64_t bytes_total = resolved.bytes_total;
  const bool cpu_only = std::any_of(models.begin(), models.end(), [](const Model& m) { return needs_cpu_decode(m); });
  if (options.gpu && !options.exact_rank && !cpu_only) return pairwise_gpu(models, plan, options, resolved);
  const unsigned k = sketch_size(options);
  // Elements per model per job: a job maps (and later releases) its range of every model in
  // one call each; about 16M elements per job in all, 1M per model at most. Jobs are worked
  // in sub-chunks of `chunk` elements that stay in cache while all pairs run over them.
  const uint64_t auto_job = std::min<uint64_t>(1u << 20, (16u << 20) / (n_models ? n_models : 1));
  const uint64_t job_elems = std::max<uint64_t>(chunk, (options.job_elems ? options.job_elems : auto_job) / chunk * chunk);
  const PairJobs planned = plan_pair_jobs(plan, resolved, job_elems, chunk);
  const auto& jobs = planned.jobs;
  const auto& first_job = planned.first_job;
  uint64_t buf_elems = chunk;  // per model: the largest sub-chunk
  for (uint64_t sub : planned.sub) buf_elems = std::max(buf_elems, sub);
  std::map<uint64_t, SketchBasis> bases;  // by matrix size n
  if (!options.exact_rank) bases = make_bases(plan, options.sketch_seed, k);

  PairwiseResult result = empty_result(plan.size(), n_models);
  // per sketch tensor: per model sketch (k x k) and sum w^2, or (exact mode) the whole tensor
  PassTotals totals(plan, n_models, k, options.exact_rank, true);
  auto& whole = totals.whole;

  // Ordered reduction: a tensor's job partials are folded in job order, so results do not
  // depend on the thread count. Out-of-order partials wait (at most ~threads of them).
  struct TensorState {
    std::mutex mu;
    std::vector<std::unique_ptr<Partial>> pending;
    size_t next = 0;
  };
  std::vector<TensorState> state(plan.size());
  for (size_t t = 0; t < plan.size(); ++t) state[t].pending.resize(first_job[t + 1] - first_job[t]);
  std::vector<std::atomic<uint64_t>> bytes_read(n_models);
  for (auto& b : bytes_read) b.store(0);
  std::atomic<uint64_t> bytes_done{0};
  std::mutex progress_mu;

  auto t0 = std::chrono::steady_clock::now();
  parallel_for(jobs.size(), resolve_threads(options.threads), [&](size_t j) {
    check_cancel(options.cancel, "pairwise pass");
    const PairJob& job = jobs[j];
    const PairPlanTensor& pt = plan[job.tensor];
    const std::vector<const TensorView*>& views = refs[job.tensor];
    // Per thread: the sub-chunk of every model (decoded, then centred: ybuf), decoded again
    // where a direct computation needs the values of a centred row (xbuf), the Gram matrix.
    thread_local std::vector<double> ybuf, xbuf, gram, diff, mom, ysum;
    thread_local std::vector<uint64_t> len, avail;
    thread_local std::vector<uint8_t> bad, clean, centred, xready, mdirect;
    thread_local std::vector<size_t> idx;
    thread_local std::vector<const double*> rows;
    thread_local std::vector<double> y;
    thread_local ShiftScratch shift;
    ybuf.resize(n_models * buf_elems);
    xbuf.resize(n_models * buf_elems);
    len.assign(n_models, 0);
    avail.assign(n_models, 0);
    bad.assign(n_models, 0);
    clean.assign(n_models, 0);
    centred.assign(n_models, 0);
    xready.assign(n_models, 0);
    mdirect.assign(n_models, 0);
    mom.resize(2 * n_models);
    ysum.assign(n_models, 0);
    gram.resize(n_models * n_models);
    rows.resize(n_models);
    if (options.differences) {
      diff.resize(4 * n_pairs);
      for (size_t p = 0; p < n_pairs; ++p)
        diff[4 * p] = 0, diff[4 * p + 1] = 0, diff[4 * p + 2] = -INFINITY, diff[4 * p + 3] = INFINITY;
    }
    auto part = std::make_unique<Partial>();
    part->pairs.resize(kPairFields * n_pairs);
    init_pairs(part->pairs.data(), n_pairs);
    if (pt.sketch) {
      part->norm2.assign(n_models, 0);
      if (!options.exact_rank) part->sketch.assign(n_models * totals.sketch_len[job.tensor], 0);
    }
    if (pt.moments) part->moments.assign(n_models, Moments{});
    // Map each model's range of this job in one call; it is released after the job.
    uint64_t job_bytes = 0;
    part->grid.assign(n_models * kGridFields, 0);
    for (size_t m = 0; m < n_models; ++m) {
      avail[m] = elems_in_job(plan, resolved, job, m);
      if (!avail[m]) continue;
      populate_view(*views[m], job.first, avail[m]);
      // one block of 32 in 1024 tested for a quantisation grid (stats/quant_grid.h)
      if (!views[m]->row_map)
        sample_grid(kernels, *views[m], views[m]->data(job.first), job.first, avail[m], &part->grid[m * kGridFields]);
    }
    // Sub-chunks of every model stay in cache while all pairs run over them.
    const uint64_t sub = planned.sub[job.tensor];
    size_t last_ref = SIZE_MAX;
    double last_mean = NAN;
    for (uint64_t s = 0; s < job.count; s += sub) {
      const uint64_t first = job.first + s;
      const uint64_t L = std::min(sub, job.count - s);
      auto Y = [&](size_t m) { return ybuf.data() + m * buf_elems; };
      // The plain values are needed first where something else reads them; otherwise the rows
      // after the reference (the first clean row) are centred on it as they are decoded.
      const bool fuse = !pt.moments && !pt.sketch && !options.differences;
      size_t ref = SIZE_MAX;
      for (size_t m = 0; m < n_models; ++m) {
        len[m] = 0;
        centred[m] = 0;
        xready[m] = 0;
        if (avail[m] <= s) continue;
        const uint64_t n = std::min(L, avail[m] - s);
        if (fuse && ref != SIZE_MAX && n == L) {
          bad[m] = decode_f64_center(kernels, *views[m], first, n, Y(ref), Y(m), &ysum[m]);
          centred[m] = 2;  // centred on the fly
        } else {
          bad[m] = decode_f64(kernels, *views[m], first, n, Y(m));
          if (fuse && ref == SIZE_MAX && n == L && !bad[m]) ref = m;
        }
        len[m] = n;
        // The next sub-chunk of this model into cache while the rest of this one is worked:
        // N short streams, one sub-chunk each, are too short for the hardware prefetchers.
        if (avail[m] > s + sub && !views[m]->row_map) {
          const TensorView& v = *views[m];
          const uint8_t* p = v.data(first + sub);
          const uint64_t nb = v.byte_len(std::min(sub, avail[m] - s - sub));
          for (uint64_t b = 0; b < nb; b += 64) __builtin_prefetch(p + b, 0, 3);
        }
        if (pt.sketch && options.exact_rank) {
          std::lock_guard<std::mutex> lock(state[job.tensor].mu);
          std::vector<double>& wm = whole[job.tensor][m];
          if (wm.empty()) wm.assign(static_cast<size_t>(pt.rows[m]) * pt.row_elems, 0.0);
          std::memcpy(&wm[first], Y(m), n * sizeof(double));
        }
      }
      // The values themselves, before the rows are centred: per-model moments, the rank
      // sketch, and (when asked) sum |d|, max d, min d of every pair.
      if (pt.moments)  // the decoded float64 values are exact: the F64 kernel gives the moments
        for (size_t m = 0; m < n_models; ++m)
          if (len[m]) kernels->accumulate(DType::F64, reinterpret_cast<const uint8_t*>(Y(m)), len[m], &part->moments[m]);
      if (pt.sketch) {
        const uint64_t n = pt.row_elems;
        for (size_t m = 0; m < n_models; ++m) {
          if (!len[m]) continue;
          const double* w = Y(m);
          double s2 = 0;
          for (uint64_t e = 0; e < len[m]; ++e) s2 += std::isfinite(w[e]) ? w[e] * w[e] : 0.0;
          part->norm2[m] += s2;
          if (options.exact_rank) continue;
          const uint64_t nrows = len[m] / n, r0 = first / n;
          const SketchBasis& basis = bases.at(n);
          y.resize(nrows * k);
          kernels->sketch_rows(w, nrows, n, basis.omega.data(), k, y.data());
          if (totals.rows[job.tensor]) {  // small tensor: keep Y = W Omega itself (its rows r0..)
            double* y_m = &part->sketch[m * totals.sketch_len[job.tensor]] + r0 * k;
            for (uint64_t e = 0; e < nrows * k; ++e) y_m[e] += y[e];
            continue;
          }
          double* s_m = &part->sketch[m * k * k];
          for (uint64_t r = 0; r < nrows; ++r) {  // S += Psi[r0 + r]^T (x) y[r]
            const double* psi = &basis.psi[(r0 + r) * k];
            const double* yr = &y[r * k];
            for (unsigned a = 0; a < k; ++a) {
              const double pa = psi[a];
              double* row = s_m + a * k;
              for (unsigned b = 0; b < k; ++b) row[b] += pa * yr[b];
            }
          }
        }
      }
      if (options.differences) {
        // All pairs i < j on this sub-chunk, in blocks of four rows i (kept in L1) against each
        // later row j (streamed): the common case of equal, finite rows takes pair_diff4.
        auto one_pair = [&](size_t i, size_t j2) {
          if (!len[i] || !len[j2]) return;
          const size_t n = static_cast<size_t>(len[i] < len[j2] ? len[i] : len[j2]);
          double* acc = &diff[4 * pair_index(i, j2, n_models)];
          if (bad[i] || bad[j2]) diff_skipping(Y(i), Y(j2), n, acc);
          else kernels->pair_diff(Y(i), Y(j2), n, acc);
        };
        for (size_t i0 = 0; i0 < n_models; i0 += 4) {
          const size_t i1 = i0 + 4 < n_models ? i0 + 4 : n_models;
          for (size_t i = i0; i < i1; ++i)
            for (size_t j2 = i + 1; j2 < i1; ++j2) one_pair(i, j2);
          bool block_ok = i1 - i0 == 4;
          for (size_t i = i0; block_ok && i < i1; ++i) block_ok = len[i] == len[i0] && len[i] > 0 && !bad[i];
          for (size_t j2 = i1; j2 < n_models; ++j2) {
            if (block_ok && len[j2] == len[i0] && !bad[j2]) {
              const double* a4[4] = {Y(i0), Y(i0 + 1), Y(i0 + 2), Y(i0 + 3)};
              double acc4[16];
              size_t pk[4];
              for (int q = 0; q < 4; ++q) {
                pk[q] = pair_index(i0 + q, j2, n_models);
                for (int f = 0; f < 4; ++f) acc4[4 * q + f] = diff[4 * pk[q] + f];
              }
              kernels->pair_diff4(a4, Y(j2), static_cast<size_t>(len[i0]), acc4);
              for (int q = 0; q < 4; ++q)
                for (int f = 0; f < 4; ++f) diff[4 * pk[q] + f] = acc4[4 * q + f];
            } else {
              for (size_t i = i0; i < i1; ++i) one_pair(i, j2);
            }
          }
        }
      }
      // A model's values for a direct computation: its row if not centred, else decoded again.
      auto X = [&](size_t m) -> const double* {
        if (!centred[m]) return Y(m);
        double* x = xbuf.data() + m * buf_elems;
        if (!xready[m]) {
          decode_f64(kernels, *views[m], first, len[m], x);
          xready[m] = 1;
        }
        return x;
      };
      // Gram products of the clean rows (the whole sub-chunk, finite), centred on the first
      // of them, the reference r: row r becomes z = x_r - mean(x_r), every other clean row
      // y_m = x_m - x_r. Then sum (x_i - x_j)^2 = G_ii + G_jj - 2 G_ij, sum (x_i - x_r)^2 = G_ii,
      // and sum (x_m - c)^2 = G_mm + 2 G_mr + G_rr (c = the mean of x_r), with the sums of the
      // rows, the moments of every model and of every pair's differences.
      idx.clear();
      for (size_t m = 0; m < n_models; ++m) {
        clean[m] = len[m] == L && !bad[m];
        if (clean[m]) idx.push_back(m);
      }
      const size_t M = idx.size();
      if (M >= 2) {
        const double nl = static_cast<double>(L);
        const size_t r = idx[0];
        // The reference's centre: its mean in the previous sub-chunk of this job if it was the
        // reference there too (the moments' guard below catches a poor one), else its mean here.
        const double c = r == last_ref && std::isfinite(last_mean) ? last_mean : kernels->sum(Y(r), L) / nl;
        for (size_t a = 1; a < M; ++a) {
          if (centred[idx[a]] != 2) ysum[idx[a]] = kernels->center(Y(idx[a]), Y(r), L, Y(idx[a]));
          centred[idx[a]] = 1;
        }
        const double Z = kernels->shift(Y(r), c, L, Y(r));
        centred[r] = 1;
        for (size_t a = 0; a < M; ++a) rows[a] = Y(idx[a]);
        kernels->gram(rows.data(), M, L, gram.data());
        auto G = [&](size_t a, size_t b) { return gram[a * M + b]; };  // a <= b
        for (size_t a = 0; a < M; ++a) {
          const size_t m = idx[a];
          double Q, S;
          bool ok;
          if (a == 0) {
            Q = G(0, 0), S = Z, ok = true;
          } else {
            Q = G(a, a) + 2 * G(0, a) + G(0, 0), S = ysum[m] + Z;
            ok = Q >= kGramTol * (G(a, a) + G(0, 0));
          }
          mdirect[m] = !(ok && !(S * S > 0.5 * nl * Q));
          if (!mdirect[m]) {
            mom[2 * m] = c + S / nl;
            mom[2 * m + 1] = Q - S * (S / nl);
          } else {
            kernels->moments2(X(m), L, &mom[2 * m]);
          }
        }
        last_ref = r;
        last_mean = mom[2 * r];
        for (size_t a = 0; a < M; ++a)
          for (size_t b = a + 1; b < M; ++b) {
            const size_t i = idx[a], j2 = idx[b];
            // d = x_i - x_j = y_i - y_j (y_r = 0); m2_i - m2_j without the G_rr of both
            double Sdd, Sd, dm2;
            bool ok;
            if (a == 0) {
              Sdd = G(b, b), Sd = -ysum[j2], ok = true;
              dm2 = -G(b, b) - 2 * G(0, b) + ysum[j2] * ((ysum[j2] + 2 * Z) / nl);
            } else {
              Sdd = G(a, a) + G(b, b) - 2 * G(a, b), Sd = ysum[i] - ysum[j2];
              ok = Sdd >= kGramTol * (G(a, a) + G(b, b));
              dm2 = (G(a, a) - G(b, b)) + 2 * (G(0, a) - G(0, b)) - Sd * ((ysum[i] + ysum[j2] + 2 * Z) / nl);
            }
            double M2d;
            if (ok && !(Sd * Sd > 0.5 * nl * Sdd) && !mdirect[i] && !mdirect[j2]) {
              M2d = Sdd - Sd * (Sd / nl);
            } else {
              double o[4];
              kernels->pair_dd(X(i), X(j2), L, o);
              Sdd = o[0], Sd = o[1], M2d = o[2], dm2 = o[3];
            }
            double* acc = &part->pairs[kPairFields * pair_index(i, j2, n_models)];
            acc[kSumSq] += Sdd;
            merge_pair_moments(acc, nl, mom[2 * i], mom[2 * i + 1], mom[2 * j2], mom[2 * j2 + 1], Sd / nl, M2d, dm2);
          }
      }
      // Pairs with a row that is short (a resized vocabulary) or holds NaN/Inf: directly.
      for (size_t i = 0; i < n_models; ++i)
        for (size_t j2 = i + 1; j2 < n_models; ++j2) {
          if (!len[i] || !len[j2] || (clean[i] && clean[j2])) continue;
          pair_segment_direct(X(i), X(j2), static_cast<size_t>(std::min(len[i], len[j2])),
                              &part->pairs[kPairFields * pair_index(i, j2, n_models)]);
        }
    }
    if (options.differences)
      for (size_t p = 0; p < n_pairs; ++p) {
        double* q = &part->pairs[kPairFields * p];
        q[kSumAbs] = diff[4 * p + 1], q[kMaxDiff] = diff[4 * p + 2], q[kMinDiff] = diff[4 * p + 3];
      }
    if (options.relatedness) {
      thread_local std::vector<uint64_t> elems;
      elems.assign(n_models, 0);
      for (size_t m = 0; m < n_models; ++m)
        if (views[m]) elems[m] = static_cast<uint64_t>(pt.rows[m]) * pt.row_elems;
      shift_windows(kernels, views, elems, pt.row_elems, job.first, job.count, job.first + job.count, part->pairs.data(), shift);
    }
    for (size_t m = 0; m < n_models; ++m) {
      if (!avail[m]) continue;
      const TensorView& v = *views[m];
      v.check_read();
      release_view(v, job.first, avail[m]);
      const uint64_t bytes = v.byte_len(avail[m]);
      bytes_read[m].fetch_add(bytes, std::memory_order_relaxed);
      job_bytes += bytes;
    }
    {
      TensorState& st = state[job.tensor];
      std::lock_guard<std::mutex> lock(st.mu);
      st.pending[j - first_job[job.tensor]] = std::move(part);
      while (st.next < st.pending.size() && st.pending[st.next]) {
        fold_partial(plan, resolved, jobs[first_job[job.tensor] + st.next], st.pending[st.next]->view(), totals, result);
        st.pending[st.next].reset();
        ++st.next;
      }
    }
    uint64_t done = bytes_done.fetch_add(job_bytes) + job_bytes;
    if (options.progress) {
      std::unique_lock<std::mutex> lock(progress_mu, std::try_to_lock);
      if (lock.owns_lock()) options.progress(PairwiseProgress{done, bytes_total});
    }
  });
  for (const Model& m : models) m.check_unchanged();

  finish_pairwise(models, plan, options, resolved, totals, result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();  // the SVDs included
  for (size_t m = 0; m < n_models; ++m) result.bytes_read[m] = bytes_read[m].load();
  if (options.progress) options.progress(PairwiseProgress{bytes_total, bytes_total});
  return result;
}

}  // namespace mother