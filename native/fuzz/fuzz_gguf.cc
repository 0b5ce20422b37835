// libFuzzer target for the GGUF header reader and the block decoders.
//
// The input is treated as the complete contents of a .gguf file and handed to
// mother::parse_gguf_header. A mother::Error is the expected outcome for malformed input; anything
// else (a crash, a sanitizer report, another exception type, a hang) is a bug. When the header
// is accepted, the invariants the rest of the reader relies on are checked, and every tensor
// with statistics is decoded and reduced by every kernel set this CPU runs, so the decoders
// and the fused statistics see arbitrary blocks (scales and quants) from the fuzzer.
//
// Build and run: npm run fuzz   (see native/fuzz/run.sh)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../core/dtype.h"
#include "../core/error.h"
#include "../formats/gguf.h"
#include "../stats/dispatch.h"
#include "../stats/kernels.h"

namespace {

[[noreturn]] void invariant_failed(const char* what) {
  std::fprintf(stderr, "fuzz_gguf: invariant violated: %s\n", what);
  std::abort();
}

void check_accepted(const mother::GgufHeader& h, uint64_t size) {
  if (h.version != 2 && h.version != 3) invariant_failed("version other than 2 or 3 accepted");
  if (h.alignment == 0 || (h.alignment & (h.alignment - 1)) != 0) invariant_failed("alignment not a power of two");
  if (h.data_start % h.alignment != 0) invariant_failed("data section not aligned");
  if (h.metadata.size() != h.kv_count) invariant_failed("key/value count");
  if (h.tensors.size() != h.tensor_count) invariant_failed("tensor count");
  uint64_t expected = 0;
  for (const auto& t : h.tensors) {
    if (t.name.empty() || t.name.size() > mother::kGgufMaxNameBytes) invariant_failed("tensor name length");
    if (t.ne.size() > mother::kGgufMaxDims) invariant_failed("more than 4 dimensions");
    uint64_t count = 1;
    for (uint64_t d : t.ne)
      if (__builtin_mul_overflow(count, d, &count)) invariant_failed("dimension product overflow accepted");
    if (count != t.count) invariant_failed("count != product of dimensions");
    uint32_t be, bb;
    mother::dtype_block(t.dtype, &be, &bb);
    if ((t.ne.empty() ? 1 : t.ne[0]) % be != 0) invariant_failed("first dimension not whole blocks");
    if (t.count / be * bb != t.bytes) invariant_failed("byte size");
    if (t.offset != expected) invariant_failed("tensor data not in order");
    if (t.offset % h.alignment != 0) invariant_failed("offset not aligned");
    if (h.data_start > size || t.offset + t.bytes > size - h.data_start) invariant_failed("tensor data past the end of the file");
    expected = t.offset + t.bytes;
    expected += (h.alignment - expected % h.alignment) % h.alignment;
  }
}

// Decodes and reduces (a bounded prefix of) every tensor with statistics with every kernel set.
void exercise_kernels(const mother::GgufHeader& h, const uint8_t* data) {
  static const std::vector<const mother::Kernels*> sets = mother::available_kernels();
  std::vector<double> buf;
  for (const auto& t : h.tensors) {
    if (!mother::dtype_has_stats(t.dtype) || t.count == 0) continue;
    uint32_t be, bb;
    mother::dtype_block(t.dtype, &be, &bb);
    uint64_t n = t.count < (1u << 15) ? t.count : (1u << 15);
    n -= n % be;
    if (n == 0) continue;
    const uint8_t* p = data + h.data_start + t.offset;
    buf.resize(n);
    for (const mother::Kernels* k : sets) {
      mother::Moments m;
      mother::accumulate_any(k, t.dtype, p, n, &m);
      if (m.n + static_cast<double>(m.nan + m.inf) != static_cast<double>(n)) invariant_failed("moments do not count every element");
      if (m.n > 0 && !(m.min <= m.max)) invariant_failed("min > max");
      k->decode_f64(t.dtype, p, n, buf.data());
      if (mother::dtype_is_block(t.dtype)) mother::quant_decode_f64(k, t.dtype, p, n, buf.data());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    mother::GgufHeader h = mother::parse_gguf_header(data, static_cast<uint64_t>(size), "fuzz.gguf");
    check_accepted(h, static_cast<uint64_t>(size));
    exercise_kernels(h, data);
  } catch (const mother::Error& e) {
    if (e.file() != "fuzz.gguf") invariant_failed("error without the file name");
    const std::string msg = e.what();
    if (msg.rfind("fuzz.gguf: ", 0) != 0) invariant_failed("error message does not start with the path");
  }
  // Any other exception type propagates and aborts the run: parse_gguf_header only throws Error.
  return 0;
}
