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
// blocks give ||X||_F^2 and an r x r Gram matrix, from which the choice of an adapter's base among
// unrelated models scores the alignment of dW with X (lib/method/adapter_base.ts): of Y = X L^T
// ([rows, r]: Y^T Y; a module stored as dW = R L), or with `right_gram` of Z = R^T X ([r, cols]:
// Z Z^T; a module stored transposed, X = dW^T, R = A^T: then Z Z^T = A X X^T A^T, the same
// statistic in dW's own orientation). Its memory, per group of rows r x r (or r x cols for Z), is
// bounded by kLoraScratchBytes: fewer groups for larger ranks, none (and no Gram) where one group
// does not fit.
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
  std::vector<double> gram;  // r x r: Y^T Y with Y = X L^T ([rows, r]; ||R L X^T||_F^2 = trace(R^T R Y^T Y)), or with right_gram
                             // Z Z^T with Z = R^T X ([r, cols]); empty when one group's scratch exceeds kLoraScratchBytes
  bool finite = true;   // false when X holds a NaN or an infinity (value is then of no use)
};

// Rows of X per job.
constexpr uint64_t kLoraRowsPerJob = 64;
// Blocks are summed in at most this many groups of consecutive blocks.
constexpr uint64_t kLoraGroups = 64;
// The Gram's scratch of all groups together (groups x r x r, or groups x r x cols for Z) stays
// below this: the group count is lowered (it depends on r, rows and cols only, never on the
// thread count, so the sums do not either); a single group above it: no Gram.
constexpr uint64_t kLoraScratchBytes = uint64_t{64} << 20;

LoraProduct lora_product(const Kernels* k, const TensorView& v, const double* left, const double* right, uint64_t r,
                         uint64_t rows, uint64_t cols, unsigned threads, const int32_t* cancel, bool right_gram = false);

}  // namespace mother
