#include "decode.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "../core/error.h"

namespace mother {

namespace {

uint64_t page_size() {
  static const uint64_t ps = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return ps;
}

// The stored row of logical row r, checked.
uint64_t stored_row(const TensorView& v, uint64_t r) {
  const auto& map = *v.row_map;
  if (r >= map.size() || map[r] >= map.size())
    throw Error(ErrorCode::Internal, "", v.name, "row map of " + v.name + " does not cover row " + std::to_string(r));
  return map[r];
}

// The stored element span [lo, hi) of the rows that logical elements [first, first + n) lie in.
void stored_span(const TensorView& v, uint64_t first, uint64_t n, uint64_t* lo, uint64_t* hi) {
  const uint64_t re = view_row_elems(v);
  if (!v.row_map || re == 0 || n == 0) {
    *lo = first;
    *hi = first + n;
    return;
  }
  uint64_t a = UINT64_MAX, b = 0;
  for (uint64_t r = first / re; r * re < first + n; ++r) {
    const uint64_t s = stored_row(v, r);
    a = std::min(a, s);
    b = std::max(b, s + 1);
  }
  *lo = a * re;
  *hi = std::min(b * re, v.count);
}

// Elements [first, first + n) of an affine quantised view (DecodeKind::AffineU8 / AffineI8):
// (q - zero[c]) x scale[c], channel by channel (exact in float64: tensor_view.h). Never NaN.
template <typename Q>
void decode_affine(const TensorView& v, uint64_t first, uint64_t n, double* out) {
  const AffineQuant& a = *v.affine;
  const Q* q = reinterpret_cast<const Q*>(v.data(first));
  const uint64_t channels = a.scale.size();
  if (channels == 1) {
    const double s = a.scale[0];
    const int32_t z = a.zero[0];
    for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<double>(static_cast<int32_t>(q[i]) - z) * s;
    return;
  }
  uint64_t c = (first / a.inner) % channels, in = first % a.inner;
  for (uint64_t i = 0; i < n;) {
    const uint64_t len = std::min(n - i, a.inner - in);
    const double s = a.scale[c];
    const int32_t z = a.zero[c];
    for (uint64_t j = i; j < i + len; ++j) out[j] = static_cast<double>(static_cast<int32_t>(q[j]) - z) * s;
    i += len;
    in = 0;
    if (++c == channels) c = 0;
  }
}

void decode_affine_any(const TensorView& v, uint64_t first, uint64_t n, double* out) {
  if (v.decode == DecodeKind::AffineI8) decode_affine<int8_t>(v, first, n, out);
  else decode_affine<uint8_t>(v, first, n, out);
}

// Stored elements [first, first + n) of a view, no row map: the kernel's decoder for plain
// dtypes, the block decoders (quant.h) for the GGUF block types. A range that starts inside a
// block (only a row of a row-mapped view can) decodes that block into a small buffer.
bool decode_stored(const Kernels* k, const TensorView& v, uint64_t first, uint64_t n, double* out) {
  if (n == 0) return false;
  if (v.affine) {
    decode_affine_any(v, first, n, out);
    return false;
  }
  if (!dtype_is_block(v.dtype)) return k->decode_f64(v.dtype, v.data(first), static_cast<size_t>(n), out);
  const uint64_t be = v.block_elems;
  bool bad = false;
  const uint64_t head = first % be;
  if (head != 0) {
    double tmp[256];
    quant_decode_block(v.dtype, v.map->data() + v.byte_offset(first - head), tmp);
    const uint64_t take = std::min<uint64_t>(be - head, n);
    std::memcpy(out, tmp + head, take * sizeof(double));
    for (uint64_t i = 0; i < take; ++i) bad = bad || !(out[i] - out[i] == 0);
    first += take;
    out += take;
    n -= take;
  }
  if (n > 0) bad = quant_decode_f64(k, v.dtype, v.data(first), n, out) || bad;
  return bad;
}

}  // namespace

bool needs_cpu_decode(const Model& model) {
  for (const TensorView& t : model.tensors)
    if (dtype_is_block(t.dtype) || t.affine) return true;
  return false;
}

uint64_t view_row_elems(const TensorView& v) {
  if (v.shape.empty()) return v.count;
  return v.shape[0] > 0 ? v.count / v.shape[0] : 0;
}

uint64_t view_align(const TensorView& v) {
  const uint64_t b = v.block_elems > 0 ? v.block_elems : 1;
  const uint64_t re = view_row_elems(v);
  if (!v.row_map || re == 0) return b;
  return std::lcm(b, re);
}

bool decode_f64(const Kernels* k, const TensorView& v, uint64_t first, uint64_t n, double* out) {
  if (n == 0) return false;
  const uint64_t re = view_row_elems(v);
  if (!v.row_map || re == 0) return decode_stored(k, v, first, n, out);
  // Logical rows through the map, one kernel call per row (first is on a row boundary).
  bool bad = false;
  for (uint64_t e = 0; e < n;) {
    const uint64_t r = (first + e) / re, in_row = (first + e) - r * re;
    const uint64_t len = std::min(n - e, re - in_row);
    bad |= decode_stored(k, v, stored_row(v, r) * re + in_row, len, out + e);
    e += len;
  }
  return bad;
}

bool decode_f64_center(const Kernels* k, const TensorView& v, uint64_t first, uint64_t n, const double* ref, double* out,
                       double* sum) {
  *sum = 0;
  if (n == 0) return false;
  if (!dtype_is_block(v.dtype) && !v.affine && (!v.row_map || view_row_elems(v) == 0)) return k->decode_center(v.dtype, v.data(first), static_cast<size_t>(n), ref, out, sum);
  const bool bad = decode_f64(k, v, first, n, out);
  *sum = k->center(out, ref, static_cast<size_t>(n), out);
  return bad;
}

void accumulate_view(const Kernels* k, const TensorView& v, uint64_t first, uint64_t n, Moments* acc) {
  if (n == 0) return;
  if (v.affine) {  // decoded in chunks of kBlock, reduced with the float64 kernel (the values are exact)
    alignas(64) double buf[kBlock];
    for (uint64_t i = 0; i < n; i += kBlock) {
      const uint64_t len = std::min<uint64_t>(kBlock, n - i);
      decode_affine_any(v, first + i, len, buf);
      k->accumulate(DType::F64, reinterpret_cast<const uint8_t*>(buf), len, acc);
    }
    return;
  }
  accumulate_any(k, v.dtype, v.data(first), n, acc);
}

void populate_view(const TensorView& v, uint64_t first, uint64_t n) {
  uint64_t lo, hi;
  stored_span(v, first, n, &lo, &hi);
  if (hi > lo) v.populate(lo, hi - lo);
}

void release_view(const TensorView& v, uint64_t first, uint64_t n) {
  uint64_t lo, hi;
  stored_span(v, first, n, &lo, &hi);
  if (hi > lo) v.release(lo, hi - lo);
}

void release_view_pages(const TensorView& v, uint64_t first, uint64_t n) {
  uint64_t lo, hi;
  stored_span(v, first, n, &lo, &hi);
  if (hi <= lo || !v.map) return;
  const uint64_t ps = page_size();
  const uint64_t b = v.byte_offset(lo) / ps * ps;
  const uint64_t e = (v.byte_offset(lo) + v.byte_len(hi - lo) + ps - 1) / ps * ps;
  v.map->release(b, e - b);
}

}  // namespace mother
