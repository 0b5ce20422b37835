#include "pairwise.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "../core/error.h"
#include "../core/parallel.h"
#include "../stats/dispatch.h"
#include "svd.h"

namespace mother {

double unit_roundoff(DType d) {
  switch (d) {
    case DType::F64: return std::ldexp(1.0, -53);
    case DType::F32: return std::ldexp(1.0, -24);
    case DType::F16: return std::ldexp(1.0, -11);
    case DType::BF16: return std::ldexp(1.0, -8);
    case DType::F8_E4M3: case DType::F8_E4M3FNUZ: return std::ldexp(1.0, -4);
    case DType::F8_E5M2: case DType::F8_E5M2FNUZ: return std::ldexp(1.0, -3);
    case DType::F8_E8M0: return 0.5;
    default: return 0;
  }
}

namespace {

// Deterministic standard Gaussians (splitmix64 + Box-Muller), the same on every platform.
struct Gaussian {
  uint64_t state;
  double spare = 0;
  bool has_spare = false;
  explicit Gaussian(uint64_t seed) : state(seed) {}
  uint64_t next_u64() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return (static_cast<double>(next_u64() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  double operator()() {
    if (has_spare) { has_spare = false; return spare; }
    const double r = std::sqrt(-2.0 * std::log(uniform())), t = 6.283185307179586 * uniform();
    spare = r * std::sin(t);
    has_spare = true;
    return r * std::cos(t);
  }
};

}  // namespace

SketchBasis make_basis(uint64_t seed, uint64_t n, unsigned k) {
  SketchBasis b;
  b.psi.resize(n * k);
  b.omega.resize(n * k);
  Gaussian g1(seed ^ (n * 0x100000001b3ull) ^ 0x1111), g2(seed ^ (n * 0x100000001b3ull) ^ 0x2222);
  for (auto& x : b.psi) x = g1();
  for (auto& x : b.omega) x = g2();
  return b;
}

namespace {

struct Job {
  uint32_t tensor;
  uint64_t first;  // flat element range [first, first + count)
  uint64_t count;
};

struct Partial {
  std::vector<double> acc;        // 4 per pair: sum_sq, sum_abs, max, min
  std::vector<double> skipped;    // per pair
  std::vector<double> sketch;     // sketch tensors: per model k x k
  std::vector<double> norm2;      // sketch tensors: per model sum w^2
  std::vector<Moments> moments;   // moments tensors: per model
};

// Slow path for a pair where either side holds NaN/Inf in this range.
// Sums over this sub-chunk first, then into the job's running sums (as pair_diff does): one
// long running sum over a whole job loses digits (2.5e-12 relative seen on 3M elements).
void pair_diff_skipping(const double* a, const double* b, size_t n, double acc[4], double* skipped) {
  double ss = 0, sa = 0, mx = acc[2], mn = acc[3], sk = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) { sk += 1; continue; }
    double d = a[i] - b[i];
    ss += d * d;
    sa += std::fabs(d);
    mx = d > mx ? d : mx;
    mn = d < mn ? d : mn;
  }
  acc[0] += ss;
  acc[1] += sa;
  acc[2] = mx;
  acc[3] = mn;
  *skipped += sk;
}

}  // namespace

PairwiseResult empty_result(size_t n_tensors, size_t n_models) {
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  PairwiseResult result;
  result.tensors.resize(n_tensors);
  for (auto& r : result.tensors) {
    r.sum_sq.assign(n_pairs, 0);
    r.sum_abs.assign(n_pairs, 0);
    r.max_diff.assign(n_pairs, -std::numeric_limits<double>::infinity());
    r.min_diff.assign(n_pairs, std::numeric_limits<double>::infinity());
    r.count.assign(n_pairs, 0);
    r.skipped.assign(n_pairs, 0);
  }
  result.bytes_read.assign(n_models, 0);
  return result;
}

ResolvedPlan resolve_plan(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan) {
  const size_t n_models = models.size();
  ResolvedPlan r;
  r.refs.assign(plan.size(), std::vector<const TensorView*>(n_models, nullptr));
  r.max_elems.assign(plan.size(), 0);
  for (uint32_t t = 0; t < plan.size(); ++t) {
    const PairPlanTensor& pt = plan[t];
    if (pt.rows.size() != n_models)
      throw Error(ErrorCode::InvalidArgument, "", pt.name, "pairwise plan: rows must have one entry per model");
    for (size_t m = 0; m < n_models; ++m) {
      if (pt.rows[m] < 0) continue;
      const TensorView* v = models[m].find(pt.name);
      const std::string& path = models[m].files.empty() ? std::string() : models[m].files[0].path();
      if (!v) throw Error(ErrorCode::InvalidArgument, path, pt.name, "pairwise plan names a tensor the model does not have");
      uint64_t rows = v->shape.empty() ? 1 : v->shape[0];
      if (!v->has_stats() || static_cast<uint64_t>(pt.rows[m]) != rows ||
          (rows > 0 && v->count / rows != pt.row_elems))
        throw Error(ErrorCode::InvalidArgument, path, pt.name, "pairwise plan does not match the tensor's dtype or shape");
      if (pt.sketch && rows != pt.row_elems)
        throw Error(ErrorCode::InvalidArgument, "", pt.name, "rank sketch needs a square 2-D tensor in every compared model");
      r.refs[t][m] = v;
      const uint64_t elems = rows * pt.row_elems;
      r.max_elems[t] = elems > r.max_elems[t] ? elems : r.max_elems[t];
      r.bytes_total += v->bytes;
    }
  }
  return r;
}

void finish_pairwise(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                     const PairwiseOptions& options, const ResolvedPlan& resolved, PassTotals& totals,
                     PairwiseResult& result) {
  const size_t n_models = models.size();
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  const unsigned k = options.sketch_k > 0 ? options.sketch_k : 64;
  const auto& refs = resolved.refs;
  auto& norms = totals.norms;
  auto& sketches = totals.sketches;
  auto& whole = totals.whole;
  auto& moments = totals.moments;
  // Positions compared: the rows both models have, less the skipped ones.
  for (size_t t = 0; t < plan.size(); ++t)
    for (size_t i = 0; i < n_models; ++i)
      for (size_t k = i + 1; k < n_models; ++k) {
        if (!refs[t][i] || !refs[t][k]) continue;
        const size_t p = pair_index(i, k, n_models);
        const uint64_t rows = static_cast<uint64_t>(plan[t].rows[i] < plan[t].rows[k] ? plan[t].rows[i] : plan[t].rows[k]);
        result.tensors[t].count[p] = static_cast<double>(rows * plan[t].row_elems) - result.tensors[t].skipped[p];
      }
  // Ranks of differences, per sketch tensor and pair.
  struct RankJob { size_t t, i, j; };
  std::vector<RankJob> rank_jobs;
  for (size_t t = 0; t < plan.size(); ++t) {
    if (!plan[t].sketch) continue;
    auto& r = result.tensors[t];
    r.rank.assign(n_pairs, std::nan(""));
    r.rank_tol.assign(n_pairs, std::nan(""));
    r.sigma_max.assign(n_pairs, std::nan(""));
    for (size_t i = 0; i < n_models; ++i)
      for (size_t j = i + 1; j < n_models; ++j)
        if (refs[t][i] && refs[t][j]) rank_jobs.push_back(RankJob{t, i, j});
  }
  parallel_for(rank_jobs.size(), resolve_threads(options.threads), [&](size_t x) {
    const RankJob& rj = rank_jobs[x];
    const uint64_t n = plan[rj.t].row_elems;
    const DType di = refs[rj.t][rj.i]->dtype, dj = refs[rj.t][rj.j]->dtype;
    const double ui = unit_roundoff(di), uj = unit_roundoff(dj);
    // Storage noise: each stored value is off by up to u|w| (uniform: rms u|w|/sqrt 3).
    const double noise_f = std::sqrt((ui * ui * norms[rj.t][rj.i] + uj * uj * norms[rj.t][rj.j]) / 3.0);
    // numpy.linalg.matrix_rank's own tolerance: sigma_max x max(M, N) x eps of the computation
    // dtype (float32 unless both operands are F64).
    const double eps = di == DType::F64 && dj == DType::F64 ? std::ldexp(1.0, -52) : std::ldexp(1.0, -23);
    std::vector<double> sv, d;
    double noise_sigma;
    if (options.exact_rank) {
      const auto& wi = whole[rj.t][rj.i];
      const auto& wj = whole[rj.t][rj.j];
      d.resize(n * n);
      for (size_t e = 0; e < n * n; ++e) d[e] = (std::isfinite(wi[e]) && std::isfinite(wj[e])) ? wi[e] - wj[e] : 0.0;
      sv = singular_values(d.data(), n, n);
      noise_sigma = 2.0 * noise_f / std::sqrt(static_cast<double>(n));  // n x n noise: sigma_max ~ 2 sqrt(n) rms
    } else {
      const double* si = &sketches[rj.t][rj.i * k * k];
      const double* sj = &sketches[rj.t][rj.j * k * k];
      d.resize(static_cast<size_t>(k) * k);
      for (size_t e = 0; e < d.size(); ++e) d[e] = si[e] - sj[e];
      sv = singular_values(d.data(), k, k);
      noise_sigma = 2.0 * std::sqrt(static_cast<double>(k)) * noise_f;  // Psi^T E Omega: entries of rms |E|_F
    }
    const double tol = std::max(sv.empty() ? 0.0 : sv[0] * static_cast<double>(n) * eps, options.rank_safety * noise_sigma);
    double rank = 0;
    for (double s : sv) rank += s > tol ? 1 : 0;
    const size_t p = pair_index(rj.i, rj.j, n_models);
    result.tensors[rj.t].rank[p] = rank;
    result.tensors[rj.t].rank_tol[p] = tol;
    result.tensors[rj.t].sigma_max[p] = sv.empty() ? 0 : sv[0];
  });

  for (size_t t = 0; t < plan.size(); ++t) {
    if (!plan[t].moments) continue;
    result.tensors[t].moments.resize(n_models);
    // models without the tensor: the default summary (has_stats 0)
    for (size_t m = 0; m < n_models; ++m)
      if (refs[t][m]) result.tensors[t].moments[m] = summarize(moments[t].empty() ? Moments{} : moments[t][m]);
  }
}

PairwiseResult pairwise(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                        const PairwiseOptions& options) {
  const size_t n_models = models.size();
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  const Kernels* kernels = options.kernels ? options.kernels : select_kernels("");
  const uint64_t chunk = options.chunk_elems > 0 ? options.chunk_elems : 1024;

  const ResolvedPlan resolved = resolve_plan(models, plan);
  const auto& refs = resolved.refs;
  const uint64_t bytes_total = resolved.bytes_total;
  if (options.gpu && !options.exact_rank) return pairwise_gpu(models, plan, options, resolved);
  std::vector<Job> jobs;
  std::vector<size_t> first_job(plan.size() + 1, 0);
  uint64_t buf_elems = chunk;
  const unsigned k = options.sketch_k > 0 ? options.sketch_k : 64;
  // Elements per model per job: a job maps (and later releases) its range of every model in
  // one call each; about 16M elements per job in all, 1M per model at most.
  const uint64_t auto_job = std::min<uint64_t>(1u << 20, (16u << 20) / (n_models ? n_models : 1));
  const uint64_t job_elems = std::max<uint64_t>(chunk, (options.job_elems ? options.job_elems : auto_job) / chunk * chunk);
  auto sketch_sub = [chunk](uint64_t n) { return (chunk / n > 0 ? chunk / n : 1) * n; };
  std::unordered_map<uint64_t, SketchBasis> bases;  // by matrix size n
  for (uint32_t t = 0; t < plan.size(); ++t) {
    const PairPlanTensor& pt = plan[t];
    first_job[t] = jobs.size();
    uint64_t per_job = job_elems;
    if (pt.sketch) {
      // whole rows per sub-chunk and per job: the sketch consumes rows
      const uint64_t sub = sketch_sub(pt.row_elems);
      per_job = (job_elems / sub > 0 ? job_elems / sub : 1) * sub;
      if (sub > buf_elems) buf_elems = sub;
      if (!options.exact_rank && bases.find(pt.row_elems) == bases.end())
        bases.emplace(pt.row_elems, make_basis(options.sketch_seed, pt.row_elems, k));
    }
    const uint64_t max_elems = resolved.max_elems[t];
    for (uint64_t e = 0; e < max_elems; e += per_job)
      jobs.push_back(Job{t, e, max_elems - e < per_job ? max_elems - e : per_job});
  }
  first_job[plan.size()] = jobs.size();

  PairwiseResult result = empty_result(plan.size(), n_models);
  // per sketch tensor: per model sketch (k x k) and sum w^2, or (exact mode) the whole tensor
  PassTotals totals(plan.size());
  auto& sketches = totals.sketches;
  auto& norms = totals.norms;
  auto& whole = totals.whole;
  auto& moments = totals.moments;
  for (size_t t = 0; t < plan.size(); ++t) {
    if (!plan[t].sketch) continue;
    norms[t].assign(n_models, 0);
    if (options.exact_rank) whole[t].resize(n_models);
    else sketches[t].assign(n_models * k * k, 0);
  }

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
    const Job& job = jobs[j];
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
    part->acc.resize(4 * n_pairs);
    part->skipped.assign(n_pairs, 0);
    for (size_t p = 0; p < n_pairs; ++p) {
      part->acc[4 * p + 0] = 0;
      part->acc[4 * p + 1] = 0;
      part->acc[4 * p + 2] = -std::numeric_limits<double>::infinity();
      part->acc[4 * p + 3] = std::numeric_limits<double>::infinity();
    }
    if (pt.sketch) {
      part->norm2.assign(n_models, 0);
      if (!options.exact_rank) part->sketch.assign(n_models * k * k, 0);
    }
    if (pt.moments) part->moments.assign(n_models, Moments{});
    // Map each model's range of this job in one call; it is released after the job.
    uint64_t job_bytes = 0;
    for (size_t m = 0; m < n_models; ++m) {
      const TensorView* v = refs[job.tensor][m];
      if (!v) continue;
      const uint64_t elems = static_cast<uint64_t>(pt.rows[m]) * pt.row_elems;
      if (elems <= job.first) continue;
      avail[m] = elems - job.first < job.count ? elems - job.first : job.count;
      v->populate(job.first, avail[m]);
    }
    // Sub-chunks of every model stay in cache while all pairs run over them.
    const uint64_t sub = pt.sketch ? sketch_sub(pt.row_elems) : chunk;
    for (uint64_t s = 0; s < job.count; s += sub) {
      const uint64_t first = job.first + s;
      for (size_t m = 0; m < n_models; ++m) {
        len[m] = 0;
        if (avail[m] <= s) continue;
        const TensorView& v = *refs[job.tensor][m];
        const uint64_t n = avail[m] - s < sub ? avail[m] - s : sub;
        bad[m] = kernels->decode_f64(v.dtype, v.data(first), n, buf.data() + m * buf_elems);
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
        if (bad[i] || bad[j2]) pair_diff_skipping(a, buf.data() + j2 * buf_elems, n, &part->acc[4 * p], &part->skipped[p]);
        else kernels->pair_diff(a, buf.data() + j2 * buf_elems, n, &part->acc[4 * p]);
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
              for (int q = 0; q < 4; ++q) acc4[4 * k + q] = part->acc[4 * pk[k] + q];
            }
            kernels->pair_diff4(a4, buf.data() + j2 * buf_elems, static_cast<size_t>(len[i0]), acc4);
            for (int k = 0; k < 4; ++k)
              for (int q = 0; q < 4; ++q) part->acc[4 * pk[k] + q] = acc4[4 * k + q];
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
      PairTensorResult& r = result.tensors[job.tensor];
      while (st.next < st.pending.size() && st.pending[st.next]) {
        const Partial& q = *st.pending[st.next];
        for (size_t p = 0; p < n_pairs; ++p) {
          r.sum_sq[p] += q.acc[4 * p];
          r.sum_abs[p] += q.acc[4 * p + 1];
          r.max_diff[p] = q.acc[4 * p + 2] > r.max_diff[p] ? q.acc[4 * p + 2] : r.max_diff[p];
          r.min_diff[p] = q.acc[4 * p + 3] < r.min_diff[p] ? q.acc[4 * p + 3] : r.min_diff[p];
          r.skipped[p] += q.skipped[p];
        }
        if (!q.norm2.empty())
          for (size_t m = 0; m < n_models; ++m) norms[job.tensor][m] += q.norm2[m];
        if (!q.sketch.empty())
          for (size_t x = 0; x < q.sketch.size(); ++x) sketches[job.tensor][x] += q.sketch[x];
        if (!q.moments.empty()) {
          if (moments[job.tensor].empty()) moments[job.tensor].assign(n_models, Moments{});
          for (size_t m = 0; m < n_models; ++m) merge(moments[job.tensor][m], q.moments[m]);
        }
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
