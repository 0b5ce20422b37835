// safetensors reader: validates a header exactly as strictly as the reference reader
// (huggingface/safetensors) does, and more (duplicate keys), without copying tensor data.
// Sharded checkpoints: an index (model.safetensors.index.json) whose weight_map must resolve
// every entry to a tensor present in the named shard.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dtype.h"
#include "mapped_file.h"

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
// [data, data + file_size). `path` is used in error messages only. Throws Error.
Header parse_header(const uint8_t* data, uint64_t file_size, const std::string& path);

struct SafetensorsFile {
  std::shared_ptr<MappedFile> map;
  Header header;
  const std::string& path() const { return map->path(); }
  const uint8_t* tensor_data(const TensorInfo& t) const { return map->data() + header.data_start + t.begin; }
};

SafetensorsFile open_safetensors(const std::string& path);

struct TensorRef {
  uint32_t file;    // index into Model::files
  uint32_t tensor;  // index into that file's header.tensors
};

struct Model {
  std::vector<SafetensorsFile> files;
  std::vector<TensorRef> tensors;  // every tensor of every file, in file then offset order
  const TensorInfo& info(const TensorRef& r) const { return files[r.file].header.tensors[r.tensor]; }
};

// Opens a single file (index_path empty, files.size() == 1), or a sharded checkpoint
// (index_path set; `files` ignored: the shards are the ones the index names).
Model open_model(const std::vector<std::string>& files, const std::string& index_path);

}  // namespace mother
