// safetensors reader: validates a header exactly as strictly as the reference reader
// (huggingface/safetensors) does, and more (duplicate keys), without copying tensor data.
// Its Reader (kSafetensorsReader, registered in registry.cc) claims *.safetensors files.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/dtype.h"

namespace mother {

constexpr uint64_t kMaxHeaderBytes = 100000000;  // the reference reader's cap

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the data buffer
  uint64_t end = 0;
  uint64_t count = 0;  // number of elements
};

struct Header {
  uint64_t header_len = 0;   // N
  uint64_t data_start = 0;   // 8 + N
  std::vector<TensorInfo> tensors;  // sorted by data offset (file order)
  std::vector<std::pair<std::string, std::string>> metadata;
};

// Parses and validates the header of a safetensors file whose complete contents are
// [data, data + file_size). `path` is used in error messages only. Throws Error. (The
// reader's open() and the fuzz target, native/fuzz/, call it.)
Header parse_header(const uint8_t* data, uint64_t file_size, const std::string& path);

}  // namespace mother
