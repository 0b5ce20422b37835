// libFuzzer target for the safetensors header reader.
//
// The input is treated as the complete contents of a .safetensors file and handed to
// mother::parse_header. A mother::Error is the expected outcome for malformed input; anything
// else (a crash, a sanitizer report, another exception type, a hang) is a bug. When the
// header is accepted, the invariants the rest of the reader relies on are checked too, so a
// header that "parses" into something inconsistent is caught as well.
//
// Build and run: npm run fuzz   (see native/fuzz/run.sh)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../core/dtype.h"
#include "../core/error.h"
#include "../formats/safetensors.h"

namespace {

[[noreturn]] void invariant_failed(const char* what) {
  std::fprintf(stderr, "fuzz_header: invariant violated: %s\n", what);
  std::abort();
}

void check_accepted(const mother::Header& h, uint64_t size) {
  if (h.header_len > mother::kMaxHeaderBytes) invariant_failed("header_len above the cap");
  if (h.data_start != 8 + h.header_len) invariant_failed("data_start != 8 + header_len");
  if (h.data_start > size) invariant_failed("data_start past the end of the file");
  uint64_t cursor = 0;
  for (const auto& t : h.tensors) {
    if (t.begin != cursor) invariant_failed("tensors do not tile the data buffer");
    if (t.end < t.begin) invariant_failed("end < begin accepted");
    uint64_t count = 1;
    for (uint64_t d : t.shape)
      if (__builtin_mul_overflow(count, d, &count)) invariant_failed("shape product overflow accepted");
    if (count != t.count) invariant_failed("count != product of shape");
    uint64_t bits;
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(mother::dtype_bits(t.dtype)), &bits))
      invariant_failed("byte size overflow accepted");
    if (bits % 8 != 0 || bits / 8 != t.end - t.begin) invariant_failed("size mismatch accepted");
    cursor = t.end;
  }
  if (cursor != size - h.data_start) invariant_failed("data buffer does not end at the end of the file");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    mother::Header h = mother::parse_header(data, static_cast<uint64_t>(size), "fuzz.safetensors");
    check_accepted(h, static_cast<uint64_t>(size));
  } catch (const mother::Error& e) {
    // Every rejection must say which file and why.
    if (e.file() != "fuzz.safetensors") invariant_failed("error without the file name");
    const std::string msg = e.what();
    if (msg.rfind("fuzz.safetensors: ", 0) != 0) invariant_failed("error message does not start with the path");
    if (std::string(mother::error_code_name(e.code())) == "ERR_UNKNOWN") invariant_failed("unnamed error code");
  }
  // Any other exception type propagates and aborts the run: parse_header must only throw Error.
  return 0;
}
