// What the CPU pass (pairwise.cc) and the GPU pass (pairwise_gpu.cc) share: the plan checked
// against the models, the one job planner, the layout of a job's partial results and the one
// fold of them into the totals, and the finish (ranks, moment summaries). Both passes fold a
// tensor's jobs in job order, so their results do not depend on threads or timing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "../core/moments.h"
#include "../formats/tensor_view.h"
#include "../gpu/gpu_api.h"
#include "pairwise.h"

namespace mother {

// The plan checked against the models' tensors: refs[t][m] is model m's tensor, or nullptr
// where it is not compared; max_elems[t] the largest compared range.
struct ResolvedPlan {
  std::vector<std::vector<const TensorView*>> refs;
  std::vector<uint64_t> max_elems;
  uint64_t bytes_total = 0;
};
ResolvedPlan resolve_plan(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan);

// ---- jobs ---------------------------------------------------------------------------------

// A flat element range [first, first + count) of one planned tensor, read from every model.
struct PairJob {
  uint32_t tensor;
  uint64_t first;
  uint64_t count;
};
struct PairJobs {
  std::vector<PairJob> jobs;      // tensor order, then element order
  std::vector<size_t> first_job;  // per tensor, + 1 at the end: jobs [first_job[t], first_job[t + 1])
  std::vector<uint64_t> sub;      // per tensor: elements of the sub-chunks a job is worked in
};
// Jobs of job_elems elements per model, worked in sub-chunks of sub_elems. Every job and
// sub-chunk of a tensor starts on a multiple of its unit: the lcm of view_align() over the
// compared views (their block sizes, and whole rows where a view has a row map), and whole
// rows for sketch tensors (the rank sketch consumes whole rows). A sub-chunk is as many units
// as fit sub_elems (at least one; sub_elems 0: one unit) and a job whole sub-chunks (at least
// one).
PairJobs plan_pair_jobs(const std::vector<PairPlanTensor>& plan, const ResolvedPlan& resolved, uint64_t job_elems,
                        uint64_t sub_elems);
// Elements of model m in the job: 0 where the model lacks the tensor or has fewer rows.
uint64_t elems_in_job(const std::vector<PairPlanTensor>& plan, const ResolvedPlan& resolved, const PairJob& job,
                      size_t m);

// ---- the rank sketch ------------------------------------------------------------------------

inline unsigned sketch_size(const PairwiseOptions& o) { return o.sketch_k > 0 ? o.sketch_k : 64; }
// A small sketch tensor (4n <= k): the CPU pass keeps Y = W Omega (n x k) per model instead of
// the k x k S = Psi^T Y, and the rank comes from L^T (Y_i - Y_j) with Psi Psi^T = L L^T
// (pair_plan.cc): the same singular values, n/k of the memory and of the work.
inline bool small_sketch(uint64_t n, unsigned k) { return n > 0 && 4 * n <= k; }
// The Gaussian test matrices for n x n tensors: psi and omega, n x k row-major.
struct SketchBasis {
  std::vector<double> psi;
  std::vector<double> omega;
};
SketchBasis make_basis(uint64_t seed, uint64_t n, unsigned k);
// One basis per matrix size n of the plan's sketch tensors.
std::map<uint64_t, SketchBasis> make_bases(const std::vector<PairPlanTensor>& plan, uint64_t seed, unsigned k);

// ---- a job's partial results and their fold -----------------------------------------------

// Per pair, kPairFields doubles in this order: the sums of d = a - b (a: model i, b: model j,
// i < j) over the positions the pair compared; the moments (count, mean, sum of squared
// deviations) of a, b and d over those positions; and, with `relatedness`, the bivariate
// moments of a[p] with b[p + R] and b[p + 2R] over the sampled positions (shift_null.h).
// The GPU backends produce their own layouts (gpu_api.h), converted into this one per job.
enum PairField : size_t {
  kSumSq, kSumAbs, kMaxDiff, kMinDiff, kSkipped,
  kN, kMeanA, kM2A, kMeanB, kM2B, kMeanD, kM2D, kDM2,
  kShN, kShMeanA, kShM2A, kShMeanB1, kShM2B1, kShC1, kShMeanB2, kShM2B2, kShC2,
  kPairFields
};
// Sums 0, max -inf, min +inf, moments empty, for n_pairs pairs.
void init_pairs(double* pairs, size_t n_pairs);

// acc (kPairFields) <- acc (+) the moments of a segment of n positions (Chan et al.: exact
// formulas for the union of two disjoint sets): means ma, mb, md and sums of squared
// deviations m2a, m2b, m2d of a, b and d = a - b, and dm2 = m2a - m2b computed on its own
// (as the co-moment of d and a + b: for near-identical tensors m2a - m2b is far smaller than
// either, and 1 - r needs its digits). The sums (kSumSq, ...) are the caller's.
inline void merge_pair_moments(double* acc, double n, double ma, double m2a, double mb, double m2b, double md,
                               double m2d, double dm2) {
  if (n == 0) return;
  const double n1 = acc[kN];
  if (n1 == 0) {
    acc[kN] = n, acc[kMeanA] = ma, acc[kM2A] = m2a, acc[kMeanB] = mb, acc[kM2B] = m2b, acc[kMeanD] = md, acc[kM2D] = m2d;
    acc[kDM2] = dm2;
    return;
  }
  const double nt = n1 + n, f = n / nt, w = n1 * f;
  const double da = ma - acc[kMeanA], db = mb - acc[kMeanB], dd = md - acc[kMeanD];
  acc[kN] = nt;
  acc[kMeanA] += da * f, acc[kM2A] += m2a + da * da * w;
  acc[kMeanB] += db * f, acc[kM2B] += m2b + db * db * w;
  acc[kMeanD] += dd * f, acc[kM2D] += m2d + dd * dd * w;
  acc[kDM2] += dm2 + dd * (da + db) * w;  // da^2 - db^2 = (da - db)(da + db), da - db = dd
}
// acc <- acc (+) a segment of the shifted null: n positions p, a[p] with mean ma and sum of
// squared deviations m2a; b[p + s R] (s = 1, 2) with means mb1, mb2, m2b1, m2b2, and the sums
// of products of deviations c1, c2.
inline void merge_shift_moments(double* acc, double n, double ma, double m2a, double mb1, double m2b1, double c1,
                                double mb2, double m2b2, double c2) {
  if (n == 0) return;
  const double n1 = acc[kShN];
  if (n1 == 0) {
    acc[kShN] = n, acc[kShMeanA] = ma, acc[kShM2A] = m2a, acc[kShMeanB1] = mb1, acc[kShM2B1] = m2b1, acc[kShC1] = c1;
    acc[kShMeanB2] = mb2, acc[kShM2B2] = m2b2, acc[kShC2] = c2;
    return;
  }
  const double nt = n1 + n, f = n / nt, w = n1 * f;
  const double da = ma - acc[kShMeanA], d1 = mb1 - acc[kShMeanB1], d2 = mb2 - acc[kShMeanB2];
  acc[kShN] = nt;
  acc[kShMeanA] += da * f, acc[kShM2A] += m2a + da * da * w;
  acc[kShMeanB1] += d1 * f, acc[kShM2B1] += m2b1 + d1 * d1 * w, acc[kShC1] += c1 + da * d1 * w;
  acc[kShMeanB2] += d2 * f, acc[kShM2B2] += m2b2 + d2 * d2 * w, acc[kShC2] += c2 + da * d2 * w;
}
// acc <- acc (+) q: both kPairFields (sums added, extremes kept, moments merged).
void merge_pair_fields(double* acc, const double* q);

// One job's results: pointers into the pass's buffers (nullptr where the tensor has none).
struct PairPartial {
  const double* pairs;      // kPairFields per pair
  const double* norm2;      // sketch tensors: per model, sum of w^2
  const double* sketch;     // sketch tensors (sketch mode): per model, PassTotals::sketch_len[t] doubles
  const Moments* moments;   // moments tensors: per model
  const double* grid;       // per model, kGridFields (stats/quant_grid.h); nullptr: none sampled
};

// What a pass accumulates besides the pair sums, per planned tensor.
struct PassTotals {
  // Zeros for every sketch and moments tensor; whole tensors are filled as they are read.
  // row_sketch: small sketch tensors keep Y = W Omega, n x k (small_sketch; the CPU pass).
  PassTotals(const std::vector<PairPlanTensor>& plan, size_t n_models, unsigned k, bool exact_rank, bool row_sketch = false);
  std::vector<std::vector<double>> sketches;           // sketch tensors: per model k x k, or n x k (rows[t])
  std::vector<size_t> sketch_len;                      // per tensor: doubles per model in sketches[t]
  std::vector<uint8_t> rows;                           // per tensor: 1 where sketches[t] holds Y = W Omega
  std::vector<std::vector<double>> norms;              // sketch tensors: per model sum w^2
  std::vector<std::vector<std::vector<double>>> whole; // exact rank: per model the whole tensor
  std::vector<std::vector<Moments>> moments;           // moments tensors: per model
  std::vector<std::vector<double>> pairs;              // per tensor: kPairFields per pair
};

// Folds the partial of `job` into its tensor's totals: the pairs, and for the models with
// elements in the job, norms, sketches and moments. Touches that tensor only.
void fold_partial(const std::vector<PairPlanTensor>& plan, const ResolvedPlan& resolved, const PairJob& job,
                  const PairPartial& q, PassTotals& totals, PairwiseResult& result);

// ---- before and after a pass --------------------------------------------------------------

// Zero sums, -inf / +inf extremes, per tensor and pair; bytes read 0 per model.
PairwiseResult empty_result(size_t n_tensors, size_t n_models);
// After a pass: the pair results from the totals (sums, positions compared, the relatedness
// statistics; sum_abs, max_diff, min_diff only with options.differences, the shifted null only
// with options.relatedness), ranks of differences, per-model moment summaries.
void finish_pairwise(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                     const PairwiseOptions& options, const ResolvedPlan& resolved, PassTotals& totals,
                     PairwiseResult& result);

// The pass on a GPU (options.gpu), same results within rounding (pairwise_gpu.cc).
PairwiseResult pairwise_gpu(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                            const PairwiseOptions& options, const ResolvedPlan& resolved);

}  // namespace mother
