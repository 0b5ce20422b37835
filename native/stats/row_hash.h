// Row hashes: which rows of a 2-D tensor two models hold identically. A fine-tune moves only
// the token-embedding rows of the tokens its data uses, so two relatives share bit-identical
// rows for every token left unused along the path between them in the tree; the count is tree
// evidence that distances miss when fine-tunes on the same data drift the same way (see
// lib/method/embedding_rows.ts).
//
// Per logical row (through the view's row map), one 64-bit hash of the row's values at each
// of three precisions: float32, float16 and bfloat16 (each value rounded to nearest even from
// its float32 value; NaN canonical, -0 kept). Two models stored in different dtypes are
// compared at the coarser one (F32 < F16 < BF16; F16 with BF16 at BF16), so an F32 child of a
// BF16 parent matches on the rows it left untouched. Equal rows have equal hashes; unequal
// rows collide with probability about 2^-64 per pair of rows (a position-dependent mix,
// splitmix64 finaliser).
#pragma once
#include <cstdint>
#include <vector>

#include "../formats/tensor_view.h"
#include "kernels.h"

namespace mother {

struct RowHashes {
  uint64_t rows = 0;
  uint64_t row_elems = 0;
  // per row; 3 precisions
  std::vector<uint64_t> f32, f16, bf16;
};

// The hashes of every row of view v (a 2-D tensor; 1-D: one row); none (rows 0) for a view
// without statistics or whose rows are not whole blocks of its storage type. Memory: one row.
// cancel: checked between rows (nonzero: throws Error(Cancelled)).
RowHashes row_hashes(const Kernels* k, const TensorView& v, const int32_t* cancel);

// The roundings used (exposed for the tests): float32 -> IEEE half / bfloat16 bits, nearest even.
uint16_t f32_to_f16_bits(float x);
uint16_t f32_to_bf16_bits(float x);

}  // namespace mother
