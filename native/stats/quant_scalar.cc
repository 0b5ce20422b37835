// Scalar decoding of the GGUF block types (the reference every other path is tested
// against, with an independent numpy decoder in test/helpers/gguf_reference.py), and the
// generic statistics of block tensors: each chunk of kBlock elements decoded into an L1
// buffer and reduced by the kernel set's float64 kernel.
#include <cmath>
#include <cstring>

#include "kernels.h"
#include "quant.h"

namespace mother {

namespace {

inline double f16_at(const uint8_t* p) { return f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

// Q4_K / Q5_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes: j < 4
// in the low 6 bits of bytes j and j + 4; j >= 4 in the nibbles of byte j + 4, with their top
// 2 bits in the top 2 bits of bytes j - 4 (scale) and j (min).
inline void scale_min_k4(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q3_K: the 6-bit scale of sub-block j (0..15): low 4 bits in the nibbles of bytes 0..7
// (j < 8: low nibble of byte j, else high nibble of byte j - 8), high 2 bits in bytes 8..11
// (bits 2 (j / 4) of byte 8 + j % 4).
inline int scale_q3k(int j, const uint8_t* s) {
  const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

void dec_q8_0(const uint8_t* p, double* y) {
  const double d = f16_at(p);
  for (int i = 0; i < 32; ++i) y[i] = d * static_cast<int8_t>(p[2 + i]);
}

void dec_q4_0(const uint8_t* p, double* y) {
  const double d = f16_at(p);
  for (int i = 0; i < 16; ++i) {
    y[i] = d * ((p[2 + i] & 0xF) - 8);
    y[i + 16] = d * ((p[2 + i] >> 4) - 8);
  }
}

void dec_q4_1(const uint8_t* p, double* y) {
  const double d = f16_at(p), m = f16_at(p + 2);
  for (int i = 0; i < 16; ++i) {
    y[i] = d * (p[4 + i] & 0xF) + m;
    y[i + 16] = d * (p[4 + i] >> 4) + m;
  }
}

inline uint32_t u32_at(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

void dec_q5_0(const uint8_t* p, double* y) {
  const double d = f16_at(p);
  const uint32_t qh = u32_at(p + 2);
  for (int i = 0; i < 16; ++i) {
    const int q0 = (p[6 + i] & 0xF) | static_cast<int>(((qh >> i) & 1) << 4);
    const int q1 = (p[6 + i] >> 4) | static_cast<int>(((qh >> (i + 16)) & 1) << 4);
    y[i] = d * (q0 - 16);
    y[i + 16] = d * (q1 - 16);
  }
}

void dec_q5_1(const uint8_t* p, double* y) {
  const double d = f16_at(p), m = f16_at(p + 2);
  const uint32_t qh = u32_at(p + 4);
  for (int i = 0; i < 16; ++i) {
    const int q0 = (p[8 + i] & 0xF) | static_cast<int>(((qh >> i) & 1) << 4);
    const int q1 = (p[8 + i] >> 4) | static_cast<int>(((qh >> (i + 16)) & 1) << 4);
    y[i] = d * q0 + m;
    y[i + 16] = d * q1 + m;
  }
}

// Q2_K and Q3_K share the order of their 2-bit quants: element e = 128 h + 32 g + l (h 0..1,
// g 0..3, l 0..31) is bits 2g..2g+1 of qs[32 h + l]; sub-block e / 16.
void dec_q2_k(const uint8_t* p, double* y) {
  const uint8_t* sc = p;
  const uint8_t* qs = p + 16;
  const double d = f16_at(p + 80), dmin = f16_at(p + 82);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, g = (e % 128) / 32, l = e % 32;
    const int q = (qs[32 * h + l] >> (2 * g)) & 3;
    const uint8_t s = sc[e / 16];
    y[e] = (d * (s & 0xF)) * q - dmin * (s >> 4);
  }
}

// Q3_K: the high bit of element e = 128 h + 32 g + l is bit 4 h + g of hmask[l].
void dec_q3_k(const uint8_t* p, double* y) {
  const uint8_t* hm = p;
  const uint8_t* qs = p + 32;
  const uint8_t* sc = p + 96;
  const double d = f16_at(p + 108);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, g = (e % 128) / 32, l = e % 32;
    const int low = (qs[32 * h + l] >> (2 * g)) & 3;
    const int q = low - (((hm[l] >> (4 * h + g)) & 1) ? 0 : 4);
    y[e] = (d * scale_q3k(e / 16, sc)) * q;
  }
}

// Q4_K / Q5_K: element e = 64 j + 32 t + l (j 0..3, t 0..1, l 0..31) is the low (t = 0) or high
// (t = 1) nibble of qs[32 j + l]; Q5_K's 5th bit is bit 2 j + t of qh[l]; sub-block e / 32.
void dec_q4_k(const uint8_t* p, double* y) {
  const double d = f16_at(p), dmin = f16_at(p + 2);
  const uint8_t* sc = p + 4;
  const uint8_t* qs = p + 16;
  for (int s = 0; s < 8; ++s) {
    int scv, mv;
    scale_min_k4(s, sc, &scv, &mv);
    const double a = d * scv, b = dmin * mv;
    const int j = s / 2, t = s % 2;
    for (int l = 0; l < 32; ++l) {
      const int q = t ? (qs[32 * j + l] >> 4) : (qs[32 * j + l] & 0xF);
      y[32 * s + l] = a * q - b;
    }
  }
}

void dec_q5_k(const uint8_t* p, double* y) {
  const double d = f16_at(p), dmin = f16_at(p + 2);
  const uint8_t* sc = p + 4;
  const uint8_t* qh = p + 16;
  const uint8_t* qs = p + 48;
  for (int s = 0; s < 8; ++s) {
    int scv, mv;
    scale_min_k4(s, sc, &scv, &mv);
    const double a = d * scv, b = dmin * mv;
    const int j = s / 2, t = s % 2;
    for (int l = 0; l < 32; ++l) {
      const int lo = t ? (qs[32 * j + l] >> 4) : (qs[32 * j + l] & 0xF);
      const int q = lo | (((qh[l] >> (2 * j + t)) & 1) << 4);
      y[32 * s + l] = a * q - b;
    }
  }
}

// Q6_K: element e = 128 h + 32 g + l: low 4 bits from ql[64 h + 32 (g & 1) + l] (low nibble
// for g < 2, high for g >= 2), high 2 bits from bits 2g..2g+1 of qh[32 h + l]; sub-block e / 16.
void dec_q6_k(const uint8_t* p, double* y) {
  const uint8_t* ql = p;
  const uint8_t* qh = p + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192);
  const double d = f16_at(p + 208);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, g = (e % 128) / 32, l = e % 32;
    const uint8_t lb = ql[64 * h + 32 * (g & 1) + l];
    const int lo = g < 2 ? (lb & 0xF) : (lb >> 4);
    const int hi = (qh[32 * h + l] >> (2 * g)) & 3;
    y[e] = (d * sc[e / 16]) * ((lo | (hi << 4)) - 32);
  }
}

// MXFP4: the E2M1 values doubled (ggml's kvalues_mxfp4), times the halved E8M0 scale 2^(e - 128)
// (exact in float64 for every e: 2^-128 .. 2^127).
void dec_mxfp4(const uint8_t* p, double* y) {
  static const int kValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  const double d = std::ldexp(1.0, static_cast<int>(p[0]) - 128);
  for (int i = 0; i < 16; ++i) {
    y[i] = d * kValues[p[1 + i] & 0xF];
    y[i + 16] = d * kValues[p[1 + i] >> 4];
  }
}

// True if any of the n doubles is NaN or +-Inf ((x - x) is NaN exactly for those).
bool any_nonfinite(const double* x, uint64_t n) {
  double q = 0;
  for (uint64_t i = 0; i < n; ++i) q += x[i] - x[i];
  return q != q;
}

}  // namespace

void quant_decode_block(DType d, const uint8_t* p, double* out) {
  switch (d) {
    case DType::Q8_0: dec_q8_0(p, out); break;
    case DType::Q4_0: dec_q4_0(p, out); break;
    case DType::Q4_1: dec_q4_1(p, out); break;
    case DType::Q5_0: dec_q5_0(p, out); break;
    case DType::Q5_1: dec_q5_1(p, out); break;
    case DType::Q2_K: dec_q2_k(p, out); break;
    case DType::Q3_K: dec_q3_k(p, out); break;
    case DType::Q4_K: dec_q4_k(p, out); break;
    case DType::Q5_K: dec_q5_k(p, out); break;
    case DType::Q6_K: dec_q6_k(p, out); break;
    case DType::MXFP4: dec_mxfp4(p, out); break;
    default: {
      uint32_t e, b;
      dtype_block(d, &e, &b);
      for (uint32_t i = 0; i < e; ++i) out[i] = NAN;  // no decoder: never asked (no statistics)
    }
  }
}

bool quant_decode_f64(const Kernels* k, DType d, const uint8_t* p, uint64_t n, double* out) {
  const uint32_t be = quant_block_elems(d), bb = quant_block_bytes(d);
  const uint64_t whole = n / be;
  bool bad = false;
  uint64_t done = 0;
  if (whole > 0 && quant_uses_avx2(k) && quant_decode_avx2(d, p, whole, out, &bad)) {
    done = whole;
  } else {
    for (uint64_t b = 0; b < whole; ++b) quant_decode_block(d, p + b * bb, out + b * be);
    bad = any_nonfinite(out, whole * be);
    done = whole;
  }
  if (n > done * be) {  // a cut last block
    double tmp[256];
    quant_decode_block(d, p + done * bb, tmp);
    const uint64_t rest = n - done * be;
    std::memcpy(out + done * be, tmp, rest * sizeof(double));
    bad = any_nonfinite(out + done * be, rest) || bad;
  }
  return bad;
}

void quant_accumulate(const Kernels* k, DType d, const uint8_t* p, uint64_t n, Moments* acc) {
  const uint32_t be = quant_block_elems(d), bb = quant_block_bytes(d);
  const bool fast = quant_uses_avx2(k);
  alignas(64) double buf[kBlock];
  for (uint64_t i = 0; i < n; i += kBlock) {  // kBlock is a whole number of 32- and 256-blocks
    const uint64_t len = n - i < kBlock ? n - i : kBlock;
    const uint8_t* q = p + i / be * bb;
    if (fast && len % be == 0) {
      Moments m;
      if (quant_accumulate_avx2(d, q, len, acc->min, acc->max, &m)) {
        merge(*acc, m);
        continue;
      }
    }
    quant_decode_f64(k, d, q, len, buf);
    k->accumulate(DType::F64, reinterpret_cast<const uint8_t*>(buf), len, acc);
  }
}

}  // namespace mother
