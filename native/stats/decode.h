// The one decode entry: every pass that turns a view's stored elements into numbers goes
// through these functions, so a storage layout (a dtype, a block-quantised kind, a row order)
// is taught to the core in one place. The CPU statistics pass calls accumulate_view, the CPU
// pairwise pass decode_f64; the GPU passes stage the raw bytes (gpu/staging.h) and decode on
// the device.
//
// Block-quantised kinds (TensorView::decode) are added inside these two functions and the
// kernels, not in the engines; the affine kinds (ONNX linear quantisation) are decoded here,
// per channel, and their statistics reduced from float64 chunks. Row maps (TensorView::row_map) are honoured here: decode_f64
// reads logical rows through the map; accumulate_view reads the stored order (moments do not
// depend on the order, and the union of a pass's ranges is the whole tensor either way).
#pragma once
#include <cstdint>

#include "../core/moments.h"
#include "../formats/tensor_view.h"
#include "kernels.h"

namespace mother {

// Elements of one row of the view: count / shape[0] (count for a 0-D tensor, 0 for an empty one).
uint64_t view_row_elems(const TensorView& v);

// The unit every element range handed to decode_f64 must start on (and, but for the tensor's
// end, be a multiple of): the view's block size, and whole rows where it has a row map. The
// pair planner aligns jobs and sub-chunks to the lcm of this over the compared views.
uint64_t view_align(const TensorView& v);

// Decodes logical elements [first, first + n) of `view` to float64 at out; true if any of them
// is NaN or +-Inf. `first` is on a multiple of view_align(view). Throws Error(Internal) for a
// row map entry out of range.
bool decode_f64(const Kernels* k, const TensorView& view, uint64_t first, uint64_t n, double* out);

// decode_f64 fused with the Gram path's centring: out = x - ref for the decoded values x,
// *sum = sum out; true if any x is NaN or +-Inf (out and *sum are then of no use).
bool decode_f64_center(const Kernels* k, const TensorView& view, uint64_t first, uint64_t n, const double* ref, double* out,
                       double* sum);

// Folds the stored elements [first, first + n) of `view` (first on a block boundary) into *acc.
void accumulate_view(const Kernels* k, const TensorView& view, uint64_t first, uint64_t n, Moments* acc);

// Whether a model holds views only the CPU decodes (the GGUF block types, the affine quantised
// ONNX weights): the GPU passes leave such models to the CPU.
bool needs_cpu_decode(const Model& model);

// Maps in one call / drops from the resident set the pages that hold logical elements
// [first, first + n): through the row map, the span of the stored rows they come from.
void populate_view(const TensorView& v, uint64_t first, uint64_t n);
void release_view(const TensorView& v, uint64_t first, uint64_t n);
// Drops every page that holds any of the logical elements [first, first + n) (the span rounded
// out to whole pages, not in as release_view does): for ranges a pass read outside its own job,
// which may share pages with ranges other jobs read (they fault them in again if they need them).
void release_view_pages(const TensorView& v, uint64_t first, uint64_t n);

}  // namespace mother
