#include "view_decode.h"

#include <algorithm>
#include <cstring>

namespace mother {

namespace {

// Stored elements [first, first + n), no row map.
bool decode_stored(const Kernels* k, const TensorView& v, uint64_t first, uint64_t n, double* out) {
  if (n == 0) return false;
  if (!dtype_is_block(v.dtype)) return k->decode_f64(v.dtype, v.data(first), n, out);
  const uint64_t be = v.block_elems;
  bool bad = false;
  const uint64_t head = first % be;
  if (head != 0) {  // the first block is cut at its start
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

bool decode_view_f64(const Kernels* k, const TensorView& v, uint64_t first, uint64_t n, double* out) {
  if (!v.row_map) return decode_stored(k, v, first, n, out);
  const uint64_t rows = v.shape.empty() ? 1 : v.shape[0];
  const uint64_t row_elems = rows > 0 ? v.count / rows : 0;
  bool bad = false;
  const uint64_t end = first + n;
  for (uint64_t e = first; e < end;) {
    const uint64_t r = e / row_elems, c = e % row_elems;
    const uint64_t len = std::min<uint64_t>(row_elems - c, end - e);
    const uint64_t stored = static_cast<uint64_t>((*v.row_map)[r]) * row_elems + c;
    bad = decode_stored(k, v, stored, len, out + (e - first)) || bad;
    e += len;
  }
  return bad;
}

bool needs_cpu_decode(const Model& model) {
  for (const TensorView& t : model.tensors)
    if (t.row_map || dtype_is_block(t.dtype)) return true;
  return false;
}

}  // namespace mother
