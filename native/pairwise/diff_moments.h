// The moments of the difference of two models' tensors, for every pair of a set, on an evenly
// strided sample of rows: a parent and its fine-tune differ by one training run, two siblings by
// two (whose shared part cancels), and the shape of the difference (its excess kurtosis) tells
// them apart where the distances do not (lib/method/direction's parent choice; README).
//
// One tensor per job: rows floor(i R / b), i < b = min(R, max_rows) (the same rows in every
// model), each decoded to float64 once per model (decode_f64: every dtype, block type and row
// order), then for every pair the row difference folded into that pair's Moments by the ISA's
// accumulate kernel (exact merges; NaN and Inf counted, not folded).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/moments.h"
#include "../formats/tensor_view.h"
#include "../stats/kernels.h"

namespace mother {

struct DiffMoments {
  bool ok = false;              // false: fewer than two models hold it as a 2-D view with statistics of one shape
  uint64_t rows = 0, cols = 0;  // of the tensor
  uint64_t sampled = 0;         // rows sampled
  std::vector<Moments> pairs;   // per pair (i < j, in order), empty where a model lacks it: n = 0
};

// views[m]: model m's view of the tensor, or nullptr. cancel: checked between rows.
DiffMoments diff_moments(const Kernels* k, const std::vector<const TensorView*>& views, uint64_t max_rows,
                         const int32_t* cancel);

}  // namespace mother
