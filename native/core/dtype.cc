#include "dtype.h"

#include <limits>

namespace mother {

namespace {
struct DTypeInfo { DType d; const char* name; unsigned bits; bool stats; uint32_t block_elems = 0, block_bytes = 0; };
constexpr DTypeInfo kInfo[] = {
    {DType::BOOL, "BOOL", 8, false},       {DType::U8, "U8", 8, false},
    {DType::I8, "I8", 8, false},           {DType::I16, "I16", 16, false},
    {DType::U16, "U16", 16, false},        {DType::I32, "I32", 32, false},
    {DType::U32, "U32", 32, false},        {DType::I64, "I64", 64, false},
    {DType::U64, "U64", 64, false},        {DType::F16, "F16", 16, true},
    {DType::BF16, "BF16", 16, true},       {DType::F32, "F32", 32, true},
    {DType::F64, "F64", 64, true},         {DType::C64, "C64", 64, false},
    {DType::F8_E4M3, "F8_E4M3", 8, true},  {DType::F8_E5M2, "F8_E5M2", 8, true},
    {DType::F8_E8M0, "F8_E8M0", 8, true},  {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8, true},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8, true},
    {DType::F4, "F4", 4, false},           {DType::F6_E2M3, "F6_E2M3", 6, false},
    {DType::F6_E3M2, "F6_E3M2", 6, false},
    // GGUF block types: elements and bytes per block (ggml-common.h)
    {DType::Q8_0, "Q8_0", 0, true, 32, 34},      {DType::Q4_0, "Q4_0", 0, true, 32, 18},
    {DType::Q4_1, "Q4_1", 0, true, 32, 20},      {DType::Q5_0, "Q5_0", 0, true, 32, 22},
    {DType::Q5_1, "Q5_1", 0, true, 32, 24},      {DType::Q2_K, "Q2_K", 0, true, 256, 84},
    {DType::Q3_K, "Q3_K", 0, true, 256, 110},    {DType::Q4_K, "Q4_K", 0, true, 256, 144},
    {DType::Q5_K, "Q5_K", 0, true, 256, 176},    {DType::Q6_K, "Q6_K", 0, true, 256, 210},
    {DType::Q8_1, "Q8_1", 0, false, 32, 36},     {DType::Q8_K, "Q8_K", 0, false, 256, 292},
    {DType::IQ2_XXS, "IQ2_XXS", 0, false, 256, 66}, {DType::IQ2_XS, "IQ2_XS", 0, false, 256, 74},
    {DType::IQ3_XXS, "IQ3_XXS", 0, false, 256, 98}, {DType::IQ1_S, "IQ1_S", 0, false, 256, 50},
    {DType::IQ4_NL, "IQ4_NL", 0, false, 32, 18},    {DType::IQ3_S, "IQ3_S", 0, false, 256, 110},
    {DType::IQ2_S, "IQ2_S", 0, false, 256, 82},     {DType::IQ4_XS, "IQ4_XS", 0, false, 256, 136},
    {DType::IQ1_M, "IQ1_M", 0, false, 256, 56},     {DType::TQ1_0, "TQ1_0", 0, false, 256, 54},
    {DType::TQ2_0, "TQ2_0", 0, false, 256, 66},     {DType::MXFP4, "MXFP4", 0, true, 32, 17},
};
static_assert(sizeof(kInfo) / sizeof(kInfo[0]) == static_cast<size_t>(DType::COUNT), "dtype table");

// Generic minifloat decode: 1 sign bit, e exponent bits, m mantissa bits, bias.
double minifloat(uint8_t b, int e, int m, int bias) {
  int sign = (b >> (e + m)) & 1;
  int exp = (b >> m) & ((1 << e) - 1);
  int man = b & ((1 << m) - 1);
  double v = exp == 0 ? std::ldexp(static_cast<double>(man), 1 - bias - m)
                      : std::ldexp(static_cast<double>((1 << m) | man), exp - bias - m);
  return sign ? -v : v;
}
}  // namespace

bool dtype_from_name(const std::string& name, DType* out) {
  for (const auto& i : kInfo)
    if (i.block_elems == 0 && name == i.name) { *out = i.d; return true; }
  return false;
}
bool dtype_from_any_name(const std::string& name, DType* out) {
  for (const auto& i : kInfo)
    if (name == i.name) { *out = i.d; return true; }
  return false;
}
bool dtype_is_block(DType d) { return kInfo[static_cast<size_t>(d)].block_elems != 0; }
void dtype_block(DType d, uint32_t* elems, uint32_t* bytes) {
  const DTypeInfo& i = kInfo[static_cast<size_t>(d)];
  if (i.block_elems != 0) {
    *elems = i.block_elems;
    *bytes = i.block_bytes;
    return;
  }
  unsigned g = 8, b = i.bits;  // 8 / gcd(bits, 8) elements in a whole number of bytes
  while (b) { unsigned t = g % b; g = b; b = t; }
  *elems = 8 / g;
  *bytes = i.bits * *elems / 8;
}
const char* dtype_name(DType d) { return kInfo[static_cast<size_t>(d)].name; }
unsigned dtype_bits(DType d) { return kInfo[static_cast<size_t>(d)].bits; }
bool dtype_has_stats(DType d) { return kInfo[static_cast<size_t>(d)].stats; }

float f8_to_f32(DType d, uint8_t b) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  switch (d) {
    case DType::F8_E4M3:  // OCP E4M3FN: bias 7, no infinities, S.1111.111 is NaN, max 448
      if ((b & 0x7F) == 0x7F) return nan;
      return static_cast<float>(minifloat(b, 4, 3, 7));
    case DType::F8_E5M2:  // IEEE-like: bias 15, exponent 31 = inf/nan
      if ((b & 0x7C) == 0x7C) return (b & 0x03) ? nan : ((b & 0x80) ? -inf : inf);
      return static_cast<float>(minifloat(b, 5, 2, 15));
    case DType::F8_E4M3FNUZ:  // bias 8, no inf, no -0: 0x80 is NaN
      if (b == 0x80) return nan;
      return static_cast<float>(minifloat(b, 4, 3, 8));
    case DType::F8_E5M2FNUZ:  // bias 16, no inf, no -0: 0x80 is NaN
      if (b == 0x80) return nan;
      return static_cast<float>(minifloat(b, 5, 2, 16));
    case DType::F8_E8M0:  // unsigned power of two 2^(b-127), 0xFF is NaN
      if (b == 0xFF) return nan;
      return static_cast<float>(std::ldexp(1.0, static_cast<int>(b) - 127));
    default:
      return nan;
  }
}

}  // namespace mother
