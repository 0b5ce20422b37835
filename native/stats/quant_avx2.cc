// AVX2 statistics and decoding of the GGUF block types: statistics of every type without
// decoding, and decoding of every type (for the pairwise passes).
//
// Two ways to the statistics without decoding. Inside a (sub-)block every element is
// y = a q + b with one affine map, so the block's moments follow from the integer power sums
// of its q, which the byte lanes give (sum u, u^2, u^3, u^4, u = q - z, z the type's zero
// point) with maddubs/madd, reduced over 8 blocks at once by horizontal-add trees.
//  - The fast paths (sym_chunk, q6_k_fast, offset_fast) scale those sums into the
//    chunk's power sums about zero and expand them about the chunk's mean, where a bound says
//    the expansion cannot cancel (see each section); min and max from the few blocks whose
//    scale-derived bound passes the extremes so far.
//  - The exact paths (acc_q8_0, acc_q4_0, acc_q4_k), for the chunks the fast ones refuse: the
//    central sums of u over a block, n^k C_k = polynomial in n and the power sums, are integers
//    below 2^53 for every type here, hence exact in float64; scaled by a^k they are the block's
//    central moments, shifted to the chunk's mean and summed (all terms of the m2 sum
//    non-negative); min and max of q by a byte butterfly over 8 blocks; sum |y| from sum |u|
//    (symmetric types) or from the count and sum of the q above the sign change of a q + b.
// Blocks with a non-finite scale make the chunk fall back to decoding (quant_scalar.cc), which
// counts the NaN/Inf.
#include <cmath>
#include <cstring>

#include "kernels.h"
#include "quant.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define MOTHER_ISA_TARGET "avx2,fma,f16c"
#include "isa_begin.h"

namespace mother {
namespace {

constexpr int kMaxSubs = 64;  // sub-blocks of one kBlock chunk (64 x 32 or 8 x 8 x 32)

// What the integer pass leaves per sub-block of n elements: y = a q + b, the power sums of
// u = q - z, the range of q and sum |y|.
struct Subs {
  double a[kMaxSubs], b[kMaxSubs];
  double u1[kMaxSubs], u2[kMaxSubs], u3[kMaxSubs], u4[kMaxSubs];
  double qmin[kMaxSubs], qmax[kMaxSubs];
  double sabs[kMaxSubs];
};

ISA_FN inline double hsum4(__m256d v) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// The chunk's moments from its sub-blocks (count of them, n elements each, zero point z), four
// sub-blocks per step. Entries [count, round up to 4) are padding and contribute nothing.
ISA_FN Moments finish(Subs& s, int count, double n, double z) {
  const int padded = (count + 3) & ~3;
  for (int i = count; i < padded; ++i) {  // weightless sub-blocks: a = b = 0, sums 0
    s.a[i] = s.b[i] = s.u1[i] = s.u2[i] = s.u3[i] = s.u4[i] = s.sabs[i] = 0;
    s.qmin[i] = s.qmax[i] = 0;
  }
  const double N = n * count;
  const __m256d vn = _mm256_set1_pd(n), vz = _mm256_set1_pd(z), inv_n = _mm256_set1_pd(1 / n);
  __m256d tot = _mm256_setzero_pd();
  for (int i = 0; i < padded; i += 4) {
    const __m256d mu = _mm256_fmadd_pd(_mm256_loadu_pd(s.u1 + i), inv_n, vz);  // z + U1 / n, exact
    tot = _mm256_fmadd_pd(vn, _mm256_fmadd_pd(_mm256_loadu_pd(s.a + i), mu, _mm256_loadu_pd(s.b + i)), tot);
  }
  const double M = hsum4(tot) / N;
  const __m256d vM = _mm256_set1_pd(M);
  const __m256d n2 = _mm256_set1_pd(n * n), n3 = _mm256_set1_pd(n * n * n);
  const __m256d inv_n2 = _mm256_set1_pd(1 / (n * n)), inv_n3 = _mm256_set1_pd(1 / (n * n * n));
  const __m256d three = _mm256_set1_pd(3), two = _mm256_set1_pd(2), four = _mm256_set1_pd(4), six = _mm256_set1_pd(6);
  const __m256d n3x = _mm256_set1_pd(3 * n), n6x = _mm256_set1_pd(6 * n), n24 = _mm256_set1_pd(4 * n * n);
  __m256d sd = _mm256_setzero_pd(), m2 = sd, m3 = sd, m4 = sd, sabs = sd;
  __m256d vmin = _mm256_set1_pd(INFINITY), vmax = _mm256_set1_pd(-INFINITY);
  const __m256d lane = _mm256_set_pd(3, 2, 1, 0), vcount = _mm256_set1_pd(count);
  for (int i = 0; i < padded; i += 4) {
    // the padding weighs nothing (its delta, -M, must not count)
    const __m256d w = _mm256_and_pd(vn, _mm256_cmp_pd(_mm256_add_pd(lane, _mm256_set1_pd(i)), vcount, _CMP_LT_OQ));
    const __m256d a = _mm256_loadu_pd(s.a + i), b = _mm256_loadu_pd(s.b + i);
    const __m256d U1 = _mm256_loadu_pd(s.u1 + i), U2 = _mm256_loadu_pd(s.u2 + i);
    const __m256d U3 = _mm256_loadu_pd(s.u3 + i), U4 = _mm256_loadu_pd(s.u4 + i);
    // exact central sums of u: integer polynomials below 2^53 (every product and partial sum
    // is an integer below 2^53, so fused or not they are exact), over powers of two
    // n C2 = n U2 - U1^2; n^2 C3 = n^2 U3 - U1 (3 n U2 - 2 U1^2);
    // n^3 C4 = n^3 U4 - U1 (4 n^2 U3 - U1 (6 n U2 - 3 U1^2))
    const __m256d U11 = _mm256_mul_pd(U1, U1);
    const __m256d c2 = _mm256_mul_pd(_mm256_fmsub_pd(vn, U2, U11), inv_n);
    const __m256d t3 = _mm256_fmsub_pd(n3x, U2, _mm256_mul_pd(two, U11));            // 3 n U2 - 2 U1^2
    const __m256d c3 = _mm256_mul_pd(_mm256_fnmadd_pd(U1, t3, _mm256_mul_pd(n2, U3)), inv_n2);
    const __m256d t4a = _mm256_fmsub_pd(n6x, U2, _mm256_mul_pd(three, U11));          // 6 n U2 - 3 U1^2
    const __m256d t4 = _mm256_fnmadd_pd(U1, t4a, _mm256_mul_pd(n24, U3));              // 4 n^2 U3 - U1 (...)
    const __m256d c4 = _mm256_mul_pd(_mm256_fnmadd_pd(U1, t4, _mm256_mul_pd(n3, U4)), inv_n3);
    const __m256d mu = _mm256_fmadd_pd(U1, inv_n, vz);
    const __m256d delta = _mm256_fmadd_pd(a, mu, _mm256_sub_pd(b, vM));  // a mu exact; b - M first
    const __m256d a2 = _mm256_mul_pd(a, a);
    const __m256d s2 = _mm256_mul_pd(a2, c2), s3 = _mm256_mul_pd(_mm256_mul_pd(a2, a), c3), s4 = _mm256_mul_pd(_mm256_mul_pd(a2, a2), c4);
    const __m256d d2 = _mm256_mul_pd(delta, delta);
    const __m256d nd = _mm256_mul_pd(w, delta), nd2 = _mm256_mul_pd(nd, delta);
    sd = _mm256_add_pd(sd, nd);
    m2 = _mm256_add_pd(m2, _mm256_add_pd(s2, nd2));
    m3 = _mm256_add_pd(m3, _mm256_add_pd(_mm256_fmadd_pd(_mm256_mul_pd(three, delta), s2, s3), _mm256_mul_pd(nd2, delta)));
    m4 = _mm256_add_pd(m4, _mm256_add_pd(_mm256_fmadd_pd(_mm256_mul_pd(four, delta), s3, s4),
                                         _mm256_fmadd_pd(_mm256_mul_pd(six, d2), s2, _mm256_mul_pd(nd2, d2))));
    sabs = _mm256_add_pd(sabs, _mm256_loadu_pd(s.sabs + i));
    // a q exact: the fused a q + b rounds once, as the decoders do
    const __m256d lo = _mm256_fmadd_pd(a, _mm256_loadu_pd(s.qmin + i), b), hi = _mm256_fmadd_pd(a, _mm256_loadu_pd(s.qmax + i), b);
    vmin = _mm256_min_pd(vmin, _mm256_min_pd(lo, hi));
    vmax = _mm256_max_pd(vmax, _mm256_max_pd(lo, hi));
  }
  // the padding's lo = hi = 0 must not count: take min/max over the real sub-blocks only
  double lmin[4], lmax[4];
  _mm256_storeu_pd(lmin, vmin);
  _mm256_storeu_pd(lmax, vmax);
  double mn = INFINITY, mx = -INFINITY;
  if (padded == count) {
    for (int k = 0; k < 4; ++k) { mn = lmin[k] < mn ? lmin[k] : mn; mx = lmax[k] > mx ? lmax[k] : mx; }
  } else {
    for (int i = 0; i < count; ++i) {
      const double lo = s.a[i] * s.qmin[i] + s.b[i], hi = s.a[i] * s.qmax[i] + s.b[i];
      mn = std::fmin(mn, std::fmin(lo, hi));
      mx = std::fmax(mx, std::fmax(lo, hi));
    }
  }
  return block_moments(N, M, hsum4(sd), hsum4(m2), hsum4(m3), hsum4(m4), hsum4(sabs), mn, mx);
}

// ---- horizontal reductions over 8 vectors ---------------------------------------------------

// Sums of the 16 int16 lanes of each of v[0..7], as 8 int16 (no overflow: callers' sums fit).
ISA_FN inline __m128i hsum8_i16(const __m256i v[8]) {
  const __m256i h01 = _mm256_hadd_epi16(v[0], v[1]), h23 = _mm256_hadd_epi16(v[2], v[3]);
  const __m256i h45 = _mm256_hadd_epi16(v[4], v[5]), h67 = _mm256_hadd_epi16(v[6], v[7]);
  const __m256i h = _mm256_hadd_epi16(_mm256_hadd_epi16(h01, h23), _mm256_hadd_epi16(h45, h67));
  return _mm_add_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}
// Sums of the 8 int32 lanes of each of v[0..7]: lo gets v[0..3], hi v[4..7].
ISA_FN inline void hsum8_i32(const __m256i v[8], __m128i* lo, __m128i* hi) {
  const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  *lo = _mm_add_epi32(_mm256_castsi256_si128(h0), _mm256_extracti128_si256(h0, 1));
  *hi = _mm_add_epi32(_mm256_castsi256_si128(h1), _mm256_extracti128_si256(h1, 1));
}
ISA_FN inline void store_i16_as_f64(__m128i s, double* out) {
  const __m256i w = _mm256_cvtepi16_epi32(s);
  _mm256_storeu_pd(out, _mm256_cvtepi32_pd(_mm256_castsi256_si128(w)));
  _mm256_storeu_pd(out + 4, _mm256_cvtepi32_pd(_mm256_extracti128_si256(w, 1)));
}
ISA_FN inline void store_i32x8_as_f64(__m128i lo, __m128i hi, double* out) {
  _mm256_storeu_pd(out, _mm256_cvtepi32_pd(lo));
  _mm256_storeu_pd(out + 4, _mm256_cvtepi32_pd(hi));
}

// Min and max of the bytes of each of 4 registers whose 128-bit lanes are separate blocks
// (8 blocks): results in the order lane 0 of r[0..3], then lane 1 of r[0..3]. Signed when
// kSigned (int8 quants), else unsigned.
template <bool kSigned>
ISA_FN inline __m256i bmin(__m256i a, __m256i b) { return kSigned ? _mm256_min_epi8(a, b) : _mm256_min_epu8(a, b); }
template <bool kSigned>
ISA_FN inline __m256i bmax(__m256i a, __m256i b) { return kSigned ? _mm256_max_epi8(a, b) : _mm256_max_epu8(a, b); }

template <bool kSigned, bool kMax>
ISA_FN inline __m256i bop(__m256i a, __m256i b) { return kMax ? bmax<kSigned>(a, b) : bmin<kSigned>(a, b); }

template <bool kSigned, bool kMax>
ISA_FN inline void lane_extreme8(const __m256i r[4], double out[8]) {
  const __m256i a = bop<kSigned, kMax>(_mm256_unpacklo_epi8(r[0], r[1]), _mm256_unpackhi_epi8(r[0], r[1]));
  const __m256i b = bop<kSigned, kMax>(_mm256_unpacklo_epi8(r[2], r[3]), _mm256_unpackhi_epi8(r[2], r[3]));
  __m256i c = bop<kSigned, kMax>(_mm256_unpacklo_epi16(a, b), _mm256_unpackhi_epi16(a, b));
  c = bop<kSigned, kMax>(c, _mm256_srli_si256(c, 8));
  c = bop<kSigned, kMax>(c, _mm256_srli_si256(c, 4));
  const uint32_t l0 = static_cast<uint32_t>(_mm256_extract_epi32(c, 0)), l1 = static_cast<uint32_t>(_mm256_extract_epi32(c, 4));
  for (int k = 0; k < 4; ++k) {
    const uint8_t b0 = static_cast<uint8_t>(l0 >> (8 * k)), b1 = static_cast<uint8_t>(l1 >> (8 * k));
    out[k] = kSigned ? static_cast<int8_t>(b0) : b0;
    out[4 + k] = kSigned ? static_cast<int8_t>(b1) : b1;
  }
}

// Folds 8 registers of one block each (32 bytes) to 4 registers of two blocks each (lane k of
// register j = block 2j + k after the fold: min/max of its two halves).
template <bool kSigned, bool kMax>
ISA_FN inline void fold8(const __m256i v[8], __m256i r[4]) {
  for (int j = 0; j < 4; ++j) {
    const __m256i lo = _mm256_permute2x128_si256(v[2 * j], v[2 * j + 1], 0x20);
    const __m256i hi = _mm256_permute2x128_si256(v[2 * j], v[2 * j + 1], 0x31);
    r[j] = bop<kSigned, kMax>(lo, hi);
  }
}

// Min/max of each of 8 one-block registers, in block order.
template <bool kSigned>
ISA_FN inline void minmax8(const __m256i v[8], double* qmin, double* qmax) {
  __m256i r[4];
  double t[8];
  fold8<kSigned, false>(v, r);
  lane_extreme8<kSigned, false>(r, t);
  // lane 0 of r[j] is block 2j, lane 1 block 2j + 1: t = blocks 0, 2, 4, 6, 1, 3, 5, 7
  for (int k = 0; k < 4; ++k) { qmin[2 * k] = t[k]; qmin[2 * k + 1] = t[4 + k]; }
  fold8<kSigned, true>(v, r);
  lane_extreme8<kSigned, true>(r, t);
  for (int k = 0; k < 4; ++k) { qmax[2 * k] = t[k]; qmax[2 * k + 1] = t[4 + k]; }
}

ISA_FN inline double f16_at(const uint8_t* p) { return f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

// ---- Q8_0 -----------------------------------------------------------------------------------

// 8 blocks at p (34 bytes each) into s[base .. base + 8).
ISA_FN void q8_0_int8(const uint8_t* p, Subs& s, int base) {
  const __m256i ones8 = _mm256_set1_epi8(1);
  __m256i v[8], c1[8], ca[8], c2[8], c3[8];
  __m256d c4[8];
  for (int k = 0; k < 8; ++k) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 34 * k + 2));
    v[k] = x;
    c1[k] = _mm256_maddubs_epi16(ones8, x);                 // pairs of q
    ca[k] = _mm256_maddubs_epi16(_mm256_abs_epi8(x), ones8);  // pairs of |q| (|-128| = 128 as u8)
    const __m256i wl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x));
    const __m256i wh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(x, 1));
    const __m256i sl = _mm256_mullo_epi16(wl, wl), sh = _mm256_mullo_epi16(wh, wh);  // q^2 <= 16384
    c2[k] = _mm256_add_epi32(_mm256_madd_epi16(wl, wl), _mm256_madd_epi16(wh, wh));
    c3[k] = _mm256_add_epi32(_mm256_madd_epi16(sl, wl), _mm256_madd_epi16(sh, wh));
    // q^4: pairs <= 2^29, lanes (4 elements) <= 2^30; a block's sum may pass 2^31: to double
    const __m256i f = _mm256_add_epi32(_mm256_madd_epi16(sl, sl), _mm256_madd_epi16(sh, sh));
    c4[k] = _mm256_add_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(f)), _mm256_cvtepi32_pd(_mm256_extracti128_si256(f, 1)));
  }
  store_i16_as_f64(hsum8_i16(c1), s.u1 + base);
  double abs_sum[8];
  store_i16_as_f64(hsum8_i16(ca), abs_sum);
  __m128i lo, hi;
  hsum8_i32(c2, &lo, &hi);
  store_i32x8_as_f64(lo, hi, s.u2 + base);
  hsum8_i32(c3, &lo, &hi);
  store_i32x8_as_f64(lo, hi, s.u3 + base);
  for (int k = 0; k < 8; k += 4) {
    const __m256d t0 = _mm256_hadd_pd(c4[k], c4[k + 1]), t1 = _mm256_hadd_pd(c4[k + 2], c4[k + 3]);
    const __m256d r = _mm256_add_pd(_mm256_permute2f128_pd(t0, t1, 0x20), _mm256_permute2f128_pd(t0, t1, 0x31));
    _mm256_storeu_pd(s.u4 + base + k, r);
  }
  minmax8<true>(v, s.qmin + base, s.qmax + base);
  for (int k = 0; k < 8; ++k) s.sabs[base + k] = std::fabs(s.a[base + k]) * abs_sum[k];
}

ISA_FN bool acc_q8_0(const uint8_t* p, uint64_t n, Moments* out) {
  const int blocks = static_cast<int>(n / 32);
  Subs s;
  for (int i = 0; i < blocks; ++i) {
    const double d = f16_at(p + 34 * i);
    if (!std::isfinite(d)) return false;
    s.a[i] = d;
    s.b[i] = 0;
  }
  int i = 0;
  for (; i + 8 <= blocks; i += 8) q8_0_int8(p + 34 * i, s, i);
  if (i < blocks) {  // a short tail: pad with copies of the last block, counted out below
    alignas(32) uint8_t tmp[8 * 34];
    for (int k = 0; k < 8; ++k) std::memcpy(tmp + 34 * k, p + 34 * (i + (k < blocks - i ? k : blocks - i - 1)), 34);
    Subs t;
    for (int k = 0; k < 8; ++k) t.a[k] = s.a[i + (k < blocks - i ? k : 0)];
    q8_0_int8(tmp, t, 0);
    for (int k = 0; i + k < blocks; ++k) {
      s.u1[i + k] = t.u1[k]; s.u2[i + k] = t.u2[k]; s.u3[i + k] = t.u3[k]; s.u4[i + k] = t.u4[k];
      s.qmin[i + k] = t.qmin[k]; s.qmax[i + k] = t.qmax[k]; s.sabs[i + k] = t.sabs[k];
    }
  }
  *out = finish(s, blocks, 32, 0);
  return true;
}

// ---- Q4_0 -----------------------------------------------------------------------------------

// Table lookups on nibbles (the same table in both 128-bit lanes).
ISA_FN inline __m256i table16(const int8_t t[16]) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t));
  return _mm256_broadcastsi128_si256(x);
}

alignas(16) const int8_t kU2Tab[16] = {64, 49, 36, 25, 16, 9, 4, 1, 0, 1, 4, 9, 16, 25, 36, 49};  // (q - 8)^2
alignas(16) const int8_t kAbsTab[16] = {8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7};          // |q - 8|

// Per-register sums over 32 nibble quants v (0..15) about z = 8: pairs of u, u^2, u^3
// (int16), u^4 (int16 pairs, <= 8192), |u|.
struct NibbleSums { __m256i s1, s2, s3, s4, sa; };
ISA_FN inline NibbleSums nibble_sums(__m256i v, __m256i tu2, __m256i tabs) {
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i u = _mm256_sub_epi8(v, _mm256_set1_epi8(8));
  const __m256i u2 = _mm256_shuffle_epi8(tu2, v);
  NibbleSums r;
  r.s1 = _mm256_maddubs_epi16(ones8, u);
  r.s2 = _mm256_maddubs_epi16(u2, ones8);
  r.s3 = _mm256_maddubs_epi16(u2, u);
  r.s4 = _mm256_maddubs_epi16(u2, u2);
  r.sa = _mm256_maddubs_epi16(_mm256_shuffle_epi8(tabs, v), ones8);
  return r;
}

// Sums of each 128-bit lane of 4 registers whose lanes are separate blocks: out[2 j + k] =
// lane k of register j (int16 lanes, then int32 lanes).
ISA_FN inline void tree16(const __m256i r[4], double* out) {
  const __m256i h = _mm256_hadd_epi16(_mm256_hadd_epi16(r[0], r[1]), _mm256_hadd_epi16(r[2], r[3]));
  const __m256i g = _mm256_hadd_epi16(h, h);  // per lane: words 0..3 = registers 0..3
  alignas(32) int16_t w[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(w), g);
  for (int j = 0; j < 4; ++j) { out[2 * j] = w[j]; out[2 * j + 1] = w[8 + j]; }
}
ISA_FN inline void tree32(const __m256i r[4], double* out) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(r[0], r[1]), _mm256_hadd_epi32(r[2], r[3]));
  alignas(32) int32_t w[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(w), h);  // per lane: dwords 0..3 = registers 0..3
  for (int j = 0; j < 4; ++j) { out[2 * j] = w[j]; out[2 * j + 1] = w[4 + j]; }
}

// 8 blocks at p (18 bytes each); register j holds blocks 2j (lane 0) and 2j + 1 (lane 1).
ISA_FN void q4_0_int8(const uint8_t* p, Subs& s, int base) {
  const __m256i tu2 = table16(kU2Tab), tabs = table16(kAbsTab);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256i r1[4], r2[4], r3[4], r4[4], ra[4], rmin[4], rmax[4];
  for (int j = 0; j < 4; ++j) {
    const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 18 * (2 * j) + 2));
    const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 18 * (2 * j + 1) + 2));
    const __m256i x = _mm256_inserti128_si256(_mm256_castsi128_si256(b0), b1, 1);
    const __m256i lo = _mm256_and_si256(x, m4), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
    const NibbleSums a = nibble_sums(lo, tu2, tabs), b = nibble_sums(hi, tu2, tabs);
    r1[j] = _mm256_add_epi16(a.s1, b.s1);
    r2[j] = _mm256_add_epi16(a.s2, b.s2);
    r3[j] = _mm256_add_epi16(a.s3, b.s3);
    r4[j] = _mm256_madd_epi16(_mm256_add_epi16(a.s4, b.s4), ones16);  // int32: sums reach 131072
    ra[j] = _mm256_add_epi16(a.sa, b.sa);
    rmin[j] = _mm256_min_epu8(lo, hi);
    rmax[j] = _mm256_max_epu8(lo, hi);
  }
  tree16(r1, s.u1 + base);
  tree16(r2, s.u2 + base);
  tree16(r3, s.u3 + base);
  tree32(r4, s.u4 + base);
  double abs_sum[8];
  tree16(ra, abs_sum);
  double t[8];
  lane_extreme8<false, false>(rmin, t);
  for (int k = 0; k < 4; ++k) { s.qmin[base + 2 * k] = t[k]; s.qmin[base + 2 * k + 1] = t[4 + k]; }
  lane_extreme8<false, true>(rmax, t);
  for (int k = 0; k < 4; ++k) { s.qmax[base + 2 * k] = t[k]; s.qmax[base + 2 * k + 1] = t[4 + k]; }
  for (int k = 0; k < 8; ++k) s.sabs[base + k] = std::fabs(s.a[base + k]) * abs_sum[k];
}

ISA_FN bool acc_q4_0(const uint8_t* p, uint64_t n, Moments* out) {
  const int blocks = static_cast<int>(n / 32);
  Subs s;
  for (int i = 0; i < blocks; ++i) {
    const double d = f16_at(p + 18 * i);
    if (!std::isfinite(d)) return false;
    s.a[i] = d;        // y = d (q - 8) = d q - 8 d, both terms exact
    s.b[i] = -8 * d;
  }
  int i = 0;
  for (; i + 8 <= blocks; i += 8) q4_0_int8(p + 18 * i, s, i);
  if (i < blocks) {
    alignas(32) uint8_t tmp[8 * 18 + 16];
    for (int k = 0; k < 8; ++k) std::memcpy(tmp + 18 * k, p + 18 * (i + (k < blocks - i ? k : blocks - i - 1)), 18);
    Subs t;
    for (int k = 0; k < 8; ++k) t.a[k] = s.a[i + (k < blocks - i ? k : 0)];
    q4_0_int8(tmp, t, 0);
    for (int k = 0; i + k < blocks; ++k) {
      s.u1[i + k] = t.u1[k]; s.u2[i + k] = t.u2[k]; s.u3[i + k] = t.u3[k]; s.u4[i + k] = t.u4[k];
      s.qmin[i + k] = t.qmin[k]; s.qmax[i + k] = t.qmax[k]; s.sabs[i + k] = t.sabs[k];
    }
  }
  *out = finish(s, blocks, 32, 8);
  return true;
}

// ---- Q4_K -----------------------------------------------------------------------------------


// The 8 six-bit scales and mins of a Q4_K/Q5_K block from its 12 bytes, with 32-bit words:
// sub-blocks 0..3 in the low 6 bits of bytes 0..3 (scale) and 4..7 (min); 4..7 in the nibbles
// of bytes 8..11, bits 4..5 from the top 2 bits of bytes 0..3 (scale) and 4..7 (min).
ISA_FN inline void scales_k4(const uint8_t* s, uint8_t sc[8], uint8_t mn[8]) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, s, 4);
  std::memcpy(&w1, s + 4, 4);
  std::memcpy(&w2, s + 8, 4);
  const uint32_t s_lo = w0 & 0x3f3f3f3fu, m_lo = w1 & 0x3f3f3f3fu;
  const uint32_t s_hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
  std::memcpy(sc, &s_lo, 4);
  std::memcpy(sc + 4, &s_hi, 4);
  std::memcpy(mn, &m_lo, 4);
  std::memcpy(mn + 4, &m_hi, 4);
}

// Four small unsigned integers (bytes) as doubles times f.
ISA_FN inline __m256d bytes4_times(const uint8_t* b, double f) {
  int32_t w;
  std::memcpy(&w, b, 4);
  return _mm256_mul_pd(_mm256_cvtepi32_pd(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(w))), _mm256_set1_pd(f));
}

// For four sub-blocks y = a q + b (q in 0..kTop - 1): the threshold T (0..kTop) such that
// {q >= T} is where y > 0 (a > 0) or y <= 0 (a < 0); kTop (none) when a = 0.
template <int kTop = 16>
ISA_FN inline __m128i sign_thresholds(__m256d a, __m256d b) {
  const __m256d zero = _mm256_setzero_pd(), top = _mm256_set1_pd(kTop);
  const __m256d t = _mm256_div_pd(_mm256_sub_pd(zero, b), a);  // -b / a (a = 0: +-Inf or NaN)
  const __m256d pos = _mm256_cmp_pd(a, zero, _CMP_GT_OQ), neg = _mm256_cmp_pd(a, zero, _CMP_LT_OQ);
  // a > 0: q > t, i.e. q >= floor(t) + 1; a < 0: q >= ceil(t)
  __m256d thr = _mm256_blendv_pd(_mm256_ceil_pd(t), _mm256_add_pd(_mm256_floor_pd(t), _mm256_set1_pd(1)), pos);
  thr = _mm256_min_pd(_mm256_max_pd(thr, zero), top);  // also maps +-Inf into range
  thr = _mm256_blendv_pd(top, thr, _mm256_or_pd(pos, neg));  // a = 0 (or NaN t): none
  return _mm256_cvttpd_epi32(thr);
}

// One super-block at p (144 bytes) into s[base .. base + 8); false if a scale is not finite.
ISA_FN bool q4_k_super(const uint8_t* p, Subs& s, int base) {
  const double d = f16_at(p), dmin = f16_at(p + 2);
  if (!std::isfinite(d) || !std::isfinite(dmin)) return false;
  uint8_t sc[8], mn[8];
  scales_k4(p + 4, sc, mn);
  const __m256d a0 = bytes4_times(sc, d), a1 = bytes4_times(sc + 4, d);
  const __m256d b0 = bytes4_times(mn, -dmin), b1 = bytes4_times(mn + 4, -dmin);  // -(dmin m): exact
  _mm256_storeu_pd(s.a + base, a0);
  _mm256_storeu_pd(s.a + base + 4, a1);
  _mm256_storeu_pd(s.b + base, b0);
  _mm256_storeu_pd(s.b + base + 4, b1);
  alignas(16) int32_t thr[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(thr), sign_thresholds(a0, b0));
  _mm_store_si128(reinterpret_cast<__m128i*>(thr + 4), sign_thresholds(a1, b1));

  const __m256i tu2 = table16(kU2Tab);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i eight = _mm256_set1_epi8(8);
  __m256i v[8];
  for (int g = 0; g < 4; ++g) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16 + 32 * g));
    v[2 * g] = _mm256_and_si256(x, m4);
    v[2 * g + 1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
  }
  // One quantity at a time over the 8 sub-blocks (few live registers): int16 pair sums, or
  // int32 for u^4 (a sub-block's sum reaches 131072).
  __m256i c[8];
  for (int j = 0; j < 8; ++j) c[j] = _mm256_maddubs_epi16(ones8, _mm256_sub_epi8(v[j], eight));
  store_i16_as_f64(hsum8_i16(c), s.u1 + base);
  for (int j = 0; j < 8; ++j) c[j] = _mm256_maddubs_epi16(_mm256_shuffle_epi8(tu2, v[j]), ones8);
  store_i16_as_f64(hsum8_i16(c), s.u2 + base);
  for (int j = 0; j < 8; ++j) c[j] = _mm256_maddubs_epi16(_mm256_shuffle_epi8(tu2, v[j]), _mm256_sub_epi8(v[j], eight));
  store_i16_as_f64(hsum8_i16(c), s.u3 + base);
  for (int j = 0; j < 8; ++j) {
    const __m256i u2 = _mm256_shuffle_epi8(tu2, v[j]);
    c[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(u2, u2), ones16);
  }
  __m128i lo, hi;
  hsum8_i32(c, &lo, &hi);
  store_i32x8_as_f64(lo, hi, s.u4 + base);
  int cnt[8];
  for (int j = 0; j < 8; ++j) {
    const __m256i t = _mm256_set1_epi8(static_cast<char>(thr[j]));
    const __m256i ge = _mm256_cmpeq_epi8(_mm256_max_epu8(v[j], t), v[j]);  // q >= T (T = 16: none)
    cnt[j] = __builtin_popcount(static_cast<uint32_t>(_mm256_movemask_epi8(ge)));
    c[j] = _mm256_maddubs_epi16(_mm256_and_si256(v[j], ge), ones8);
  }
  alignas(32) double ge_sum[8];
  store_i16_as_f64(hsum8_i16(c), ge_sum);
  minmax8<false>(v, s.qmin + base, s.qmax + base);
  // sum |y| = (sum over y > 0) - (sum over y <= 0), each part one rounding of exact products
  const __m256d n32 = _mm256_set1_pd(32), z256 = _mm256_set1_pd(32 * 8), zero = _mm256_setzero_pd();
  for (int h = 0; h < 2; ++h) {
    const __m256d a = h ? a1 : a0, b = h ? b1 : b0;
    const __m256d gs = _mm256_load_pd(ge_sum + 4 * h);
    const __m256d gc = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cnt + 4 * h)));
    const __m256d q_all = _mm256_add_pd(z256, _mm256_loadu_pd(s.u1 + base + 4 * h));  // sum of q
    const __m256d up = _mm256_fmadd_pd(a, gs, _mm256_mul_pd(b, gc));  // over q >= T
    const __m256d down = _mm256_fmadd_pd(a, _mm256_sub_pd(q_all, gs), _mm256_mul_pd(b, _mm256_sub_pd(n32, gc)));
    const __m256d pos = _mm256_cmp_pd(a, zero, _CMP_GT_OQ), neg = _mm256_cmp_pd(a, zero, _CMP_LT_OQ);
    __m256d r = _mm256_blendv_pd(_mm256_sub_pd(down, up), _mm256_sub_pd(up, down), pos);
    const __m256d flat = _mm256_mul_pd(n32, _mm256_andnot_pd(_mm256_set1_pd(-0.0), b));  // a = 0: 32 |b|
    r = _mm256_blendv_pd(flat, r, _mm256_or_pd(pos, neg));
    _mm256_storeu_pd(s.sabs + base + 4 * h, r);
  }
  return true;
}

ISA_FN bool acc_q4_k(const uint8_t* p, uint64_t n, Moments* out) {
  const int supers = static_cast<int>(n / 256);
  Subs s;
  for (int i = 0; i < supers; ++i)
    if (!q4_k_super(p + 144 * i, s, 8 * i)) return false;
  *out = finish(s, 8 * supers, 32, 8);
  return true;
}

// ---- the symmetric types (Q8_0, Q4_0, Q5_0, MXFP4): raw power sums ---------------------------
//
// y = s q, one scale s per block of 32 and small signed integers q, no offset: then every
// block's power sums about zero are one rounding each, sum y^k = s^k U_k (U_k = sum q^k, an
// exact integer; s^k exact: s is an f16 or a power of two), and the chunk's P_k = sum y^k
// need no per-block central sums. The chunk's central sums M_k about M = P_1 / n come from the
// binomial expansion; it cancels only when the mean dwarfs the spread, so it is taken when
// n M^2 <= 4 M_2: then sum y^4 <= 8 (M_4 + n M^4) <= 136 M_4 (n M^4 <= 16 M_2^2 / n <= 16 M_4),
// every term of the expansion of M_4 is below about 200 M_4 and that of M_2 below 5 M_2, so
// their errors stay below about 2^-40 of M_2 and M_4 (M_3's of sqrt(M_2 M_4)). Other chunks go
// through the exact per-block path above (Q8_0, Q4_0) or the decoding one (Q5_0, MXFP4). Min and
// max: a block's values lie in [-qmax |s|, qmax |s|], so only the blocks whose bound passes
// the extremes known so far (the caller's hint, then the chunk's own) have their quants'
// range taken.

template <DType T> struct Sym;
template <> struct Sym<DType::Q8_0> { static constexpr int kBytes = 34; static constexpr double kQmax = 128; };
template <> struct Sym<DType::Q4_0> { static constexpr int kBytes = 18; static constexpr double kQmax = 8; };
template <> struct Sym<DType::Q5_0> { static constexpr int kBytes = 22; static constexpr double kQmax = 16; };
template <> struct Sym<DType::MXFP4> { static constexpr int kBytes = 17; static constexpr double kQmax = 12; };

alignas(16) const int8_t kMxfp4Tab[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// The fifth bits of Q5_0 / Q5_1: bit i of the little-endian u32 at p to bit 4 of byte i.
ISA_FN inline __m256i fifth_bits(const uint8_t* p) {
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  const __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, bit), bit), _mm256_set1_epi8(0x10));
}

// The 32 nibbles at p (low nibbles: elements 0..15, high: 16..31) as bytes in element order.
ISA_FN inline __m256i nibbles32(const uint8_t* p) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(x, m4)), _mm_and_si128(_mm_srli_epi16(x, 4), m4), 1);
}

// The 32 quants of the block at p as signed bytes (element order does not matter here).
template <DType T>
ISA_FN inline __m256i sym_quants(const uint8_t* p) {
  if constexpr (T == DType::Q8_0) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
  } else if constexpr (T == DType::Q4_0) {
    return _mm256_sub_epi8(nibbles32(p + 2), _mm256_set1_epi8(8));
  } else if constexpr (T == DType::Q5_0) {
    return _mm256_sub_epi8(_mm256_or_si256(nibbles32(p + 6), fifth_bits(p + 2)), _mm256_set1_epi8(16));
  } else {
    return _mm256_shuffle_epi8(table16(kMxfp4Tab), nibbles32(p + 1));
  }
}

// The scales of the 8 blocks at p as doubles (blocks 0..3 in lo, 4..7 in hi); false if one is
// not finite (f16 Inf/NaN; E8M0 scales always are).
template <DType T>
ISA_FN inline bool sym_scales(const uint8_t* p, __m256d* lo, __m256d* hi) {
  constexpr int B = Sym<T>::kBytes;
  if constexpr (T == DType::MXFP4) {
    auto pw = [p](int k) { return static_cast<long long>(static_cast<int>(p[B * k]) - 128 + 1023) << 52; };
    *lo = _mm256_castsi256_pd(_mm256_set_epi64x(pw(3), pw(2), pw(1), pw(0)));
    *hi = _mm256_castsi256_pd(_mm256_set_epi64x(pw(7), pw(6), pw(5), pw(4)));
    return true;
  } else {
    auto h = [p](int k) { uint16_t v; std::memcpy(&v, p + B * k, 2); return static_cast<short>(v); };
    const __m128i w = _mm_set_epi16(h(7), h(6), h(5), h(4), h(3), h(2), h(1), h(0));
    const __m128i e = _mm_set1_epi16(0x7c00);
    if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(w, e), e)) != 0) return false;
    const __m256 f = _mm256_cvtph_ps(w);  // exact
    *lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
    *hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
    return true;
  }
}

// Four uint32 as doubles (exact): u + 2^52 has u as its low mantissa bits.
ISA_FN inline __m256d u32x4_f64(__m128i x) {
  const __m256i magic = _mm256_set1_epi64x(0x4330000000000000LL);
  return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(_mm256_cvtepu32_epi64(x), magic)), _mm256_castsi256_pd(magic));
}
ISA_FN inline void i16x8_f64(__m128i s, __m256d* lo, __m256d* hi) {
  const __m256i w = _mm256_cvtepi16_epi32(s);
  *lo = _mm256_cvtepi32_pd(_mm256_castsi256_si128(w));
  *hi = _mm256_cvtepi32_pd(_mm256_extracti128_si256(w, 1));
}
ISA_FN inline void i32x8_f64(__m128i lo4, __m128i hi4, __m256d* lo, __m256d* hi) {
  *lo = _mm256_cvtepi32_pd(lo4);
  *hi = _mm256_cvtepi32_pd(hi4);
}

// The byte min and max (signed if kSigned) of one 32-byte register.
template <bool kSigned>
ISA_FN inline __m128i min16(__m128i a, __m128i b) { return kSigned ? _mm_min_epi8(a, b) : _mm_min_epu8(a, b); }
template <bool kSigned>
ISA_FN inline __m128i max16(__m128i a, __m128i b) { return kSigned ? _mm_max_epi8(a, b) : _mm_max_epu8(a, b); }
template <bool kSigned>
ISA_FN inline void byte_range(__m256i v, int* mn, int* mx) {
  __m128i a = min16<kSigned>(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  __m128i b = max16<kSigned>(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  a = min16<kSigned>(a, _mm_srli_si128(a, 8)); b = max16<kSigned>(b, _mm_srli_si128(b, 8));
  a = min16<kSigned>(a, _mm_srli_si128(a, 4)); b = max16<kSigned>(b, _mm_srli_si128(b, 4));
  a = min16<kSigned>(a, _mm_srli_si128(a, 2)); b = max16<kSigned>(b, _mm_srli_si128(b, 2));
  a = min16<kSigned>(a, _mm_srli_si128(a, 1)); b = max16<kSigned>(b, _mm_srli_si128(b, 1));
  const int lo = _mm_cvtsi128_si32(a) & 0xff, hi = _mm_cvtsi128_si32(b) & 0xff;
  *mn = kSigned ? static_cast<int8_t>(lo) : lo;
  *mx = kSigned ? static_cast<int8_t>(hi) : hi;
}

struct SymState {
  __m256d p1, p2, p3, p4, pa;
  double mn, mx;
};

// 8 blocks at p into st; only the first `valid` take part in min and max (the rest are padding
// whose values are 0).
template <DType T>
ISA_FN inline bool sym_group(const uint8_t* p, int valid, SymState& st) {
  constexpr int B = Sym<T>::kBytes;
  __m256d s[2];
  if (!sym_scales<T>(p, &s[0], &s[1])) return false;
  const __m256i ones8 = _mm256_set1_epi8(1), k8192 = _mm256_set1_epi16(8192);
  __m256i v[8], c1[8], ca[8], c2[8], c3[8], c4[8];
  for (int k = 0; k < 8; ++k) {
    const __m256i x = sym_quants<T>(p + B * k);
    v[k] = x;
    c1[k] = _mm256_maddubs_epi16(ones8, x);                           // int16 pairs of q
    ca[k] = _mm256_maddubs_epi16(_mm256_abs_epi8(x), ones8);          // pairs of |q| (|-128| = 128 as u8)
    const __m256i wl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x));
    const __m256i wh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(x, 1));
    const __m256i sl = _mm256_mullo_epi16(wl, wl), sh = _mm256_mullo_epi16(wh, wh);  // q^2 <= 2^14
    c2[k] = _mm256_add_epi32(_mm256_madd_epi16(wl, wl), _mm256_madd_epi16(wh, wh));
    c3[k] = _mm256_add_epi32(_mm256_madd_epi16(sl, wl), _mm256_madd_epi16(sh, wh));
    // q^4 = (t + 2^13)^2 with t = q^2 - 2^13 in [-2^13, 2^13]: t^2 <= 2^26, so a block's sum
    // of t^2 is at most 2^31 (uint32); sum q^4 = sum t^2 + 2^14 sum q^2 - 2^31
    const __m256i tl = _mm256_sub_epi16(sl, k8192), th = _mm256_sub_epi16(sh, k8192);
    c4[k] = _mm256_add_epi32(_mm256_madd_epi16(tl, tl), _mm256_madd_epi16(th, th));
  }
  __m256d u1[2], ua[2], u2[2], u3[2], u4[2];
  i16x8_f64(hsum8_i16(c1), &u1[0], &u1[1]);
  i16x8_f64(hsum8_i16(ca), &ua[0], &ua[1]);
  __m128i lo, hi;
  hsum8_i32(c2, &lo, &hi);
  i32x8_f64(lo, hi, &u2[0], &u2[1]);
  hsum8_i32(c3, &lo, &hi);
  i32x8_f64(lo, hi, &u3[0], &u3[1]);
  hsum8_i32(c4, &lo, &hi);  // uint32 sums (<= 2^31)
  const __m256d two31 = _mm256_set1_pd(2147483648.0), two14 = _mm256_set1_pd(16384.0);
  u4[0] = _mm256_fmadd_pd(two14, u2[0], _mm256_sub_pd(u32x4_f64(lo), two31));  // exact integers
  u4[1] = _mm256_fmadd_pd(two14, u2[1], _mm256_sub_pd(u32x4_f64(hi), two31));
  const __m256d sign = _mm256_set1_pd(-0.0);
  for (int h = 0; h < 2; ++h) {
    const __m256d d = s[h], d2 = _mm256_mul_pd(d, d);
    st.p1 = _mm256_fmadd_pd(d, u1[h], st.p1);
    st.p2 = _mm256_fmadd_pd(d2, u2[h], st.p2);
    st.p3 = _mm256_fmadd_pd(_mm256_mul_pd(d2, d), u3[h], st.p3);
    st.p4 = _mm256_fmadd_pd(_mm256_mul_pd(d2, d2), u4[h], st.p4);
    st.pa = _mm256_fmadd_pd(_mm256_andnot_pd(sign, d), ua[h], st.pa);
  }
  // min and max: the blocks whose bound qmax |s| passes the extremes so far
  const __m256d q = _mm256_set1_pd(Sym<T>::kQmax);
  const __m256d b0 = _mm256_mul_pd(_mm256_andnot_pd(sign, s[0]), q), b1 = _mm256_mul_pd(_mm256_andnot_pd(sign, s[1]), q);
  const __m256d vmx = _mm256_set1_pd(st.mx), vmn = _mm256_set1_pd(-st.mn);
  int cand = _mm256_movemask_pd(_mm256_or_pd(_mm256_cmp_pd(b0, vmx, _CMP_GT_OQ), _mm256_cmp_pd(b0, vmn, _CMP_GT_OQ))) |
             (_mm256_movemask_pd(_mm256_or_pd(_mm256_cmp_pd(b1, vmx, _CMP_GT_OQ), _mm256_cmp_pd(b1, vmn, _CMP_GT_OQ))) << 4);
  cand &= (1 << valid) - 1;
  if (cand) {
    alignas(32) double sc[8];
    _mm256_store_pd(sc, s[0]);
    _mm256_store_pd(sc + 4, s[1]);
    while (cand) {
      const int k = __builtin_ctz(static_cast<unsigned>(cand));
      cand &= cand - 1;
      int qa, qb;
      byte_range<true>(v[k], &qa, &qb);
      const double ya = sc[k] * qa, yb = sc[k] * qb;  // exact
      st.mn = std::fmin(st.mn, std::fmin(ya, yb));
      st.mx = std::fmax(st.mx, std::fmax(ya, yb));
    }
  }
  return true;
}

// The chunk of n elements (a whole number of blocks, at most kBlock) at p by raw power sums;
// false when it must take another path (a non-finite scale, or a mean that dwarfs the
// spread). lo_hint/hi_hint: the extremes already known (see quant.h).
template <DType T>
ISA_FN bool sym_chunk(const uint8_t* p, uint64_t n, double lo_hint, double hi_hint, Moments* out) {
  constexpr int B = Sym<T>::kBytes;
  const int blocks = static_cast<int>(n / 32);
  SymState st;
  st.p1 = st.p2 = st.p3 = st.p4 = st.pa = _mm256_setzero_pd();
  st.mn = lo_hint;
  st.mx = hi_hint;
  const double mn0 = st.mn, mx0 = st.mx;
  int i = 0;
  for (; i + 8 <= blocks; i += 8)
    if (!sym_group<T>(p + B * i, 8, st)) return false;
  if (i < blocks) {  // padding: zero bytes, every padded value 0 (a zero scale or a zero quant), out of min and max
    alignas(32) uint8_t tmp[8 * B + 32] = {};
    std::memcpy(tmp, p + B * i, static_cast<size_t>(B) * (blocks - i));
    if (!sym_group<T>(tmp, blocks - i, st)) return false;
  }
  const double N = 32.0 * blocks;
  const double P1 = hsum4(st.p1), P2 = hsum4(st.p2), P3 = hsum4(st.p3), P4 = hsum4(st.p4);
  const double M = P1 / N;
  const double M2 = M * M;
  const double s1 = std::fma(-N, M, P1);
  const double s2 = P2 - 2 * M * P1 + N * M2;
  if (!(N * M2 <= 4 * s2)) return false;  // the mean dwarfs the spread (or all values are 0: M = s2 = 0 passes)
  const double s3 = P3 - 3 * M * P2 + 3 * M2 * P1 - N * M2 * M;
  const double s4 = P4 - 4 * M * P3 + 6 * M2 * P2 - 4 * M2 * M * P1 + N * M2 * M2;
  // extremes that did not pass the hints stay at +-Inf: the merge keeps the caller's
  const double mn = st.mn < mn0 ? st.mn : INFINITY, mx = st.mx > mx0 ? st.mx : -INFINITY;
  *out = block_moments(N, M, s1, s2, s3, s4, hsum4(st.pa), mn, mx);
  return true;
}

// ---- Q6_K and Q3_K: raw power sums -----------------------------------------------------------
//
// Symmetric too: y = s u with s = d sc (sc a signed byte per sub-block of 16; Q3_K's a 6-bit
// value minus 32) and u = q - 32 in [-32, 31] (Q3_K: the low 2 bits, minus 4 where the hmask bit
// is clear: [-4, 3]), so the same raw sums and the same check as Q8_0 (sym_chunk). The
// 128-element halves of a super-block hold 4 registers of 32 quants whose 128-bit lanes are
// single sub-blocks: register g of half h (element 128 h + 32 g + l) has sub-block 8 h + 2 g in its low
// lane, 8 h + 2 g + 1 in its high one (quant_scalar.cc spells out the layout).

struct Q6KState {
  __m256d p1, p2, p3, p4, pa;
  double mn, mx;
};

// Per 128-bit lane, the int16 sums of the lane's words for each of r[0..7]: low lane word k =
// register k's low lane, high lane word k = its high lane.
ISA_FN inline __m256i lanesum8_i16(const __m256i r[8]) {
  const __m256i a = _mm256_hadd_epi16(_mm256_hadd_epi16(r[0], r[1]), _mm256_hadd_epi16(r[2], r[3]));
  const __m256i b = _mm256_hadd_epi16(_mm256_hadd_epi16(r[4], r[5]), _mm256_hadd_epi16(r[6], r[7]));
  return _mm256_hadd_epi16(a, b);
}
// The 16 int16 words of w (order: low lane, then high lane) as 4 vectors of doubles.
ISA_FN inline void i16x16_f64(__m256i w, __m256d out[4]) {
  i16x8_f64(_mm256_castsi256_si128(w), &out[0], &out[1]);
  i16x8_f64(_mm256_extracti128_si256(w, 1), &out[2], &out[3]);
}

// Q3_K's 6-bit sub-block scales (16 in 12 bytes) minus 32: the low 4 bits in the nibbles of
// bytes 0..7 (sub-block j < 8: low nibble of byte j, else high nibble of byte j - 8), the high
// 2 bits in bytes 8..11 (bits 2 (j / 4) of byte 8 + j % 4).
ISA_FN inline void scales_q3k(const uint8_t* s, int8_t out[16]) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
}

// The quants of one super-block of Q6_K (u = q - 32 in [-32, 31]) or Q3_K (u in [-4, 3]) as
// v[4 h + g] (register g of half h: elements 128 h + 32 g + l, l = 0..31), its f16 d and its
// 16 signed sub-block scales; false if d is not finite.
template <DType T>
ISA_FN inline bool k16_load(const uint8_t* p, __m256i v[8], double* d, int8_t sc[16]) {
  const __m256i m3 = _mm256_set1_epi8(0x03);
  uint16_t hd;
  if constexpr (T == DType::Q6_K) {
    std::memcpy(&hd, p + 208, 2);
    const __m256i m4 = _mm256_set1_epi8(0x0F), k32 = _mm256_set1_epi8(32);
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * h));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * h + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + 32 * h));
      const __m256i lo[4] = {_mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
                             _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4)};
      for (int g = 0; g < 4; ++g) {
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * g), m3);
        v[4 * h + g] = _mm256_sub_epi8(_mm256_or_si256(lo[g], _mm256_slli_epi16(hb, 4)), k32);
      }
    }
    std::memcpy(sc, p + 192, 16);
  } else {  // Q3_K: hmask[32], qs[64], scales[12], d; u = low 2 bits - 4 where the hmask bit is clear
    std::memcpy(&hd, p + 108, 2);
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i one = _mm256_set1_epi8(1), k4 = _mm256_set1_epi8(4);
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 + 32 * h));
      for (int g = 0; g < 4; ++g) {
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * g), m3);
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + g), one);
        v[4 * h + g] = _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(hb, 2)), k4);  // low + 4 bit - 4
      }
    }
    scales_q3k(p + 96, sc);
  }
  *d = _cvtsh_ss(hd);
  return (hd & 0x7c00) != 0x7c00;
}

template <DType T>
ISA_FN inline bool q6_k_fast_super(const uint8_t* p, Q6KState& st) {
  constexpr double kUmax = T == DType::Q6_K ? 32 : 4;  // |u| <= kUmax
  const __m256i ones8 = _mm256_set1_epi8(1);
  __m256i v[8];
  double d;
  alignas(16) int8_t scb[16];
  if (!k16_load<T>(p, v, &d, scb)) return false;
  // int16 lane sums of u, |u|, u^2 (a sub-block's u^2 sum <= 16 * 1024); int32 vectors, one per
  // sub-block, of u^3 and u^4 (even sub-blocks first, then odd: the lane sums' order)
  __m256i c1[8], ca[8], c2[8], c3[16], c4[16];
  for (int r = 0; r < 8; ++r) {
    const __m256i x = v[r], ax = _mm256_abs_epi8(x);  // |u| <= 32
    c1[r] = _mm256_maddubs_epi16(ones8, x);
    ca[r] = _mm256_maddubs_epi16(ax, ones8);
    c2[r] = _mm256_maddubs_epi16(ax, ax);
    const __m256i wl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x));
    const __m256i wh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(x, 1));
    const __m256i sl = _mm256_mullo_epi16(wl, wl), sh = _mm256_mullo_epi16(wh, wh);  // <= 1024
    c3[r] = _mm256_madd_epi16(sl, wl);
    c3[8 + r] = _mm256_madd_epi16(sh, wh);
    c4[r] = _mm256_madd_epi16(sl, sl);  // pairs <= 2^21, a sub-block <= 2^24
    c4[8 + r] = _mm256_madd_epi16(sh, sh);
  }
  // order of the 16 sums: sub-blocks 8 (r / 4) + 2 (r % 4) for r = 0..7, then the same + 1
  __m256d U1[4], UA[4], U2[4], U3[4], U4[4];
  i16x16_f64(lanesum8_i16(c1), U1);
  i16x16_f64(lanesum8_i16(ca), UA);
  i16x16_f64(lanesum8_i16(c2), U2);
  __m128i lo, hi;
  hsum8_i32(c3, &lo, &hi);
  i32x8_f64(lo, hi, &U3[0], &U3[1]);
  hsum8_i32(c3 + 8, &lo, &hi);
  i32x8_f64(lo, hi, &U3[2], &U3[3]);
  hsum8_i32(c4, &lo, &hi);
  i32x8_f64(lo, hi, &U4[0], &U4[1]);
  hsum8_i32(c4 + 8, &lo, &hi);
  i32x8_f64(lo, hi, &U4[2], &U4[3]);
  // the scales in the same order: even sub-blocks, then odd
  const __m128i sc = _mm_shuffle_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(scb)),
                                      _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
  const __m256i sc32a = _mm256_cvtepi8_epi32(sc), sc32b = _mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8));
  const __m256d vd = _mm256_set1_pd(d);
  __m256d S[4];
  S[0] = _mm256_mul_pd(vd, _mm256_cvtepi32_pd(_mm256_castsi256_si128(sc32a)));  // exact
  S[1] = _mm256_mul_pd(vd, _mm256_cvtepi32_pd(_mm256_extracti128_si256(sc32a, 1)));
  S[2] = _mm256_mul_pd(vd, _mm256_cvtepi32_pd(_mm256_castsi256_si128(sc32b)));
  S[3] = _mm256_mul_pd(vd, _mm256_cvtepi32_pd(_mm256_extracti128_si256(sc32b, 1)));
  const __m256d sign = _mm256_set1_pd(-0.0), k32d = _mm256_set1_pd(kUmax);
  const __m256d vmx = _mm256_set1_pd(st.mx), vmn = _mm256_set1_pd(-st.mn);
  int cand = 0;
  for (int k = 0; k < 4; ++k) {
    const __m256d s1 = S[k], s2 = _mm256_mul_pd(s1, s1), as = _mm256_andnot_pd(sign, s1);
    st.p1 = _mm256_fmadd_pd(s1, U1[k], st.p1);
    st.p2 = _mm256_fmadd_pd(s2, U2[k], st.p2);
    st.p3 = _mm256_fmadd_pd(_mm256_mul_pd(s2, s1), U3[k], st.p3);
    st.p4 = _mm256_fmadd_pd(_mm256_mul_pd(s2, s2), U4[k], st.p4);
    st.pa = _mm256_fmadd_pd(as, UA[k], st.pa);
    const __m256d bound = _mm256_mul_pd(as, k32d);  // |y| <= kUmax |s|
    cand |= _mm256_movemask_pd(_mm256_or_pd(_mm256_cmp_pd(bound, vmx, _CMP_GT_OQ), _mm256_cmp_pd(bound, vmn, _CMP_GT_OQ))) << (4 * k);
  }
  if (cand) {
    alignas(32) double sv[16];
    for (int k = 0; k < 4; ++k) _mm256_store_pd(sv + 4 * k, S[k]);
    while (cand) {
      const int i = __builtin_ctz(static_cast<unsigned>(cand));  // position in the even-then-odd order
      cand &= cand - 1;
      const int r = i & 7;
      const __m128i lane = i < 8 ? _mm256_castsi256_si128(v[r]) : _mm256_extracti128_si256(v[r], 1);
      int qa, qb;
      byte_range<true>(_mm256_broadcastsi128_si256(lane), &qa, &qb);
      const double ya = sv[i] * qa, yb = sv[i] * qb;  // exact
      st.mn = std::fmin(st.mn, std::fmin(ya, yb));
      st.mx = std::fmax(st.mx, std::fmax(ya, yb));
    }
  }
  return true;
}

template <DType T>
ISA_FN bool q6_k_fast(const uint8_t* p, uint64_t n, double lo_hint, double hi_hint, Moments* out) {
  constexpr int kBytes = T == DType::Q6_K ? 210 : 110;
  const int supers = static_cast<int>(n / 256);
  Q6KState st;
  st.p1 = st.p2 = st.p3 = st.p4 = st.pa = _mm256_setzero_pd();
  st.mn = lo_hint;
  st.mx = hi_hint;
  for (int i = 0; i < supers; ++i)
    if (!q6_k_fast_super<T>(p + kBytes * i, st)) return false;
  const double N = 256.0 * supers;
  const double P1 = hsum4(st.p1), P2 = hsum4(st.p2), P3 = hsum4(st.p3), P4 = hsum4(st.p4);
  const double M = P1 / N, M2 = M * M;
  const double s1 = std::fma(-N, M, P1);
  const double s2 = P2 - 2 * M * P1 + N * M2;
  if (!(N * M2 <= 4 * s2)) return false;  // the mean dwarfs the spread: the decoding path
  const double s3 = P3 - 3 * M * P2 + 3 * M2 * P1 - N * M2 * M;
  const double s4 = P4 - 4 * M * P3 + 6 * M2 * P2 - 4 * M2 * M * P1 + N * M2 * M2;
  const double mn = st.mn < lo_hint ? st.mn : INFINITY, mx = st.mx > hi_hint ? st.mx : -INFINITY;
  *out = block_moments(N, M, s1, s2, s3, s4, hsum4(st.pa), mn, mx);
  return true;
}

// ---- Q4_K, Q5_K, Q4_1 and Q5_1: raw power sums ----------------------------------------------
//
// As for the symmetric types, with an offset: in sub-block j, y = a u + c with u = q - z
// (z = 8 for 4-bit q, 16 for 5-bit q), a = d sc_j and c = z a - dmin m_j for the K types (a = d,
// c = z d + m for the blocks of Q4_1 and Q5_1, taken 8 at a time as sub-blocks; one rounding); sum y^k = sum_t C(k, t) a^t c^(k - t) U_t (U_t = sum u^t, exact integers; Horner
// in c), every term of which is at most 32 r^k with r = z |a| + |c|, and each sum's error at
// most 12 u 32 r^k (u = 2^-53). The chunk's central sums about M = P_1 / n then cost another
// 8 u 2^(k-1) (sum |y|^k + n |M|^k). The chunk is taken when W_k + n M^k <= 2^14 m_k for k = 2
// and 4 (W_k = sum over sub-blocks of 32 r^k, an upper bound of sum |y|^k): errors below
// 80 u 2^14 m_k, 1.5e-10 of m_k (m_3's below the same fraction of sqrt(m_2 m_4)). Realistic
// blocks (ggml puts each sub-block's minimum at q = 0 and its maximum near the top) have
// W_k / m_k near 10; a chunk that fails (a mean far from zero relative to the spread, or
// scales that cancel) takes the exact path above (Q4_K) or the decoding path (the others).

struct Q4KState {
  __m256d p1, p2, p3, p4, pa, w2, w4;
  double mn, mx;
};

ISA_FN inline double f16_fast(const uint8_t* p, bool* bad) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  *bad = *bad || (h & 0x7c00) == 0x7c00;
  return _cvtsh_ss(h);
}

// The statistics of 8 sub-blocks of 32, y = a q + b with q = v[j] in [0, 2^kBits) (sub-blocks
// 0..3 in a[0], b[0], 4..7 in a[1], b[1]), into st; only the first `valid` take part in min and
// max (the rest: a = b = 0, every sum 0).
template <int kBits>
ISA_FN inline void offset_group(const __m256i v[8], const __m256d a[2], const __m256d b[2], int valid, Q4KState& st) {
  constexpr int kTop = 1 << kBits, kZero = kTop / 2;
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i zp = _mm256_set1_epi8(kZero);
  __m256i c1[8], c2[8], c3[8], c4[8];
  for (int j = 0; j < 8; ++j) {
    const __m256i u = _mm256_sub_epi8(v[j], zp);
    c1[j] = _mm256_maddubs_epi16(ones8, u);
    if constexpr (kBits == 4) {
      const __m256i u2 = _mm256_shuffle_epi8(table16(kU2Tab), v[j]);
      c2[j] = _mm256_maddubs_epi16(u2, ones8);
      c3[j] = _mm256_maddubs_epi16(u2, u);
      c4[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(u2, u2), ones16);  // int32: a sub-block's sum reaches 131072
    } else {
      const __m256i au = _mm256_abs_epi8(u);  // <= 16
      c2[j] = _mm256_maddubs_epi16(au, au);   // pairs <= 512, a sub-block <= 8192
      const __m256i wl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(u));
      const __m256i wh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(u, 1));
      const __m256i sl = _mm256_mullo_epi16(wl, wl), sh = _mm256_mullo_epi16(wh, wh);  // <= 256
      c3[j] = _mm256_add_epi32(_mm256_madd_epi16(sl, wl), _mm256_madd_epi16(sh, wh));
      c4[j] = _mm256_add_epi32(_mm256_madd_epi16(sl, sl), _mm256_madd_epi16(sh, sh));  // a sub-block <= 2^21
    }
  }
  __m256d U1[2], U2[2], U3[2], U4[2];
  i16x8_f64(hsum8_i16(c1), &U1[0], &U1[1]);
  i16x8_f64(hsum8_i16(c2), &U2[0], &U2[1]);
  __m128i lo, hi;
  if constexpr (kBits == 4) {
    i16x8_f64(hsum8_i16(c3), &U3[0], &U3[1]);
  } else {
    hsum8_i32(c3, &lo, &hi);
    i32x8_f64(lo, hi, &U3[0], &U3[1]);
  }
  hsum8_i32(c4, &lo, &hi);
  i32x8_f64(lo, hi, &U4[0], &U4[1]);

  // sum |y| = (sum over y > 0) - (sum over y <= 0), as q4_k_super
  alignas(16) int32_t thr[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(thr), sign_thresholds<kTop>(a[0], b[0]));
  _mm_store_si128(reinterpret_cast<__m128i*>(thr + 4), sign_thresholds<kTop>(a[1], b[1]));
  alignas(16) int32_t cnt[8];
  for (int j = 0; j < 8; ++j) {
    const __m256i t = _mm256_set1_epi8(static_cast<char>(thr[j]));
    const __m256i ge = _mm256_cmpeq_epi8(_mm256_max_epu8(v[j], t), v[j]);  // q >= T (T = kTop: none)
    cnt[j] = __builtin_popcount(static_cast<uint32_t>(_mm256_movemask_epi8(ge)));
    c1[j] = _mm256_maddubs_epi16(_mm256_and_si256(v[j], ge), ones8);
  }
  __m256d G[2];
  i16x8_f64(hsum8_i16(c1), &G[0], &G[1]);

  const __m256d n32 = _mm256_set1_pd(32), z256 = _mm256_set1_pd(32 * kZero), zero = _mm256_setzero_pd();
  const __m256d sign = _mm256_set1_pd(-0.0), eightd = _mm256_set1_pd(kZero), fifteen = _mm256_set1_pd(kTop - 1);
  const __m256d two = _mm256_set1_pd(2), three = _mm256_set1_pd(3), four = _mm256_set1_pd(4), six = _mm256_set1_pd(6);
  alignas(32) double ylo[8], yhi[8];
  for (int h = 0; h < 2; ++h) {
    const __m256d A = a[h], Bv = b[h];
    // sum |y|
    const __m256d gc = _mm256_cvtepi32_pd(_mm_load_si128(reinterpret_cast<const __m128i*>(cnt + 4 * h)));
    const __m256d q_all = _mm256_add_pd(z256, U1[h]);  // sum of q
    const __m256d up = _mm256_fmadd_pd(A, G[h], _mm256_mul_pd(Bv, gc));  // over q >= T
    const __m256d down = _mm256_fmadd_pd(A, _mm256_sub_pd(q_all, G[h]), _mm256_mul_pd(Bv, _mm256_sub_pd(n32, gc)));
    const __m256d pos = _mm256_cmp_pd(A, zero, _CMP_GT_OQ), neg = _mm256_cmp_pd(A, zero, _CMP_LT_OQ);
    __m256d r = _mm256_blendv_pd(_mm256_sub_pd(down, up), _mm256_sub_pd(up, down), pos);
    const __m256d flat = _mm256_mul_pd(n32, _mm256_andnot_pd(sign, Bv));  // a = 0: 32 |b|
    st.pa = _mm256_add_pd(st.pa, _mm256_blendv_pd(flat, r, _mm256_or_pd(pos, neg)));
    // the power sums, Horner in c = z a + b (z = kZero)
    const __m256d c = _mm256_fmadd_pd(eightd, A, Bv);
    const __m256d a2 = _mm256_mul_pd(A, A);
    const __m256d A1 = _mm256_mul_pd(A, U1[h]), A2 = _mm256_mul_pd(a2, U2[h]);
    const __m256d A3 = _mm256_mul_pd(_mm256_mul_pd(a2, A), U3[h]), A4 = _mm256_mul_pd(_mm256_mul_pd(a2, a2), U4[h]);
    const __m256d c32 = _mm256_mul_pd(n32, c);
    st.p1 = _mm256_add_pd(st.p1, _mm256_add_pd(A1, c32));
    st.p2 = _mm256_add_pd(st.p2, _mm256_fmadd_pd(c, _mm256_fmadd_pd(two, A1, c32), A2));
    st.p3 = _mm256_add_pd(st.p3, _mm256_fmadd_pd(c, _mm256_fmadd_pd(three, A2, _mm256_mul_pd(c, _mm256_fmadd_pd(three, A1, c32))), A3));
    const __m256d t4 = _mm256_fmadd_pd(c, _mm256_fmadd_pd(four, A1, c32), _mm256_mul_pd(six, A2));
    st.p4 = _mm256_add_pd(st.p4, _mm256_fmadd_pd(c, _mm256_fmadd_pd(four, A3, _mm256_mul_pd(c, t4)), A4));
    // the bound r = z |a| + |c| of |a u| + |c|
    const __m256d rb = _mm256_fmadd_pd(eightd, _mm256_andnot_pd(sign, A), _mm256_andnot_pd(sign, c));
    const __m256d rb2 = _mm256_mul_pd(rb, rb);
    st.w2 = _mm256_fmadd_pd(n32, rb2, st.w2);
    st.w4 = _mm256_fmadd_pd(n32, _mm256_mul_pd(rb2, rb2), st.w4);
    // each sub-block's values lie between b and (kTop - 1) a + b
    const __m256d e = _mm256_fmadd_pd(fifteen, A, Bv);
    _mm256_store_pd(ylo + 4 * h, _mm256_min_pd(Bv, e));
    _mm256_store_pd(yhi + 4 * h, _mm256_max_pd(Bv, e));
  }
  // min and max: the sub-blocks whose range passes the extremes so far
  const __m256d vmx = _mm256_set1_pd(st.mx), vmn = _mm256_set1_pd(st.mn);
  int cand = 0;
  for (int h = 0; h < 2; ++h)
    cand |= _mm256_movemask_pd(_mm256_or_pd(_mm256_cmp_pd(_mm256_load_pd(yhi + 4 * h), vmx, _CMP_GT_OQ),
                                            _mm256_cmp_pd(_mm256_load_pd(ylo + 4 * h), vmn, _CMP_LT_OQ))) << (4 * h);
  cand &= (1 << valid) - 1;
  if (cand) {
    alignas(32) double av[8], bv[8];
    _mm256_store_pd(av, a[0]); _mm256_store_pd(av + 4, a[1]);
    _mm256_store_pd(bv, b[0]); _mm256_store_pd(bv + 4, b[1]);
    while (cand) {
      const int j = __builtin_ctz(static_cast<unsigned>(cand));
      cand &= cand - 1;
      int qa, qb;
      byte_range<false>(v[j], &qa, &qb);
      const double ya = std::fma(av[j], qa, bv[j]), yb = std::fma(av[j], qb, bv[j]);  // a q exact: one rounding
      st.mn = std::fmin(st.mn, std::fmin(ya, yb));
      st.mx = std::fmax(st.mx, std::fmax(ya, yb));
    }
  }
}

// kBits 4 (Q4_K, 144 bytes) or 5 (Q5_K, 176 bytes: qh[32] before qs, bit 2 j + t of qh[l] the
// fifth bit of element 64 j + 32 t + l).
template <int kBits>
ISA_FN inline bool q4_k_fast_super(const uint8_t* p, Q4KState& st) {
  bool bad = false;
  const double d = f16_fast(p, &bad), dmin = f16_fast(p + 2, &bad);
  if (bad) return false;
  uint8_t sc[8], mn[8];
  scales_k4(p + 4, sc, mn);
  __m256d a[2], b[2];
  a[0] = bytes4_times(sc, d);
  a[1] = bytes4_times(sc + 4, d);
  b[0] = bytes4_times(mn, -dmin);  // -(dmin m): exact
  b[1] = bytes4_times(mn + 4, -dmin);

  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const uint8_t* qs = p + (kBits == 4 ? 16 : 48);
  __m256i v[8];
  for (int g = 0; g < 4; ++g) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * g));
    v[2 * g] = _mm256_and_si256(x, m4);
    v[2 * g + 1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
  }
  if constexpr (kBits == 5) {
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16));
    const __m256i b4 = _mm256_set1_epi8(0x10);
    for (int j = 0; j < 8; ++j)  // bit j of qh[l] to bit 4 (byte-wise: shift left 4 - j or right j - 4)
      v[j] = _mm256_or_si256(v[j], _mm256_and_si256(j <= 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4), b4));
  }
  offset_group<kBits>(v, a, b, 8, st);
  return true;
}


// The chunk's moments from st (n elements), or false when the bound refuses the expansion.
ISA_FN inline bool offset_finish(const Q4KState& st, double N, double lo_hint, double hi_hint, Moments* out) {
  const double P1 = hsum4(st.p1), P2 = hsum4(st.p2), P3 = hsum4(st.p3), P4 = hsum4(st.p4);
  const double M = P1 / N, M2 = M * M;
  const double s1 = std::fma(-N, M, P1);
  const double s2 = P2 - 2 * M * P1 + N * M2;
  const double s3 = P3 - 3 * M * P2 + 3 * M2 * P1 - N * M2 * M;
  const double s4 = P4 - 4 * M * P3 + 6 * M2 * P2 - 4 * M2 * M * P1 + N * M2 * M2;
  constexpr double kRoom = 16384;  // 2^14
  if (!(hsum4(st.w2) + N * M2 <= kRoom * s2) || !(hsum4(st.w4) + N * M2 * M2 <= kRoom * s4)) return false;
  const double mn = st.mn < lo_hint ? st.mn : INFINITY, mx = st.mx > hi_hint ? st.mx : -INFINITY;
  *out = block_moments(N, M, s1, s2, s3, s4, hsum4(st.pa), mn, mx);
  return true;
}

ISA_FN inline void offset_init(Q4KState& st, double lo_hint, double hi_hint) {
  st.p1 = st.p2 = st.p3 = st.p4 = st.pa = st.w2 = st.w4 = _mm256_setzero_pd();
  st.mn = lo_hint;
  st.mx = hi_hint;
}

// Q4_1 (kBits 4, 20-byte blocks: f16 d, f16 m, qs[16]) and Q5_1 (kBits 5, 24 bytes: d, m, u32
// qh, qs[16]): y = d q + m, the blocks taken 8 at a time as the sub-blocks of offset_group.
template <int kBits>
ISA_FN inline bool q_1_group(const uint8_t* p, int valid, Q4KState& st) {
  constexpr int B = kBits == 4 ? 20 : 24;
  bool bad = false;
  alignas(32) double dv[8], mv[8];
  __m256i v[8];
  for (int k = 0; k < 8; ++k) {
    const uint8_t* q = p + B * k;
    dv[k] = f16_fast(q, &bad);
    mv[k] = f16_fast(q + 2, &bad);
    v[k] = kBits == 4 ? nibbles32(q + 4) : _mm256_or_si256(nibbles32(q + 8), fifth_bits(q + 4));
  }
  if (bad) return false;
  const __m256d a[2] = {_mm256_load_pd(dv), _mm256_load_pd(dv + 4)}, b[2] = {_mm256_load_pd(mv), _mm256_load_pd(mv + 4)};
  offset_group<kBits>(v, a, b, valid, st);
  return true;
}

// The chunk of n elements at p of Q4_K, Q5_K (whole super-blocks), Q4_1 or Q5_1 (whole blocks)
// by raw power sums; false when it must take another path.
template <DType T>
ISA_FN bool offset_fast(const uint8_t* p, uint64_t n, double lo_hint, double hi_hint, Moments* out) {
  Q4KState st;
  offset_init(st, lo_hint, hi_hint);
  if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    constexpr int kBits = T == DType::Q4_K ? 4 : 5, kBytes = T == DType::Q4_K ? 144 : 176;
    for (uint64_t i = 0; i < n / 256; ++i)
      if (!q4_k_fast_super<kBits>(p + kBytes * i, st)) return false;
  } else {
    constexpr int kBits = T == DType::Q4_1 ? 4 : 5, B = T == DType::Q4_1 ? 20 : 24;
    const int blocks = static_cast<int>(n / 32);
    int i = 0;
    for (; i + 8 <= blocks; i += 8)
      if (!q_1_group<kBits>(p + B * i, 8, st)) return false;
    if (i < blocks) {  // padding: zero bytes, a = b = 0, out of min and max
      alignas(32) uint8_t tmp[8 * B + 32] = {};
      std::memcpy(tmp, p + B * i, static_cast<size_t>(B) * (blocks - i));
      if (!q_1_group<kBits>(tmp, blocks - i, st)) return false;
    }
  }
  return offset_finish(st, static_cast<double>(n), lo_hint, hi_hint, out);
}

// ---- Q2_K: the counts of each q -------------------------------------------------------------
//
// q takes only the values 0..3, so a sub-block of 16 is known up to the order of its elements by
// the four counts n_q: its values are y_q = d sc q - dmin m (fused, one rounding, as the
// decoders), n_q times each. Three byte compares and popcounts per 32 elements give the counts
// (each 32-byte vector holds two sub-blocks, one per 128-bit lane); the chunk's statistics are
// then those of at most four distinct values per sub-block, weighted by their counts, by the
// corrected two-pass sums the decoded values would take (float64, about the chunk's mean, every
// term of m2 non-negative): as exact as decoding, so nothing to refuse but non-finite scales.

constexpr int kQ2Subs = static_cast<int>(kBlock / 16);

ISA_FN bool acc_q2_k(const uint8_t* p, uint64_t n, Moments* out) {
  const int supers = static_cast<int>(n / 256);
  alignas(32) double y[kQ2Subs * 4], w[kQ2Subs * 4];  // per sub-block: the values and counts of q = 0..3
  const __m256i m3 = _mm256_set1_epi8(0x03), one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
  const __m256d q4 = _mm256_set_pd(3, 2, 1, 0);
  __m256d tot = _mm256_setzero_pd();
  for (int i = 0; i < supers; ++i) {
    const uint8_t* q = p + 84 * i;
    bool bad = false;
    const double d = f16_fast(q + 80, &bad), dmin = f16_fast(q + 82, &bad);
    if (bad) return false;  // the decoding path counts the NaN/Inf
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 16 + 32 * h));
      for (int g = 0; g < 4; ++g) {
        const __m256i v = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * g), m3);
        const uint32_t c1 = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, one)));
        const uint32_t c2 = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, two)));
        const uint32_t c3 = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, m3)));
        for (int lane = 0; lane < 2; ++lane) {
          const int j = 8 * h + 2 * g + lane, k = 4 * (16 * i + j), sh = 16 * lane;
          const int n1 = __builtin_popcount((c1 >> sh) & 0xFFFF), n2 = __builtin_popcount((c2 >> sh) & 0xFFFF);
          const int n3 = __builtin_popcount((c3 >> sh) & 0xFFFF);
          const __m256d wv = _mm256_set_pd(n3, n2, n1, 16 - n1 - n2 - n3);
          const __m256d yv = _mm256_fmadd_pd(_mm256_set1_pd(d * (q[j] & 0xF)), q4, _mm256_set1_pd(-(dmin * (q[j] >> 4))));
          _mm256_store_pd(y + k, yv);
          _mm256_store_pd(w + k, wv);
          tot = _mm256_fmadd_pd(wv, yv, tot);
        }
      }
    }
  }
  const double N = static_cast<double>(n), M = hsum4(tot) / N;
  const __m256d vM = _mm256_set1_pd(M), sign = _mm256_set1_pd(-0.0), zero = _mm256_setzero_pd();
  const __m256d inf = _mm256_set1_pd(INFINITY), ninf = _mm256_set1_pd(-INFINITY);
  __m256d sd = zero, m2 = zero, m3v = zero, m4 = zero, sabs = zero, vmin = inf, vmax = ninf;
  for (int k = 0; k < 4 * 16 * supers; k += 4) {
    const __m256d yv = _mm256_load_pd(y + k), wv = _mm256_load_pd(w + k);
    const __m256d dl = _mm256_sub_pd(yv, vM);
    const __m256d wd = _mm256_mul_pd(wv, dl), wd2 = _mm256_mul_pd(wd, dl);
    sd = _mm256_add_pd(sd, wd);
    m2 = _mm256_add_pd(m2, wd2);
    m3v = _mm256_fmadd_pd(wd2, dl, m3v);
    m4 = _mm256_fmadd_pd(wd2, _mm256_mul_pd(dl, dl), m4);
    sabs = _mm256_fmadd_pd(wv, _mm256_andnot_pd(sign, yv), sabs);
    const __m256d present = _mm256_cmp_pd(wv, zero, _CMP_GT_OQ);
    vmin = _mm256_min_pd(vmin, _mm256_blendv_pd(inf, yv, present));
    vmax = _mm256_max_pd(vmax, _mm256_blendv_pd(ninf, yv, present));
  }
  double lmin[4], lmax[4];
  _mm256_storeu_pd(lmin, vmin);
  _mm256_storeu_pd(lmax, vmax);
  double mn = INFINITY, mx = -INFINITY;
  for (int k = 0; k < 4; ++k) { mn = lmin[k] < mn ? lmin[k] : mn; mx = lmax[k] > mx ? lmax[k] : mx; }
  *out = block_moments(N, M, hsum4(sd), hsum4(m2), hsum4(m3v), hsum4(m4), hsum4(sabs), mn, mx);
  return true;
}

// ---- decoding to float64 --------------------------------------------------------------------

// Writes a q + b for 32 bytes of quants q (signed if kSigned) at x, as doubles; a, b = a_lo,
// b_lo for bytes 0..15, a_hi, b_hi for 16..31.
template <bool kSigned>
ISA_FN inline void affine32(__m256i x, double a_lo, double a_hi, double b_lo, double b_hi, double* out) {
  for (int k = 0; k < 4; ++k) {
    const __m256d va = _mm256_set1_pd(k < 2 ? a_lo : a_hi), vb = _mm256_set1_pd(k < 2 ? b_lo : b_hi);
    const __m128i b8 = k < 2 ? _mm256_castsi256_si128(x) : _mm256_extracti128_si256(x, 1);
    const __m128i part = (k & 1) ? _mm_srli_si128(b8, 8) : b8;
    const __m256i w = kSigned ? _mm256_cvtepi8_epi32(part) : _mm256_cvtepu8_epi32(part);
    const __m256d lo = _mm256_cvtepi32_pd(_mm256_castsi256_si128(w));
    const __m256d hi = _mm256_cvtepi32_pd(_mm256_extracti128_si256(w, 1));
    // a q is exact, so the fused multiply-add rounds a q + b once, as the scalar decoder does
    _mm256_storeu_pd(out + 8 * k, _mm256_fmadd_pd(va, lo, vb));
    _mm256_storeu_pd(out + 8 * k + 4, _mm256_fmadd_pd(va, hi, vb));
  }
}

// Q8_0, Q4_0, Q5_0, MXFP4: y = s q (sym_quants gives q in element order).
template <DType T>
ISA_FN bool decode_sym(const uint8_t* p, uint64_t blocks, double* out) {
  constexpr int B = Sym<T>::kBytes;
  bool bad = false;
  for (uint64_t i = 0; i < blocks; ++i) {
    const uint8_t* q = p + B * i;
    const double d = T == DType::MXFP4 ? std::ldexp(1.0, static_cast<int>(q[0]) - 128) : f16_fast(q, &bad);
    affine32<true>(sym_quants<T>(q), d, d, 0.0, 0.0, out + 32 * i);  // exact
  }
  return bad;
}

// Q4_1, Q5_1: y = d q + m.
template <int kBits>
ISA_FN bool decode_q_1(const uint8_t* p, uint64_t blocks, double* out) {
  constexpr int B = kBits == 4 ? 20 : 24;
  bool bad = false;
  for (uint64_t i = 0; i < blocks; ++i) {
    const uint8_t* q = p + B * i;
    const double d = f16_fast(q, &bad), m = f16_fast(q + 2, &bad);
    const __m256i v = kBits == 4 ? nibbles32(q + 4) : _mm256_or_si256(nibbles32(q + 8), fifth_bits(q + 4));
    affine32<false>(v, d, d, m, m, out + 32 * i);
  }
  return bad;
}

// Q4_K, Q5_K: y = d sc q - dmin m per sub-block of 32.
template <int kBits>
ISA_FN bool decode_q4_k(const uint8_t* p, uint64_t blocks, double* out) {
  constexpr int B = kBits == 4 ? 144 : 176;
  bool bad = false;
  const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
  for (uint64_t i = 0; i < blocks; ++i) {
    const uint8_t* q = p + B * i;
    const double d = f16_fast(q, &bad), dmin = f16_fast(q + 2, &bad);
    uint8_t sc[8], mn[8];
    scales_k4(q + 4, sc, mn);
    const __m256i qh = kBits == 5 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 16)) : _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + (kBits == 4 ? 16 : 48) + 32 * (j / 2)));
      __m256i v = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(x, 4) : x, m4);
      if constexpr (kBits == 5)  // bit j of qh[l] to bit 4
        v = _mm256_or_si256(v, _mm256_and_si256(j <= 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4), b4));
      const double a = d * sc[j];
      affine32<false>(v, a, a, -(dmin * mn[j]), -(dmin * mn[j]), out + 256 * i + 32 * j);
    }
  }
  return bad;
}

// Q6_K, Q3_K: y = (d sc) u per sub-block of 16.
template <DType T>
ISA_FN bool decode_k16(const uint8_t* p, uint64_t blocks, double* out) {
  constexpr int B = T == DType::Q6_K ? 210 : 110;
  bool bad = false;
  for (uint64_t i = 0; i < blocks; ++i) {
    __m256i v[8];
    double d;
    int8_t sc[16];
    bad = !k16_load<T>(p + B * i, v, &d, sc) || bad;
    for (int r = 0; r < 8; ++r)  // register r = 4 h + g: elements 32 r .. 32 r + 31, sub-blocks 2 r, 2 r + 1
      affine32<true>(v[r], d * sc[2 * r], d * sc[2 * r + 1], 0.0, 0.0, out + 256 * i + 32 * r);  // exact
  }
  return bad;
}

// Q2_K: scales[16] (low nibble: scale, high: min), qs[64], f16 d, f16 dmin; element
// 128 h + 32 g + l is bits 2g..2g+1 of qs[32 h + l], sub-block e / 16: y = (d sc) q - dmin m.
ISA_FN bool decode_q2_k(const uint8_t* p, uint64_t blocks, double* out) {
  bool bad = false;
  const __m256i m3 = _mm256_set1_epi8(0x03);
  for (uint64_t i = 0; i < blocks; ++i) {
    const uint8_t* q = p + 84 * i;
    const double d = f16_fast(q + 80, &bad), dmin = f16_fast(q + 82, &bad);
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 16 + 32 * h));
      for (int g = 0; g < 4; ++g) {
        const int j = 8 * h + 2 * g;  // the sub-blocks of bytes 0..15 and 16..31
        affine32<false>(_mm256_and_si256(_mm256_srli_epi16(qs, 2 * g), m3), d * (q[j] & 0xF), d * (q[j + 1] & 0xF),
                        -(dmin * (q[j] >> 4)), -(dmin * (q[j + 1] >> 4)), out + 256 * i + 128 * h + 32 * g);
      }
    }
  }
  return bad;
}

}  // namespace

bool quant_accumulate_avx2(DType d, const uint8_t* p, uint64_t n, double lo_hint, double hi_hint, Moments* out) {
  switch (d) {
    case DType::Q8_0: return sym_chunk<DType::Q8_0>(p, n, lo_hint, hi_hint, out) || acc_q8_0(p, n, out);
    case DType::Q4_0: return sym_chunk<DType::Q4_0>(p, n, lo_hint, hi_hint, out) || acc_q4_0(p, n, out);
    case DType::MXFP4: return sym_chunk<DType::MXFP4>(p, n, lo_hint, hi_hint, out);
    case DType::Q4_K: return offset_fast<DType::Q4_K>(p, n, lo_hint, hi_hint, out) || acc_q4_k(p, n, out);
    case DType::Q5_K: return offset_fast<DType::Q5_K>(p, n, lo_hint, hi_hint, out);
    case DType::Q5_0: return sym_chunk<DType::Q5_0>(p, n, lo_hint, hi_hint, out);
    case DType::Q4_1: return offset_fast<DType::Q4_1>(p, n, lo_hint, hi_hint, out);
    case DType::Q5_1: return offset_fast<DType::Q5_1>(p, n, lo_hint, hi_hint, out);
    case DType::Q6_K: return q6_k_fast<DType::Q6_K>(p, n, lo_hint, hi_hint, out);
    case DType::Q3_K: return q6_k_fast<DType::Q3_K>(p, n, lo_hint, hi_hint, out);
    case DType::Q2_K: return acc_q2_k(p, n, out);
    default: return false;
  }
}

bool quant_decode_avx2(DType d, const uint8_t* p, uint64_t blocks, double* out, bool* bad) {
  switch (d) {
    case DType::Q8_0: *bad = decode_sym<DType::Q8_0>(p, blocks, out); break;
    case DType::Q4_0: *bad = decode_sym<DType::Q4_0>(p, blocks, out); break;
    case DType::Q5_0: *bad = decode_sym<DType::Q5_0>(p, blocks, out); break;
    case DType::MXFP4: *bad = decode_sym<DType::MXFP4>(p, blocks, out); break;
    case DType::Q4_1: *bad = decode_q_1<4>(p, blocks, out); break;
    case DType::Q5_1: *bad = decode_q_1<5>(p, blocks, out); break;
    case DType::Q4_K: *bad = decode_q4_k<4>(p, blocks, out); break;
    case DType::Q5_K: *bad = decode_q4_k<5>(p, blocks, out); break;
    case DType::Q6_K: *bad = decode_k16<DType::Q6_K>(p, blocks, out); break;
    case DType::Q3_K: *bad = decode_k16<DType::Q3_K>(p, blocks, out); break;
    case DType::Q2_K: *bad = decode_q2_k(p, blocks, out); break;
    default: return false;
  }
  if (*bad) {  // a non-finite scale (Inf * 0 is NaN, and so on): check the values themselves
    const uint64_t n = blocks * quant_block_elems(d);
    double q = 0;
    for (uint64_t i = 0; i < n; ++i) q += out[i] - out[i];
    *bad = q != q;
  }
  return true;
}

}  // namespace mother

#include "isa_end.h"

namespace mother {
bool quant_uses_avx2(const Kernels* k) { return k != nullptr && (k == kernels_avx2() || k == kernels_avx512()); }
}  // namespace mother

#else
namespace mother {
bool quant_accumulate_avx2(DType, const uint8_t*, uint64_t, double, double, Moments*) { return false; }
bool quant_decode_avx2(DType, const uint8_t*, uint64_t, double*, bool*) { return false; }
bool quant_uses_avx2(const Kernels*) { return false; }
}  // namespace mother
#endif
