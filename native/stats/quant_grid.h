// Quantisation grids: whether a float tensor holds the dequantised values of a blockwise
// quantisation (ggml's Q8_0 and Q4_0: blocks of 32 along a row, every value an integer
// multiple of the block's one scale). A model converted back from such a file keeps the grid
// exactly (up to the rounding of its storage dtype), where a trained or fine-tuned model has
// ~0 probability of it; the recovery uses it to type 'quantized' copies whose rounding noise is
// far larger than any dtype's (Q4_0: about 0.1 of the weights' spread).
//
// The test, per block x[0..32) with a = max |x| > 0 and L levels (8 for Q4_0: its extreme
// maps to -8 d exactly; 127 for Q8_0: to +-127 d): every x_i L / a is within tol of an
// integer, tol = 2 L u + 1e-9 with u the unit roundoff of the storage dtype (F32 2^-24, F16
// 2^-11, BF16 2^-8). A level whose tol exceeds 0.2 is not tested in that dtype (Q8_0 in BF16).
// A block of independent values passes with probability about (2 tol)^31: never, in practice.
// Not covered: grids with an offset (Q4_1, Q5_1), sub-block scales (the K-quants); a GGUF
// file's own quantised dtypes are known from its header.
#pragma once
#include <cstdint>

#include "../formats/tensor_view.h"
#include "kernels.h"

namespace mother {

constexpr uint64_t kGridBlock = 32;
// Per model: blocks tested for the Q4_0 grid, blocks on it, blocks tested for Q8_0, on it.
constexpr unsigned kGridFields = 4;
enum GridField : unsigned { kGridTested4 = 0, kGridOn4 = 1, kGridTested8 = 2, kGridOn8 = 3 };

// The sample: the block of 32 at every multiple of kGridStep of a tensor's elements (about 3 %
// of them), so any pass over any split of a tensor into ranges tests the same blocks.
constexpr uint64_t kGridStep = 1024;

// Tests the sampled blocks that lie wholly in [first, first + count) of view v, whose stored
// bytes start at `at` (the mapped view, or a staged copy of it), adding to out[kGridFields].
// Only F32, F16 and BF16 views without a row map, of 2-D tensors whose rows are a multiple of
// 32, are tested; blocks with NaN, Inf or all zeros are not counted.
void sample_grid(const Kernels* k, const TensorView& v, const uint8_t* at, uint64_t first, uint64_t count, double* out);

// The test of one block (exposed for the tests): bit 0 = tested for Q4_0, bit 1 = on it,
// bit 2 = tested for Q8_0, bit 3 = on it.
unsigned grid_block(const double* x, double unit_roundoff);

}  // namespace mother
