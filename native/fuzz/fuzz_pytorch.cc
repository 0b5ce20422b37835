// libFuzzer target for the PyTorch checkpoint reader: the ZIP reader, the restricted unpickler
// and both layouts (native/formats/zip.cc, pickle.cc, pytorch.cc).
//
// An input that starts like a checkpoint (a ZIP archive or the legacy magic number) is the
// complete contents of a .pt file and goes to mother::parse_pytorch; any other input is a bare
// pickle, unpickled with the PyTorch allow-list (storages accepted at the size their persistent
// ids state). A mother::Error is the expected outcome for malformed input; anything else (a
// crash, a sanitizer report, another exception type, a hang) is a bug. Accepted checkpoints are
// checked for the invariants the engines rely on: every readable tensor lies inside the file
// and spans exactly count x itemsize bytes.
//
// Build and run: FUZZ_TARGET=pytorch npm run fuzz   (see native/fuzz/run.sh)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../core/dtype.h"
#include "../core/error.h"
#include "../formats/pytorch.h"

namespace {

[[noreturn]] void invariant_failed(const char* what) {
  std::fprintf(stderr, "fuzz_pytorch: invariant violated: %s\n", what);
  std::abort();
}

void check_accepted(const mother::TorchCheckpoint& c, uint64_t size) {
  uint64_t prev = 0;
  for (const auto& t : c.tensors) {
    if (t.offset < prev) invariant_failed("tensors not in file order");
    prev = t.offset;
    uint64_t count = 1;
    for (uint64_t d : t.shape)
      if (__builtin_mul_overflow(count, d, &count)) invariant_failed("shape product overflow accepted");
    if (count != t.count) invariant_failed("count != product of shape");
    if (t.offset > size || t.bytes > size - t.offset) invariant_failed("tensor bytes outside the file");
    if (t.unreadable.empty() && t.bytes != count * (mother::dtype_bits(t.dtype) / 8)) invariant_failed("readable tensor of the wrong byte size");
    if (t.name.empty()) invariant_failed("unnamed tensor");
  }
}

void check_error(const mother::Error& e, const char* path) {
  if (e.file() != path) invariant_failed("error without the file name");
  const std::string msg = e.what();
  if (msg.rfind(std::string(path) + ": ", 0) != 0) invariant_failed("error message does not start with the path");
  if (std::string(mother::error_code_name(e.code())) == "ERR_UNKNOWN") invariant_failed("unnamed error code");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint64_t n = static_cast<uint64_t>(size);
  if (mother::looks_like_pytorch(data, n)) {
    try {
      check_accepted(mother::parse_pytorch(data, n, "fuzz.pt"), n);
    } catch (const mother::Error& e) {
      check_error(e, "fuzz.pt");
    }
  } else {
    try {
      mother::unpickle_state_dict_for_fuzzing(data, n, "fuzz.pkl");
    } catch (const mother::Error& e) {
      check_error(e, "fuzz.pkl");
    }
  }
  // Any other exception type propagates and aborts the run: the reader must only throw Error.
  return 0;
}
