// The spectral entropy of a 2-D tensor: a direction clock (lib/method/clocks.ts). With p_i =
// s_i^2 / sum_j s_j^2 over the singular values s of the matrix, H = -sum p_i log p_i, the
// logarithm of an effective rank. Dense, nearly isotropic updates (Adam's sign-like steps of a
// fine-tune, the steps of a continued pre-training) spread the spectrum and raise H.
//
// A matrix larger than max_dim in a dimension is measured on an evenly strided sub-block: rows
// floor(i R / b_r) for i < b_r = min(R, max_dim), columns likewise. The sub-block depends only
// on the shape, so every model of a family is measured on the same elements (a paired
// comparison), and memory and time stay bounded: one row decoded at a time, one b_r x b_c
// float64 block and its singular values (Householder bidiagonalisation + implicit QR,
// native/pairwise/svd.h).
#pragma once
#include <cstdint>

#include "../formats/tensor_view.h"
#include "kernels.h"

namespace mother {

struct Spectrum {
  bool ok = false;  // false: not a 2-D view with statistics, rows not whole blocks, or empty
  uint64_t rows = 0, cols = 0;          // of the tensor
  uint64_t block_rows = 0, block_cols = 0;  // of the measured (sub-)block
  double entropy = 0;  // NaN when the block holds a NaN or an infinity, or is all zeros
  double top = 0;      // the largest singular value of the block
};

// cancel: checked between rows (nonzero: throws Error(Cancelled)).
Spectrum spectral_entropy(const Kernels* k, const TensorView& v, uint64_t max_dim, const int32_t* cancel);

// H of singular values s[0..n) (any order): what spectral_entropy computes from the block's.
double entropy_of_singular_values(const double* s, uint64_t n);

}  // namespace mother
