// Storage dtypes: the safetensors dtypes, then the block types of GGUF (ggml): names, sizes,
// and exact scalar decoders for the float formats.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

namespace mother {

enum class DType : uint8_t {
  BOOL, U8, I8, I16, U16, I32, U32, I64, U64,
  F16, BF16, F32, F64, C64,
  F8_E4M3, F8_E5M2, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
  F4, F6_E2M3, F6_E3M2,
  // GGUF (ggml) block types: elements come in blocks that carry their own scales
  // (native/stats/quant.h decodes them). Not safetensors dtypes: dtype_from_name does not
  // return them. The first ten have statistics; the others are listed without.
  Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
  Q8_1, Q8_K, IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, IQ1_M, TQ1_0, TQ2_0, MXFP4,
  COUNT
};

// Returns false if the name is not a safetensors dtype.
bool dtype_from_name(const std::string& name, DType* out);
// Any dtype name, the GGUF block types included ("Q4_K").
bool dtype_from_any_name(const std::string& name, DType* out);
const char* dtype_name(DType d);
// Size of one element in bits (F4: 4, F6: 6, C64: 64); 0 for the block types.
unsigned dtype_bits(DType d);
// Float formats whose statistics we compute.
bool dtype_has_stats(DType d);
// A GGUF block type (Q8_0 ... MXFP4).
bool dtype_is_block(DType d);
// The storage unit of a dtype: `elems` elements in `bytes` bytes (F32: 1 in 4, F4: 2 in 1,
// Q4_K: 256 in 144).
void dtype_block(DType d, uint32_t* elems, uint32_t* bytes);

// ---- exact decoders (bit patterns -> float/double), used by the scalar kernels and LUTs ----

inline float f32_from_bits(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }

inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t man = h & 0x3FF;
  if (exp == 0x1F) return f32_from_bits(sign | 0x7F800000u | (man << 13));  // inf / nan
  if (exp == 0) {
    if (man == 0) return f32_from_bits(sign);
    // subnormal: man * 2^-24, exactly representable in float
    float v = static_cast<float>(man) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

// 8-bit float formats. All values are exactly representable in float.
float f8_to_f32(DType d, uint8_t b);

}  // namespace mother
