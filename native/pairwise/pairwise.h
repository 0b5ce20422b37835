// Pairwise statistics engine: N models read once, all pairs in one streaming pass.
//
// The caller (lib/alignment.ts) plans which tensors to compare: for each tensor name, the
// number of rows (leading dimension) each model has, or -1 where the model lacks it or its
// shape is incompatible, and the row size (product of the trailing dimensions). Pairs are
// compared on the rows both have (a resized vocabulary: 32000 vs 32016 rows compares the
// first 32000). Each tensor is cut into flat element ranges (jobs); a job decodes its range
// from every model into a small float64 buffer (N x chunk, cache-resident) and then runs all
// pairs on it. Every byte of every model is read once; memory is O(threads x N x chunk).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../formats/tensor_view.h"
#include "../stats/kernels.h"
#include "../stats/summary.h"

namespace mother {

class GpuBackend;

// The rank sketch's seed when the caller gives none ("mother" in ASCII).
constexpr uint64_t kDefaultSketchSeed = 0x6d6f74686572ull;

struct PairPlanTensor {
  std::string name;
  std::vector<std::string> names;  // per model, when models name the tensor differently (alignment); empty: `name` in every model
  std::vector<int64_t> rows;  // per model; -1: not compared for that model
  uint64_t row_elems = 1;     // product of the trailing dimensions (1 for 1-D tensors)
  bool sketch = false;        // square 2-D: also compute the rank of differences
  bool moments = false;       // also per-model moments (kurtosis) of this tensor, same read
};

struct PairwiseProgress {
  uint64_t bytes_done;
  uint64_t bytes_total;
  // The exact-rank stage after the read (exact_rank only): SVDs finished of svd_total.
  uint64_t svd_done = 0;
  uint64_t svd_total = 0;
};

struct PairwiseOptions {
  unsigned threads = 0;
  const Kernels* kernels = nullptr;
  // Per model, the cache-resident sub-chunk on which all pairs run; 0: default_chunk_elems(N).
  uint64_t chunk_elems = 0;
  uint64_t job_elems = 0;       // per model per job (mapped and released at once); 0: auto
  std::function<void(const PairwiseProgress&)> progress;  // from workers, never concurrently
  const int32_t* cancel = nullptr;
  // Rank of differences (tensors with sketch = true). Sketch mode: S_m = Psi^T W_m Omega,
  // k x k, Psi and Omega n x k standard Gaussian from `seed`, computed once per model while
  // streaming; rank(S_i - S_j) = rank(W_i - W_j) when that rank is below k. Exact mode: the
  // singular values of W_i - W_j themselves (holds N whole tensors in memory: verification).
  unsigned sketch_k = 64;
  uint64_t sketch_seed = kDefaultSketchSeed;
  bool exact_rank = false;
  double rank_safety = 3.0;  // tolerance = safety x the expected largest singular value of storage noise
  // Run the pass on this device (native/gpu/); nullptr: the CPU. Exact rank always runs on
  // the CPU (it holds whole tensors in host memory).
  GpuBackend* gpu = nullptr;
  // Also sum |d|, max d and min d (the l1 and maxdiff metrics): on the CPU they take a pass of
  // their own over every pair (the other sums come from Gram products).
  bool differences = true;
  // Also the shifted null of the relatedness statistic (r_shift1, r_shift2, n_shift).
  bool relatedness = false;
};

// Per planned tensor, per unordered pair p = pair_index(i, j) (i < j), a = model i's tensor,
// b = model j's, over the positions the pair compared (the rows both have, both values finite):
struct PairTensorResult {
  std::vector<double> sum_sq;    // sum (a - b)^2 over compared finite positions (exactly 0 for equal values)
  std::vector<double> sum_abs;   // sum |a - b|      (options.differences only, else empty)
  std::vector<double> max_diff;  // max (a - b)  (-inf when nothing compared; differences only)
  std::vector<double> min_diff;  // min (a - b)  (+inf when nothing compared; differences only)
  std::vector<double> count;     // positions compared (both finite)
  std::vector<double> skipped;   // positions skipped because either value was NaN/Inf
  // Relatedness (always; NaN when nothing was compared):
  std::vector<double> mean_a, mean_b;  // means of a and of b
  std::vector<double> var_a, var_b;    // population variances of a and of b
  // 1 - Pearson r of a and b, as [var(a - b) - (sd_a - sd_b)^2] / (2 sd_a sd_b) from the
  // moments of a - b (no digits lost for near-identical tensors); NaN when a variance is 0.
  std::vector<double> one_minus_r;
  // options.relatedness only (else empty): Pearson r of a[p] with b[p + R] and b[p + 2R] (R =
  // row_elems, rows shifted by one and two) over the n_shift sampled positions p (shift_null.h);
  // NaN when n_shift is 0 or a variance is 0.
  std::vector<double> r_shift1, r_shift2, n_shift;
  // sketch tensors only (else empty), per pair:
  std::vector<double> rank;       // number of singular values above rank_tol
  std::vector<double> rank_tol;   // the tolerance used (in the sketch's or the matrix's scale)
  std::vector<double> sigma_max;  // largest singular value (same scale)
  // moments tensors only (else empty): per model, over that model's whole tensor (the
  // default summary, has_stats 0, for a model without it)
  std::vector<Summary> moments;
  // per model, kGridFields (stats/quant_grid.h): sampled blocks tested for and lying on the
  // Q4_0 and Q8_0 grids (a dequantised copy of a quantised model)
  std::vector<double> grid;
};

struct PairwiseResult {
  std::vector<PairTensorResult> tensors;  // same order as the plan
  std::vector<uint64_t> bytes_read;       // per model
  double seconds = 0;
  uint64_t svd_total = 0;                 // exact SVDs run (exact_rank only)
};

inline size_t pair_count(size_t n) { return n * (n - 1) / 2; }
// The default sub-chunk: N models' decoded sub-chunks take about 512 KiB (64 Ki float64 in
// all, the size of a core's L2), 1 Ki to 16 Ki elements per model. Measured (BF16, 64 MiB
// models, rms only: the Gram path, idle 2-core EPYC, median of 5) against 1 Ki: +15 % at N = 2
// (16 Ki), +14 % at N = 8 (8 Ki), +24 % at N = 32 (2 Ki): fewer per-sub-chunk steps per element.
inline uint64_t default_chunk_elems(size_t n_models) {
  uint64_t c = 16384;
  while (c > 1024 && c * (n_models ? n_models : 1) > 65536) c /= 2;
  return c;
}
// Index of the unordered pair (i, j), i < j, in row-major upper-triangle order.
inline size_t pair_index(size_t i, size_t j, size_t n) { return i * (2 * n - i - 1) / 2 + (j - i - 1); }

PairwiseResult pairwise(const std::vector<Model>& models, const std::vector<PairPlanTensor>& plan,
                        const PairwiseOptions& options);

}  // namespace mother
