#include "pair_plan.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>

#include "../core/error.h"
#include "../core/parallel.h"
#include "../stats/decode.h"
#include "../stats/quant_grid.h"
#include "svd.h"

namespace mother {

namespace {

// Unit roundoff of a storage dtype (half the gap between 1 and the next representable value).
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
      if (!pt.names.empty() && pt.names.size() != n_models)
        throw Error(ErrorCode::InvalidArgument, "", pt.name, "pairwise plan: names must have one entry per model");
      const std::string& own = pt.names.empty() ? pt.name : pt.names[m];
      const TensorView* v = models[m].find(own);
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

PairJobs plan_pair_jobs(const std::vector<PairPlanTensor>& plan, const ResolvedPlan& resolved, uint64_t job_elems,
                        uint64_t sub_elems) {
  PairJobs p;
  p.first_job.assign(plan.size() + 1, 0);
  p.sub.assign(plan.size(), sub_elems);
  for (uint32_t t = 0; t < plan.size(); ++t) {
    const PairPlanTensor& pt = plan[t];
    p.first_job[t] = p.jobs.size();
    const uint64_t max_elems = resolved.max_elems[t];
    if (max_elems == 0) continue;  // e.g. an empty (0 x 0) tensor: no elements, hence no jobs
    // The unit every job and sub-chunk starts on: every view's block size (and rows, where a
    // view has a row map), whole rows for the rank sketch.
    uint64_t unit = 1;
    for (const TensorView* v : resolved.refs[t])
      if (v) unit = std::lcm(unit, view_align(*v));
    if (pt.sketch && pt.row_elems > 0) unit = std::lcm(unit, pt.row_elems);
    const uint64_t sub = (sub_elems / unit > 0 ? sub_elems / unit : 1) * unit;
    const uint64_t per_job = (job_elems / sub > 0 ? job_elems / sub : 1) * sub;
    p.sub[t] = sub;
    for (uint64_t e = 0; e < max_elems; e += per_job)
      p.jobs.push_back(PairJob{t, e, max_elems - e < per_job ? max_elems - e : per_job});
  }
  p.first_job[plan.size()] = p.jobs.size();
  return p;
}

uint64_t elems_in_job(const std::vector<PairPlanTensor>& plan, const ResolvedPlan& resolved, const PairJob& job,
                      size_t m) {
  if (!resolved.refs[job.tensor][m]) return 0;
  const uint64_t elems = static_cast<uint64_t>(plan[job.tensor].rows[m]) * plan[job.tensor].row_elems;
  if (elems <= job.first) return 0;
  return elems - job.first < job.count ? elems - job.first : job.count;
}

SketchBasis make_basis(uint64_t seed, uint64_t n, unsigned k) {
  SketchBasis b;
  b.psi.resize(n * k);
  b.omega.resize(n * k);
  Gaussian g1(seed ^ (n * 0x100000001b3ull) ^ 0x1111), g2(seed ^ (n * 0x100000001b3ull) ^ 0x2222);
  for (auto& x : b.psi) x = g1();
  for (auto& x : b.omega) x = g2();
  return b;
}

std::map<uint64_t, SketchBasis> make_bases(const std::vector<PairPlanTensor>& plan, uint64_t seed, unsigned k) {
  std::map<uint64_t, SketchBasis> bases;
  for (const PairPlanTensor& pt : plan)
    if (pt.sketch && bases.find(pt.row_elems) == bases.end()) bases.emplace(pt.row_elems, make_basis(seed, pt.row_elems, k));
  return bases;
}

void init_pairs(double* pairs, size_t n_pairs) {
  for (size_t p = 0; p < n_pairs; ++p) {
    double* q = pairs + kPairFields * p;
    for (size_t f = 0; f < kPairFields; ++f) q[f] = 0;
    q[kMaxDiff] = -std::numeric_limits<double>::infinity();
    q[kMinDiff] = std::numeric_limits<double>::infinity();
  }
}

void merge_pair_fields(double* acc, const double* q) {
  acc[kSumSq] += q[kSumSq];
  acc[kSumAbs] += q[kSumAbs];
  acc[kMaxDiff] = q[kMaxDiff] > acc[kMaxDiff] ? q[kMaxDiff] : acc[kMaxDiff];
  acc[kMinDiff] = q[kMinDiff] < acc[kMinDiff] ? q[kMinDiff] : acc[kMinDiff];
  acc[kSkipped] += q[kSkipped];
  merge_pair_moments(acc, q[kN], q[kMeanA], q[kM2A], q[kMeanB], q[kM2B], q[kMeanD], q[kM2D], q[kDM2]);
  merge_shift_moments(acc, q[kShN], q[kShMeanA], q[kShM2A], q[kShMeanB1], q[kShM2B1], q[kShC1], q[kShMeanB2], q[kShM2B2],
                      q[kShC2]);
}

PassTotals::PassTotals(const std::vector<PairPlanTensor>& plan, size_t n_models, unsigned k, bool exact_rank, bool row_sketch)
    : sketches(plan.size()), sketch_len(plan.size(), 0), rows(plan.size(), 0), norms(plan.size()), whole(plan.size()),
      moments(plan.size()), pairs(plan.size()) {
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  for (size_t t = 0; t < plan.size(); ++t) {
    pairs[t].resize(n_pairs * kPairFields);
    init_pairs(pairs[t].data(), n_pairs);
    if (plan[t].sketch) {
      norms[t].assign(n_models, 0);
      if (exact_rank) {
        whole[t].resize(n_models);
      } else {
        rows[t] = row_sketch && small_sketch(plan[t].row_elems, k);
        sketch_len[t] = rows[t] ? static_cast<size_t>(plan[t].row_elems) * k : static_cast<size_t>(k) * k;
        sketches[t].assign(n_models * sketch_len[t], 0);
      }
    }
    if (plan[t].moments) moments[t].assign(n_models, Moments{});
  }
}

void fold_partial(const std::vector<PairPlanTensor>& plan, const ResolvedPlan& resolved, const PairJob& job,
                  const PairPartial& q, PassTotals& totals, PairwiseResult& result) {
  const uint32_t t = job.tensor;
  const PairPlanTensor& pt = plan[t];
  const size_t n_models = resolved.refs[t].size();
  double* acc = totals.pairs[t].data();
  const size_t n_pairs = totals.pairs[t].size() / kPairFields;
  for (size_t p = 0; p < n_pairs; ++p) merge_pair_fields(acc + kPairFields * p, q.pairs + kPairFields * p);
  for (size_t m = 0; m < n_models; ++m) {
    if (!elems_in_job(plan, resolved, job, m)) continue;
    if (pt.sketch) {
      totals.norms[t][m] += q.norm2[m];
      if (q.sketch) {
        const size_t len = totals.sketch_len[t];
        double* dst = &totals.sketches[t][m * len];
        const double* src = q.sketch + m * len;
        for (size_t x = 0; x < len; ++x) dst[x] += src[x];
      }
    }
    if (pt.moments) merge(totals.moments[t][m], q.moments[m]);
    if (q.grid)  // counts: the order of the jobs does not matter
      for (unsigned f = 0; f < kGridFields; ++f) result.tensors[t].grid[m * kGridFields + f] += q.grid[m * kGridFields + f];
  }
}

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
    r.grid.assign(n_models * kGridFields, 0);
  }
  result.bytes_read.assign(n_models, 0);
  return result;
}

void finish_pairwise(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                     const PairwiseOptions& options, const ResolvedPlan& resolved, PassTotals& totals,
                     PairwiseResult& result) {
  const size_t n_models = models.size();
  const size_t n_pairs = n_models >= 2 ? pair_count(n_models) : 0;
  const unsigned k = sketch_size(options);
  const auto& refs = resolved.refs;
  auto& norms = totals.norms;
  auto& sketches = totals.sketches;
  auto& whole = totals.whole;
  auto& moments = totals.moments;
  // The pair results from the totals; positions compared: the rows both models have, less
  // the skipped ones.
  const double qnan = std::numeric_limits<double>::quiet_NaN();
  for (size_t t = 0; t < plan.size(); ++t) {
    PairTensorResult& r = result.tensors[t];
    const double* acc = totals.pairs[t].data();
    r.mean_a.assign(n_pairs, qnan), r.mean_b.assign(n_pairs, qnan), r.var_a.assign(n_pairs, qnan);
    r.var_b.assign(n_pairs, qnan), r.one_minus_r.assign(n_pairs, qnan);
    if (options.relatedness) r.r_shift1.assign(n_pairs, qnan), r.r_shift2.assign(n_pairs, qnan), r.n_shift.assign(n_pairs, 0);
    if (!options.differences) r.sum_abs.clear(), r.max_diff.clear(), r.min_diff.clear();
    for (size_t p = 0; p < n_pairs; ++p) {
      const double* q = acc + kPairFields * p;
      r.sum_sq[p] = q[kSumSq];
      r.skipped[p] = q[kSkipped];
      if (options.differences) r.sum_abs[p] = q[kSumAbs], r.max_diff[p] = q[kMaxDiff], r.min_diff[p] = q[kMinDiff];
      const double n = q[kN];
      if (n > 0) {
        r.mean_a[p] = q[kMeanA], r.mean_b[p] = q[kMeanB];
        const double va = q[kM2A] / n, vb = q[kM2B] / n, vd = q[kM2D] / n;
        r.var_a[p] = va, r.var_b[p] = vb;
        if (va > 0 && vb > 0) {
          // sa - sb = (va - vb) / (sa + sb), va - vb from its own sums (kDM2)
          const double sa = std::sqrt(va), sb = std::sqrt(vb), ds = (q[kDM2] / n) / (sa + sb);
          r.one_minus_r[p] = (vd - ds * ds) / (2 * sa * sb);
        }
      }
      if (options.relatedness) {
        const double ns = q[kShN];
        r.n_shift[p] = ns;
        if (ns > 0 && q[kShM2A] > 0) {
          if (q[kShM2B1] > 0) r.r_shift1[p] = q[kShC1] / std::sqrt(q[kShM2A] * q[kShM2B1]);
          if (q[kShM2B2] > 0) r.r_shift2[p] = q[kShC2] / std::sqrt(q[kShM2A] * q[kShM2B2]);
        }
      }
    }
    for (size_t i = 0; i < n_models; ++i)
      for (size_t k = i + 1; k < n_models; ++k) {
        if (!refs[t][i] || !refs[t][k]) continue;
        const size_t p = pair_index(i, k, n_models);
        const uint64_t rows = static_cast<uint64_t>(plan[t].rows[i] < plan[t].rows[k] ? plan[t].rows[i] : plan[t].rows[k]);
        r.count[p] = static_cast<double>(rows * plan[t].row_elems) - r.skipped[p];
      }
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
  // The exact SVDs are a stage of their own (seconds per large matrix): reported as they finish,
  // and cancellable between them.
  const uint64_t bytes_total = resolved.bytes_total;
  const uint64_t svd_total = options.exact_rank ? rank_jobs.size() : 0;
  result.svd_total = svd_total;
  std::atomic<uint64_t> svd_done{0};
  std::mutex progress_mu;
  if (options.exact_rank && options.progress) options.progress(PairwiseProgress{bytes_total, bytes_total, 0, svd_total});
  // Small tensors (4n <= k): the k x k sketch M = Psi^T D Omega has rank <= n, and its k^3
  // Jacobi SVD made the rank of 100k tiny tensors take minutes. With G = Psi Psi^T = L L^T
  // (Cholesky), M^T M = (L^T D Omega)^T (L^T D Omega) and L^T D Omega = L^-1 Psi M, so the
  // singular values of M are those of the n x k matrix L^-1 Psi M (the other k - n are 0):
  // the same values, for n^2 k instead of k^3 work.
  struct SmallBasis { std::vector<double> psi, chol; };  // psi n x k; L n x n, lower, row-major
  std::map<uint64_t, SmallBasis> small;
  if (!options.exact_rank)
    for (const auto& rj : rank_jobs) {
      const uint64_t n = plan[rj.t].row_elems;
      if (!small_sketch(n, k) || small.count(n)) continue;
      SmallBasis b;
      b.psi = make_basis(options.sketch_seed, n, k).psi;
      std::vector<double> L(n * n, 0.0);
      bool ok = true;
      for (uint64_t i = 0; i < n && ok; ++i)
        for (uint64_t j = 0; j <= i; ++j) {
          double g = 0;
          for (unsigned c = 0; c < k; ++c) g += b.psi[i * k + c] * b.psi[j * k + c];
          for (uint64_t q = 0; q < j; ++q) g -= L[i * n + q] * L[j * n + q];
          if (i == j) {
            if (!(g > 0)) { ok = false; break; }
            L[i * n + i] = std::sqrt(g);
          } else {
            L[i * n + j] = g / L[j * n + j];
          }
        }
      if (!ok) continue;  // not positive definite (cannot happen for Gaussian Psi): the k x k path
      b.chol = std::move(L);
      small.emplace(n, std::move(b));
    }
  parallel_for(rank_jobs.size(), resolve_threads(options.threads), [&](size_t x) {
    if (options.exact_rank) check_cancel(options.cancel, "exact SVD");
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
      const size_t len = totals.sketch_len[rj.t];
      const double* si = &sketches[rj.t][rj.i * len];
      const double* sj = &sketches[rj.t][rj.j * len];
      d.resize(len);
      for (size_t e = 0; e < d.size(); ++e) d[e] = si[e] - sj[e];
      auto sb = small.find(n);
      if (totals.rows[rj.t] && sb != small.end()) {
        // d = (Y_i - Y_j) = D Omega, n x k: R = L^T d (L lower: row i sums rows q >= i).
        const std::vector<double>& L = sb->second.chol;
        std::vector<double> R(n * k, 0.0);
        for (uint64_t i = 0; i < n; ++i) {
          double* ri = &R[i * k];
          for (uint64_t q = i; q < n; ++q) {
            const double l = L[q * n + i];
            const double* dq = &d[q * k];
            for (unsigned c = 0; c < k; ++c) ri[c] += l * dq[c];
          }
        }
        sv = singular_values(R.data(), n, k);
        sv.resize(k, 0.0);  // the k - n zero singular values of the k x k sketch
      } else if (totals.rows[rj.t]) {
        throw Error(ErrorCode::Internal, "", plan[rj.t].name, "row sketch without its basis");
      } else if (sb == small.end()) {
        sv = singular_values(d.data(), k, k);
      } else {
        // R = L^-1 (Psi M), n x k: P = Psi M, then forward substitution row by row.
        const std::vector<double>& psi = sb->second.psi;
        const std::vector<double>& L = sb->second.chol;
        std::vector<double> R(n * k, 0.0);
        for (uint64_t i = 0; i < n; ++i) {
          double* ri = &R[i * k];
          for (unsigned a = 0; a < k; ++a) {
            const double w = psi[i * k + a];
            const double* da = &d[static_cast<size_t>(a) * k];
            for (unsigned c = 0; c < k; ++c) ri[c] += w * da[c];
          }
          for (uint64_t q = 0; q < i; ++q) {
            const double l = L[i * n + q];
            const double* rq = &R[q * k];
            for (unsigned c = 0; c < k; ++c) ri[c] -= l * rq[c];
          }
          const double inv = 1.0 / L[i * n + i];
          for (unsigned c = 0; c < k; ++c) ri[c] *= inv;
        }
        sv = singular_values(R.data(), n, k);
        sv.resize(k, 0.0);  // the k - n zero singular values of M
      }
      noise_sigma = 2.0 * std::sqrt(static_cast<double>(k)) * noise_f;  // Psi^T E Omega: entries of rms |E|_F
    }
    const double tol = std::max(sv.empty() ? 0.0 : sv[0] * static_cast<double>(n) * eps, options.rank_safety * noise_sigma);
    double rank = 0;
    for (double s : sv) rank += s > tol ? 1 : 0;
    const size_t p = pair_index(rj.i, rj.j, n_models);
    result.tensors[rj.t].rank[p] = rank;
    result.tensors[rj.t].rank_tol[p] = tol;
    result.tensors[rj.t].sigma_max[p] = sv.empty() ? 0 : sv[0];
    if (options.exact_rank) {
      const uint64_t done = svd_done.fetch_add(1) + 1;
      if (options.progress) {
        std::unique_lock<std::mutex> lock(progress_mu, std::try_to_lock);
        if (lock.owns_lock()) options.progress(PairwiseProgress{bytes_total, bytes_total, done, svd_total});
      }
    }
  });
  // the stage seen to its end (a report above may have lost the race for the lock)
  if (options.exact_rank && options.progress) options.progress(PairwiseProgress{bytes_total, bytes_total, svd_total, svd_total});

  for (size_t t = 0; t < plan.size(); ++t) {
    if (!plan[t].moments) continue;
    result.tensors[t].moments.resize(n_models);
    // models without the tensor: the default summary (has_stats 0)
    for (size_t m = 0; m < n_models; ++m)
      if (refs[t][m]) result.tensors[t].moments[m] = summarize(moments[t][m]);
  }
}

}  // namespace mother
