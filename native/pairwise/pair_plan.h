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
// Jobs of job_elems elements per model, worked in sub-chunks of sub_elems. The rank sketch
// consumes whole rows: for sketch tensors a sub-chunk is whole rows (as many as fit sub_elems,
// at least one; sub_elems 0: one row) and a job whole sub-chunks (at least one).
PairJobs plan_pair_jobs(const std::vector<PairPlanTensor>& plan, const ResolvedPlan& resolved, uint64_t job_elems,
                        uint64_t sub_elems);
// Elements of model m in the job: 0 where the model lacks the tensor or has fewer rows.
uint64_t elems_in_job(const std::vector<PairPlanTensor>& plan, const ResolvedPlan& resolved, const PairJob& job,
                      size_t m);

// ---- the rank sketch ------------------------------------------------------------------------

inline unsigned sketch_size(const PairwiseOptions& o) { return o.sketch_k > 0 ? o.sketch_k : 64; }
// The Gaussian test matrices for n x n tensors: psi and omega, n x k row-major.
struct SketchBasis {
  std::vector<double> psi;
  std::vector<double> omega;
};
SketchBasis make_basis(uint64_t seed, uint64_t n, unsigned k);
// One basis per matrix size n of the plan's sketch tensors.
std::map<uint64_t, SketchBasis> make_bases(const std::vector<PairPlanTensor>& plan, uint64_t seed, unsigned k);

// ---- a job's partial results and their fold -----------------------------------------------

// Per pair, kPairFields doubles in this order; the CPU kernels' acc[4] is the first four. The
// GPU backends produce the same layout (gpu_api.h).
enum PairField : size_t { kSumSq, kSumAbs, kMaxDiff, kMinDiff, kSkipped, kPairFields };
static_assert(kPairFields == MOTHER_GPU_PAIR_FIELDS, "the pair layout of gpu_api.h");
// Sums 0, max -inf, min +inf, for n_pairs pairs.
void init_pairs(double* pairs, size_t n_pairs);

// One job's results: pointers into the pass's buffers (nullptr where the tensor has none).
struct PairPartial {
  const double* pairs;      // kPairFields per pair
  const double* norm2;      // sketch tensors: per model, sum of w^2
  const double* sketch;     // sketch tensors (sketch mode): per model, k x k
  const Moments* moments;   // moments tensors: per model
};

// What a pass accumulates besides the pair sums, per planned tensor.
struct PassTotals {
  // Zeros for every sketch and moments tensor; whole tensors are filled as they are read.
  PassTotals(const std::vector<PairPlanTensor>& plan, size_t n_models, unsigned k, bool exact_rank);
  std::vector<std::vector<double>> sketches;           // sketch tensors: per model k x k
  std::vector<std::vector<double>> norms;              // sketch tensors: per model sum w^2
  std::vector<std::vector<std::vector<double>>> whole; // exact rank: per model the whole tensor
  std::vector<std::vector<Moments>> moments;           // moments tensors: per model
};

// Folds the partial of `job` into its tensor's totals and pair sums: the pairs, and for the
// models with elements in the job, norms, sketches and moments. Touches that tensor only.
void fold_partial(const std::vector<PairPlanTensor>& plan, const ResolvedPlan& resolved, const PairJob& job,
                  const PairPartial& q, unsigned k, PassTotals& totals, PairwiseResult& result);

// ---- before and after a pass --------------------------------------------------------------

// Zero sums, -inf / +inf extremes, per tensor and pair; bytes read 0 per model.
PairwiseResult empty_result(size_t n_tensors, size_t n_models);
// After a pass: positions compared, ranks of differences, per-model moment summaries.
void finish_pairwise(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                     const PairwiseOptions& options, const ResolvedPlan& resolved, PassTotals& totals,
                     PairwiseResult& result);

// The pass on a GPU (options.gpu), same results within rounding (pairwise_gpu.cc).
PairwiseResult pairwise_gpu(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                            const PairwiseOptions& options, const ResolvedPlan& resolved);

}  // namespace mother
