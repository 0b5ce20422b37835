#include "row_hash.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/error.h"
#include "decode.h"

namespace mother {

uint16_t f32_to_bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN, canonical
  // nearest even: add 0x7fff plus the lowest kept bit, truncate (overflows to Inf as it should)
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

uint16_t f32_to_f16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return 0x7e00;                              // NaN, canonical
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00);  // >= 65520: Inf (nearest even)
  if (a >= 0x38800000u) {
    // normal half: exponent rebias 127 -> 15, 23 -> 10 mantissa bits, nearest even
    const uint32_t r = a - 0x38000000u;  // (e - 112) << 23 | m
    return static_cast<uint16_t>(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
  }
  if (a < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): zero
  // subnormal half: value = m * 2^-24, m = round(a_value * 2^24), nearest even
  const uint32_t e = a >> 23;                      // 102..112
  const uint32_t mant = (a & 0x7fffffu) | 0x800000u;  // 24 bits, value mant * 2^(e - 150)
  const uint32_t shift = 126 - e;                   // to units of 2^-24: 14..24
  const uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
  const uint32_t m = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
  return static_cast<uint16_t>(sign | m);  // m == 0x400 carries into the smallest normal, as it should
}

namespace {

inline uint64_t mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ull;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z;
}

// Row hash: h = mix(h + position-salted value), in element order.
struct Hasher {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  void add(uint64_t bits, uint64_t pos) { h = mix64(h ^ (bits + 0x632be59bd9b4e019ull * (pos + 1))); }
};

}  // namespace

RowHashes row_hashes(const Kernels* k, const TensorView& v, const int32_t* cancel) {
  RowHashes out;
  if (!v.has_stats() || v.count == 0) return out;
  // decode_f64 takes ranges on multiples of view_align: a row that is not one (a block type whose
  // blocks straddle rows) has no row hashes; memory stays one row
  const uint64_t row_elems = view_row_elems(v);
  if (row_elems == 0 || row_elems % view_align(v) != 0) return out;
  out.row_elems = row_elems;
  out.rows = v.count / row_elems;
  out.f32.resize(out.rows);
  out.f16.resize(out.rows);
  out.bf16.resize(out.rows);
  std::vector<double> buf(row_elems);
  for (uint64_t r = 0; r < out.rows; ++r) {
    if (cancel && (r & 255) == 0 && *cancel) throw Error(ErrorCode::Cancelled, "", v.name, "row hashes cancelled");
    const double* x = buf.data();
    decode_f64(k, v, r * out.row_elems, out.row_elems, buf.data());
    Hasher a, b, c;
    for (uint64_t i = 0; i < out.row_elems; ++i) {
      const float f = static_cast<float>(x[i]);
      uint32_t u;
      std::memcpy(&u, &f, 4);
      if (std::isnan(f)) u = 0x7fc00000u;
      a.add(u, i);
      b.add(f32_to_f16_bits(f), i);
      c.add(f32_to_bf16_bits(f), i);
    }
    out.f32[r] = a.h;
    out.f16[r] = b.h;
    out.bf16[r] = c.h;
  }
  return out;
}

}  // namespace mother
