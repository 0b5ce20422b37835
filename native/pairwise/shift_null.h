// The null of the relatedness statistic (issue 12): per pair and tensor, Pearson r between
// a[p] and b[p + R] and between a[p] and b[p + 2R] (a: model i's tensor, b: model j's, i < j;
// R = elements per row, 1 for 1-D tensors), the same statistic as r(a, b) with any real
// relation between the two tensors broken by the shift of one and two rows.
//
// Positions are sampled deterministically from the positions alone (so the CPU and the GPU
// pass sample the same ones, whatever their jobs): windows of kShiftWindow positions, every
// kShiftEvery-th window of each tensor (windows 0, 8, 16, ...: an eighth of the tensor), and
// in them the positions p with p + 2R inside the rows both models have and a[p], b[p + R],
// b[p + 2R] all finite. Each window is one segment of the bivariate moments of
// (a[p], b[p + R], b[p + 2R]), merged exactly (Chan et al.) in window order.
#pragma once
#include <cstdint>
#include <vector>

#include "../formats/tensor_view.h"
#include "../stats/kernels.h"

namespace mother {

constexpr uint64_t kShiftWindow = 1024;
constexpr uint64_t kShiftEvery = 8;

// Buffers of one thread, reused between calls.
struct ShiftScratch {
  std::vector<double> buf;  // 3 windows per model
  std::vector<uint64_t> len;
  std::vector<uint8_t> bad, clean;
  std::vector<double> mom;  // per model: 3 x {mean, m2}
  std::vector<double> c1, c2;
  std::vector<const double*> ra, rb1, rb2;
  std::vector<size_t> idx;
};

// Merges into `pairs` (kPairFields per pair, pair_index order) the shifted-null segments of
// the sampled windows that start in [first, first + count) of one tensor. views[m]: model m's
// view (nullptr where it is not compared), elems[m] its compared elements (rows x row_elems),
// row_elems = R. Pages the windows read at or beyond `release_from` are dropped afterwards
// (release_view_pages): pass first + count when the caller releases its own range, 0 to drop
// every page read.
void shift_windows(const Kernels* k, const std::vector<const TensorView*>& views, const std::vector<uint64_t>& elems,
                   uint64_t row_elems, uint64_t first, uint64_t count, uint64_t release_from, double* pairs,
                   ShiftScratch& s);

}  // namespace mother
