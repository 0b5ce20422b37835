// The inner product of a model's tensor with a PEFT adapter's low-rank difference, without
// forming the difference: for a 2-D view X [rows, cols], left L [r, cols] and right R [rows, r]
// (row-major float64),
//     <X, R L> = sum_o sum_k R[o, k] (X[o, :] . L[k, :]) = trace(R^T X L^T).
// With dW = s B A ([out, in]) the caller passes L = A, R = B (and multiplies by s); for a
// module stored transposed (embeddings, fan_in_fan_out: X is dW's transpose) L = B^T, R = A^T.
// The inner products <dW, X - Base> = <X, dW> - <Base, dW> give the distances between an
// adapter (Base + dW) and every other model (lib/io/adapter.ts).
//
// One pass over X: blocks of rows decoded to float64 (decode_f64: every dtype, block type and
// row map), X_block L^T by the ISA's sketch_rows kernel, folded with R; groups of blocks on threads, their
// partial sums added in block order (the result does not depend on the thread count). The same
// blocks give ||X||_F^2 and the r x r Gram matrix of X L^T, from which the choice of an adapter's
// base among unrelated models scores the alignment of dW with X (lib/method/adapter_base.ts).
#pragma once
#include <cstdint>
#include <vector>

#include "../formats/tensor_view.h"
#include "../stats/kernels.h"

namespace mother {

struct LoraProduct {
  bool ok = false;      // false: not a 2-D view with statistics of shape [rows, cols], or rows not whole blocks
  double value = 0;     // <X, R L>
  double sum_sq = 0;    // ||X||_F^2 (the scale of <X, R L> when X is independent of R L)
  std::vector<double> gram;  // r x r (empty when r > kLoraGramMaxRank), Y^T Y with Y = X L^T ([rows, r]): ||R L X^T||_F^2 = trace(R^T R Y^T Y)
  bool finite = true;   // false when X holds a NaN or an infinity (value is then of no use)
};

// Rows of X per job.
constexpr uint64_t kLoraRowsPerJob = 64;
// Blocks are summed in at most this many groups of consecutive blocks (memory: groups x r x r).
constexpr uint64_t kLoraGroups = 64;
// The Gram matrix only for ranks up to this (empty above).
constexpr uint64_t kLoraGramMaxRank = 64;

LoraProduct lora_product(const Kernels* k, const TensorView& v, const double* left, const double* right, uint64_t r,
                         uint64_t rows, uint64_t cols, unsigned threads, const int32_t* cancel);

}  // namespace mother
