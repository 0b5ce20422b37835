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
#include "../stats/dispatch.h"
#include "../stats/view_decode.h"
#include "pair_plan.h"

namespace mother {

namespace {

// A job's results, owned (PairPartial points into them).
struct Partial {
  std::vector<double> pairs;      // kPairFields per pair
  std::vector<double> sketch;     // sketch tensors: per model k x k
  std::vector<double> norm2;      // sketch tensors: per model sum w^2
  std::vector<Moments> moments;   // moments tensors: per model
  PairPartial view() const {
    return PairPartial{pairs.data(), norm2.empty() ? nullptr : norm2.data(), sketch.empty() ? nullptr : sketch.data(),
                       moments.empty() ? nullptr : moments.data()};
  }
};

// Slow path for a pair where either side holds NaN/Inf in this range: acc is the pair's
// kPairFields, skipped positions included.
// Sums over this sub-chunk first, then into the job's running sums (as pair_diff does): one
// long running sum over a whole job loses digits (2.5e-12 relative seen on 3M elements).
void pair_diff_skipping(const double* a, const double* b, size_t n, double acc[kPairFields]) {
  double ss = 0, sa = 0, mx = acc[kMaxDiff], mn = acc[kMinDiff], sk = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) { sk += 1; continue; }
    double d = a[i] - b[i];
    ss += d * d;
    sa += std::fabs(d);
    mx = d > mx ? d : mx;
    mn = d < mn ? d : mn;
  }
  acc[kSumSq] += ss;
  acc[kSumAbs] += sa;
  acc[kMaxDiff] = mx;
  acc[kMinDiff] = mn;
  acc[kSkipped] += sk;
}

}  // namespace

PairwiseResult pairwise(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                        const PairwiseOptions& options) {
  const size_t n_models = models.size();
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  const Kernels* kernels = options.kernels ? options.kernels : select_kernels("");
  const uint64_t chunk = options.chunk_elems > 0 ? options.chunk_elems : 1024;

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
  PassTotals totals(plan, n_models, k, options.exact_rank);
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
    thread_local std::vector<double> buf;
    thread_local std::vector<uint64_t> len, avail;
    thread_local std::vector<uint8_t> bad;
    thread_local std::vector<double> y;
    buf.resize(n_models * buf_elems);
    len.assign(n_models, 0);
    avail.assign(n_models, 0);
    bad.assign(n_models, 0);
    auto part = std::make_unique<Partial>();
    part->pairs.resize(kPairFields * n_pairs);
    init_pairs(part->pairs.data(), n_pairs);
    if (pt.sketch) {
      part->norm2.assign(n_models, 0);
      if (!options.exact_rank) part->sketch.assign(n_models * k * k, 0);
    }
    if (pt.moments) part->moments.assign(n_models, Moments{});
    // Map each model's range of this job in one call; it is released after the job.
    uint64_t job_bytes = 0;
    for (size_t m = 0; m < n_models; ++m) {
      avail[m] = elems_in_job(plan, resolved, job, m);
      if (avail[m]) refs[job.tensor][m]->populate(job.first, avail[m]);
    }
    // Sub-chunks of every model stay in cache while all pairs run over them.
    const uint64_t sub = planned.sub[job.tensor];
    for (uint64_t s = 0; s < job.count; s += sub) {
      const uint64_t first = job.first + s;
      for (size_t m = 0; m < n_models; ++m) {
        len[m] = 0;
        if (avail[m] <= s) continue;
        const TensorView& v = *refs[job.tensor][m];
        const uint64_t n = avail[m] - s < sub ? avail[m] - s : sub;
        bad[m] = decode_view_f64(kernels, v, first, n, buf.data() + m * buf_elems);
        len[m] = n;
        if (pt.sketch && options.exact_rank) {
          std::lock_guard<std::mutex> lock(state[job.tensor].mu);
          std::vector<double>& wm = whole[job.tensor][m];
          if (wm.empty()) wm.assign(static_cast<size_t>(pt.rows[m]) * pt.row_elems, 0.0);
          std::memcpy(&wm[first], buf.data() + m * buf_elems, n * sizeof(double));
        }
      }
      // All pairs i < j on this sub-chunk, in blocks of four rows i (kept in L1) against each
      // later row j (streamed): the common case of equal, finite rows takes pair_diff4.
      auto one_pair = [&](size_t i, size_t j2) {
        if (!len[i] || !len[j2]) return;
        const size_t n = static_cast<size_t>(len[i] < len[j2] ? len[i] : len[j2]);
        const size_t p = pair_index(i, j2, n_models);
        const double* a = buf.data() + i * buf_elems;
        double* acc = &part->pairs[kPairFields * p];
        if (bad[i] || bad[j2]) pair_diff_skipping(a, buf.data() + j2 * buf_elems, n, acc);
        else kernels->pair_diff(a, buf.data() + j2 * buf_elems, n, acc);
      };
      for (size_t i0 = 0; i0 < n_models; i0 += 4) {
        const size_t i1 = i0 + 4 < n_models ? i0 + 4 : n_models;
        for (size_t i = i0; i < i1; ++i)
          for (size_t j2 = i + 1; j2 < i1; ++j2) one_pair(i, j2);
        bool block_ok = i1 - i0 == 4;
        for (size_t i = i0; block_ok && i < i1; ++i) block_ok = len[i] == len[i0] && len[i] > 0 && !bad[i];
        for (size_t j2 = i1; j2 < n_models; ++j2) {
          if (block_ok && len[j2] == len[i0] && !bad[j2]) {
            const double* a4[4] = {buf.data() + i0 * buf_elems, buf.data() + (i0 + 1) * buf_elems,
                                   buf.data() + (i0 + 2) * buf_elems, buf.data() + (i0 + 3) * buf_elems};
            double acc4[16];
            size_t pk[4];
            for (int k = 0; k < 4; ++k) {
              pk[k] = pair_index(i0 + k, j2, n_models);
              for (int q = 0; q < 4; ++q) acc4[4 * k + q] = part->pairs[kPairFields * pk[k] + q];
            }
            kernels->pair_diff4(a4, buf.data() + j2 * buf_elems, static_cast<size_t>(len[i0]), acc4);
            for (int k = 0; k < 4; ++k)
              for (int q = 0; q < 4; ++q) part->pairs[kPairFields * pk[k] + q] = acc4[4 * k + q];
          } else {
            for (size_t i = i0; i < i1; ++i) one_pair(i, j2);
          }
        }
      }
      if (pt.moments)  // the decoded float64 values are exact: the F64 kernel gives the moments
        for (size_t m = 0; m < n_models; ++m)
          if (len[m]) kernels->accumulate(DType::F64, reinterpret_cast<const uint8_t*>(buf.data() + m * buf_elems), len[m], &part->moments[m]);
      if (!pt.sketch) continue;
      const uint64_t n = pt.row_elems;
      for (size_t m = 0; m < n_models; ++m) {
        if (!len[m]) continue;
        const double* w = buf.data() + m * buf_elems;
        double s2 = 0;
        for (uint64_t e = 0; e < len[m]; ++e) s2 += std::isfinite(w[e]) ? w[e] * w[e] : 0.0;
        part->norm2[m] += s2;
        if (options.exact_rank) continue;
        const uint64_t rows = len[m] / n, r0 = first / n;
        const SketchBasis& basis = bases.at(n);
        y.resize(rows * k);
        kernels->sketch_rows(w, rows, n, basis.omega.data(), k, y.data());
        double* s_m = &part->sketch[m * k * k];
        for (uint64_t r = 0; r < rows; ++r) {  // S += Psi[r0 + r]^T (x) y[r]
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
    for (size_t m = 0; m < n_models; ++m) {
      if (!avail[m]) continue;
      const TensorView& v = *refs[job.tensor][m];
      v.release(job.first, avail[m]);
      const uint64_t bytes = v.byte_len(avail[m]);
      bytes_read[m].fetch_add(bytes, std::memory_order_relaxed);
      job_bytes += bytes;
    }
    {
      TensorState& st = state[job.tensor];
      std::lock_guard<std::mutex> lock(st.mu);
      st.pending[j - first_job[job.tensor]] = std::move(part);
      while (st.next < st.pending.size() && st.pending[st.next]) {
        fold_partial(plan, resolved, jobs[first_job[job.tensor] + st.next], st.pending[st.next]->view(), k, totals, result);
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
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  finish_pairwise(models, plan, options, resolved, totals, result);
  for (size_t m = 0; m < n_models; ++m) result.bytes_read[m] = bytes_read[m].load();
  if (options.progress) options.progress(PairwiseProgress{bytes_total, bytes_total});
  return result;
}

}  // namespace mother