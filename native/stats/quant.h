// GGUF (ggml) block-quantised tensors: their blocks decoded to float64, and their statistics
// fused with the decoding block by block (never a decoded copy of a tensor).
//
// Values. Each block type stores small integers q with per-block (or per-sub-block) scales
// stored as f16 (or 6-, 4- and 8-bit integers times an f16): y = a * q + b. The value of an
// element is that formula evaluated in float64: every product of a scale and an integer is
// exact in float64, so a value is the exact real number rounded once (only the "+ b" of the
// types with a minimum rounds at all). ggml's own float32 dequantisation agrees with it to
// half a float32 ulp. Non-finite scales (f16 Inf/NaN) give Inf/NaN values (Inf * 0 = NaN),
// which the statistics skip and count like any other NaN/Inf.
//
// Block layouts (ggml-common.h; byte offsets inside one block):
//   Q8_0  32 in 34: f16 d, i8 q[32];                          y = d q
//   Q4_0  32 in 18: f16 d, u8 qs[16] (lo nibble: 0..15, hi: 16..31);  y = d (q - 8)
//   Q4_1  32 in 20: f16 d, f16 m, qs[16];                      y = d q + m
//   Q5_0  32 in 22: f16 d, u32 qh (bit i: 5th bit of element i), qs[16]; y = d (q - 16)
//   Q5_1  32 in 24: f16 d, f16 m, qh, qs[16];                  y = d q + m
//   Q2_K 256 in 84: u8 scales[16] (lo: scale, hi: min), qs[64] (2 bits), f16 d, f16 dmin;
//                   sub-blocks of 16: y = d sc q - dmin m
//   Q3_K 256 in 110: hmask[32], qs[64] (2 low bits), scales[12] (16 x 6 bits), f16 d;
//                   sub-blocks of 16: y = d (sc - 32) (q - 4 when the hmask bit is clear)
//   Q4_K 256 in 144: f16 d, f16 dmin, scales[12] (8 x (6-bit scale, 6-bit min)), qs[128];
//                   sub-blocks of 32: y = d sc q - dmin m
//   Q5_K 256 in 176: as Q4_K plus qh[32] (5th bits);          y = d sc q - dmin m
//   Q6_K 256 in 210: ql[128] (low 4 bits), qh[64] (high 2 bits), i8 scales[16], f16 d;
//                   sub-blocks of 16: y = d sc (q - 32)
//   MXFP4 32 in 17: u8 e (E8M0), qs[16] (lo nibble: 0..15, hi: 16..31), each nibble an FP4
//                   E2M1 value (0, 0.5, 1, 1.5, 2, 3, 4, 6, then the same negated); ggml keeps
//                   them doubled as the integers k[q] = 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, ..., -12
//                   and halves the scale: y = k[q] 2^(e - 128) for every e (0xFF is 2^127, not
//                   NaN, as in ggml), so MXFP4 values are always finite
// The element order inside the 256-blocks is spelled out in quant_scalar.cc.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/dtype.h"
#include "../core/moments.h"

namespace mother {

struct Kernels;

// Elements and bytes of one block of a block dtype with statistics (Q8_0 ... Q6_K, MXFP4).
inline uint32_t quant_block_elems(DType d) { uint32_t e, b; dtype_block(d, &e, &b); return e; }
inline uint32_t quant_block_bytes(DType d) { uint32_t e, b; dtype_block(d, &e, &b); return b; }

// Decodes one block at p into block_elems doubles (scalar; the reference of every path).
void quant_decode_block(DType d, const uint8_t* p, double* out);

// Decodes n elements of block dtype d starting at the block boundary p (n need not be a
// whole number of blocks: the last block is cut) with the kernel set's fastest decoder;
// returns true if any value is NaN or +-Inf.
bool quant_decode_f64(const Kernels* k, DType d, const uint8_t* p, uint64_t n, double* out);

// Folds the statistics of n elements of block dtype d starting at the block boundary p into
// *acc (what accumulate_any does for block dtypes). Chunks of kBlock elements; the scalar
// kernel set decodes each chunk into an L1 buffer and reduces it with its float64 kernel;
// the AVX2 set sums the integer powers of each sub-block's q and scales them exactly (Q2_K:
// counts each of its four q values; quant_avx2.cc), else (non-finite scales, and the chunks a
// fast path's error bound refuses where the type has no exact path) decodes as the scalar set.
void quant_accumulate(const Kernels* k, DType d, const uint8_t* p, uint64_t n, Moments* acc);

// The per-ISA entry points (nullptr-returning stubs where an ISA is not compiled). Each
// returns false when it does not handle the dtype (the caller then takes the generic path).
// accumulate: n is a whole number of blocks, at most kBlock elements; lo_hint and hi_hint are
// the extremes already known (the accumulator's min and max, +-Inf at first): out->min and
// out->max are the chunk's own where they pass them, else +Inf / -Inf (so merging out into
// the accumulator gives the right extremes, and the blocks that cannot pass them are skipped).
bool quant_accumulate_avx2(DType d, const uint8_t* p, uint64_t n, double lo_hint, double hi_hint, Moments* out);
bool quant_decode_avx2(DType d, const uint8_t* p, uint64_t blocks, double* out, bool* bad);
// Whether quant_*_avx2 may be called on this CPU for kernel set k (the avx2 and avx512 sets).
bool quant_uses_avx2(const Kernels* k);

}  // namespace mother
