// Decoding a range of a tensor view to float64 through its block layout and its row map: what
// the pairwise pass decodes with. (A bridge until the engine's one decode entry takes views:
// it handles GGUF block types and TensorView::row_map, which plain kernels->decode_f64 calls
// on the view's bytes do not.)
#pragma once
#include <cstdint>

#include "../formats/tensor_view.h"
#include "kernels.h"

namespace mother {

// Decodes elements [first, first + n) of `view` in logical order (row r of a view with a
// row_map read from stored row (*row_map)[r]) to out; true if any is NaN or +-Inf. Any first
// and n: ranges off block boundaries decode the blocks they cut into a small buffer.
bool decode_view_f64(const Kernels* k, const TensorView& view, uint64_t first, uint64_t n, double* out);

// Whether a model holds views that only the CPU decodes (GGUF block types, row maps): the
// GPU passes leave such models to the CPU.
bool needs_cpu_decode(const Model& model);

}  // namespace mother
