// The interface every weight format implements, and the registry that picks a reader per
// file. A reader validates a file and appends it to a Model: one ModelFile and a TensorView
// per tensor. Adding a format is a new reader file (defining its Reader) and one line in
// registry.cc; no engine changes.
#pragma once
#include <string>
#include <vector>

#include "../core/error.h"
#include "tensor_view.h"

namespace mother {

struct Reader {
  const char* format;                                  // "safetensors"
  bool (*claims)(const std::string& path);             // by name (and/or magic)
  void (*open)(const std::string& path, Model& into);  // validates; throws Error
  // Optional: once every file of a model is open (open_model), checks what spans files and
  // fixes up the views (GGUF: split sets, tensor names, row maps); throws Error.
  void (*finish)(Model& model) = nullptr;
};

// The reader that claims the file at `path` by its name (or magic), or nullptr (registry.cc).
const Reader* claiming_reader(const std::string& path);
// The reader of the file at `path`: the claiming one, else safetensors (registry.cc).
const Reader& reader_for(const std::string& path);
void open_file(const std::string& path, Model& into);

// A sharded checkpoint: the index (*.index.json, {"weight_map": {tensor: shard file}}) and the
// shards it names, each read by its own reader, every index entry checked against them
// (shard_index.cc).
void open_shard_index(const std::string& index_path, Model& into);

// Opens a model: the given files (index_path empty), or the shards of the index at
// index_path (`files` ignored), then indexes the tensor names (Model::index_names).
Model open_model(const std::vector<std::string>& files, const std::string& index_path);

// How readers report what is wrong with a file: Error(code, path, tensor) with the message
// "<path>: tensor "<tensor>": <what>" (no tensor part when tensor is empty).
inline std::string quoted(const std::string& s) { return "\"" + s + "\""; }
[[noreturn]] inline void fail(ErrorCode code, const std::string& path, const std::string& tensor,
                              const std::string& what) {
  std::string msg = path + ": ";
  if (!tensor.empty()) msg += "tensor " + quoted(tensor) + ": ";
  msg += what;
  throw Error(code, path, tensor, msg);
}

}  // namespace mother
