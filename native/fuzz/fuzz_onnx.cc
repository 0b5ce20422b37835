// libFuzzer target for the protobuf wire reader and the ONNX reader.
//
// The input is treated as the complete contents of a .onnx file. First the protobuf reader alone
// walks it as a schema-less message (every length-delimited field tried as a sub-message, a few
// levels deep): every field it returns must lie inside its message, and the only exceptions
// allowed are mother::Errors with a protobuf code. Then mother::parse_onnx reads it as a
// ModelProto: a mother::Error is the expected outcome for malformed input; when the model is
// accepted, the invariants the reader's views rely on are checked (tensor bytes inside the file
// or the decoded copy, sizes = dims x data_type, names unique, the decode cap held, each
// quantised weight paired with one scale and zero point of checked dtypes, shapes and values).
//
// Build and run: FUZZ_TARGET=onnx npm run fuzz   (see native/fuzz/run.sh)
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "../core/dtype.h"
#include "../core/error.h"
#include "../formats/onnx.h"
#include "../formats/protobuf.h"

namespace {

const std::string kPath = "fuzz.onnx";

[[noreturn]] void invariant_failed(const char* what) {
  std::fprintf(stderr, "fuzz_onnx: invariant violated: %s\n", what);
  std::abort();
}

void check_error(const mother::Error& e) {
  if (e.file() != kPath) invariant_failed("error without the file name");
  if (std::string(e.what()).rfind(kPath + ": ", 0) != 0) invariant_failed("error message does not start with the path");
  if (std::string(mother::error_code_name(e.code())) == "ERR_UNKNOWN") invariant_failed("unnamed error code");
  if (e.code() == mother::ErrorCode::Internal) invariant_failed("ERR_INTERNAL raised on input");
}

bool is_protobuf_code(mother::ErrorCode c) {
  using mother::ErrorCode;
  return c == ErrorCode::ProtobufTruncated || c == ErrorCode::ProtobufVarint || c == ErrorCode::ProtobufLength ||
         c == ErrorCode::ProtobufTag || c == ErrorCode::ProtobufDepth;
}

void walk(const mother::pb::Cursor& msg, int levels) {
  mother::pb::Cursor cur = msg;
  mother::pb::Field f;
  try {
    while (cur.next(&f)) {
      if (f.offset < msg.begin() || f.offset > msg.end() || f.length > msg.end() - f.offset) invariant_failed("field outside its message");
      if (f.wire == mother::pb::Wire::Len && levels > 0) walk(cur.sub(f, "Message"), levels - 1);
    }
  } catch (const mother::Error& e) {
    check_error(e);
    if (!is_protobuf_code(e.code())) invariant_failed("the wire reader raised a non-protobuf code");
  }
}

void check_accepted(const mother::OnnxModel& m, uint64_t size) {
  if (m.decoded.size() > mother::kOnnxMaxDecodedBytes) invariant_failed("decoded copies above the cap");
  std::set<std::string> names, keys;
  for (const auto& kv : m.metadata)
    if (!keys.insert(kv.first).second) invariant_failed("duplicate metadata key accepted");
  for (const mother::OnnxTensor& t : m.tensors) {
    if (!names.insert(t.name).second) invariant_failed("duplicate tensor name accepted");
    if (t.name.empty()) invariant_failed("empty tensor name accepted");
    if (t.storage == mother::OnnxStorage::Skipped) {
      if (t.skipped.empty()) invariant_failed("tensor skipped without a reason");
      continue;
    }
    if (t.shape.size() > mother::kOnnxMaxDims) invariant_failed("too many dims accepted");
    uint64_t count = 1;
    for (uint64_t d : t.shape) {
      if (static_cast<int64_t>(d) < 0) invariant_failed("negative dim accepted");
      if (__builtin_mul_overflow(count, d, &count)) invariant_failed("dims product overflow accepted");
    }
    if (count != t.count) invariant_failed("count != product of dims");
    uint64_t bits;
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(mother::dtype_bits(t.dtype)), &bits)) invariant_failed("byte size overflow accepted");
    if (bits % 8 != 0 || bits / 8 != t.bytes) invariant_failed("bytes != dims x dtype");
    switch (t.storage) {
      case mother::OnnxStorage::InFile:
        if (t.offset > size || t.bytes > size - t.offset) invariant_failed("tensor bytes outside the file");
        break;
      case mother::OnnxStorage::Decoded:
        if (t.offset > m.decoded.size() || t.bytes > m.decoded.size() - t.offset) invariant_failed("tensor bytes outside the decoded copy");
        break;
      case mother::OnnxStorage::External: {
        uint64_t end;
        if (__builtin_add_overflow(t.offset, t.bytes, &end)) invariant_failed("external range overflow accepted");
        const std::string& p = t.location;
        if (p.empty() || p[0] == '/' || p.find('\0') != std::string::npos) invariant_failed("absolute or empty external location accepted");
        size_t start = 0;
        for (;;) {  // every part between slashes: not empty, not ".."
          const size_t slash = p.find('/', start);
          const std::string part = p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
          if (part.empty() || part == "..") invariant_failed("external location outside the model's folder accepted");
          if (slash == std::string::npos) break;
          start = slash + 1;
        }
        break;
      }
      case mother::OnnxStorage::Skipped:
        break;
    }
  }
  // Quantised weights: each pairs one scale and one zero point, of the checked dtypes and shapes.
  std::vector<int> claimed(m.tensors.size(), 0);
  for (const mother::OnnxTensor& q : m.tensors) {
    if (q.role != mother::OnnxRole::QuantData) continue;
    const mother::OnnxQuant& p = q.quant;
    if (p.scale >= m.tensors.size() || p.zero >= m.tensors.size()) invariant_failed("quantised weight pairs a tensor out of range");
    const mother::OnnxTensor& s = m.tensors[p.scale];
    const mother::OnnxTensor& z = m.tensors[p.zero];
    if (s.role != mother::OnnxRole::QuantScale || z.role != mother::OnnxRole::QuantZero) invariant_failed("scale or zero point without its role");
    ++claimed[p.scale];
    ++claimed[p.zero];
    if (q.dtype != mother::DType::U8 && q.dtype != mother::DType::I8) invariant_failed("quantised weight not U8 / I8 accepted");
    if (z.dtype != q.dtype) invariant_failed("zero point of another dtype accepted");
    if (s.dtype != mother::DType::F32 && s.dtype != mother::DType::F16 && s.dtype != mother::DType::BF16) invariant_failed("scale of a non-float dtype accepted");
    if (s.shape.size() > 1 || z.shape != s.shape) invariant_failed("scale / zero point shape accepted");
    if (p.axis < 0) {
      if (s.count != 1) invariant_failed("per-tensor quantisation with several scales");
    } else {
      if (static_cast<uint64_t>(p.axis) >= q.shape.size() || q.shape[p.axis] != s.count) invariant_failed("per-channel axis does not match the scales");
      uint64_t inner = 1;
      for (size_t d = static_cast<size_t>(p.axis) + 1; d < q.shape.size(); ++d) inner *= q.shape[d];
      if (inner != p.inner) invariant_failed("per-channel inner size wrong");
    }
    if (p.view.empty() || (p.view != q.name && names.count(p.view))) invariant_failed("float view name taken");
    const bool external = s.storage == mother::OnnxStorage::External || z.storage == mother::OnnxStorage::External;
    if (p.values == external) invariant_failed("scales read although external, or not read although in the file");
    if (p.values) {
      if (p.scales.size() != s.count || p.zeros.size() != z.count) invariant_failed("scale / zero point values of the wrong count");
      for (double v : p.scales)
        if (!(std::isfinite(v) && v > 0)) invariant_failed("scale not finite and > 0 accepted");
    }
  }
  for (size_t i = 0; i < m.tensors.size(); ++i)
    if ((m.tensors[i].role == mother::OnnxRole::QuantScale || m.tensors[i].role == mother::OnnxRole::QuantZero) && claimed[i] != 1)
      invariant_failed("scale or zero point paired with no weight or with several");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  walk(mother::pb::Cursor(data, static_cast<uint64_t>(size), kPath, "Message"), 6);
  try {
    mother::OnnxModel m = mother::parse_onnx(data, static_cast<uint64_t>(size), kPath);
    check_accepted(m, static_cast<uint64_t>(size));
  } catch (const mother::Error& e) {
    check_error(e);
  }
  // Any other exception type propagates and aborts the run: parse_onnx must only throw Error.
  return 0;
}
