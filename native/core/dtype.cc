#include "dtype.h"

#include <limits>

namespace mother {

namespace {
struct DTypeInfo { DType d; const char* name; unsigned bits; bool stats; };
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
    if (name == i.name) { *out = i.d; return true; }
  return false;
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
