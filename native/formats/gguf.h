// GGUF reader (llama.cpp / ggml files, versions 2 and 3, single files and
// NAME-0000N-of-0000M.gguf split sets): validates the header as strictly as ggml's own reader
// (gguf.cpp) and more (caps on every length and count, UTF-8 names), straight from the memory
// map, without copying tensor data. Its Reader (kGgufReader, registered in registry.cc)
// claims *.gguf files and files that start with the magic "GGUF"; its finish step checks a
// split set and maps llama.cpp tensor names to Hugging Face names (gguf_names.cc).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/dtype.h"

namespace mother {

// Caps on what a file may claim (beyond the file's own size, which bounds everything).
constexpr uint64_t kGgufMaxKeyBytes = 65535;          // the spec's limit on keys
constexpr uint64_t kGgufMaxNameBytes = 63;            // ggml's GGML_MAX_NAME (64, with the NUL)
constexpr uint64_t kGgufMaxStringBytes = 1ull << 26;  // one metadata string (64 MiB)
constexpr uint64_t kGgufMaxArrayElems = 1ull << 28;   // one metadata array
constexpr unsigned kGgufMaxDepth = 8;                 // nested arrays
constexpr uint32_t kGgufMaxDims = 4;
constexpr uint32_t kGgufDefaultAlignment = 32;

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: ne[0] varies fastest (the Hugging Face shape reversed)
  uint32_t ggml_type = 0;
  DType dtype = DType::F32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t count = 0;   // elements
  uint64_t bytes = 0;
};

struct GgufHeader {
  uint32_t version = 0;
  uint64_t tensor_count = 0;
  uint64_t kv_count = 0;
  // Every key/value, in file order, the value as text: strings as they are, numbers in
  // decimal, bools true/false, arrays of up to 64 scalars as JSON, longer ones summarised as
  // "[N x TYPE]".
  std::vector<std::pair<std::string, std::string>> metadata;
  uint32_t alignment = kGgufDefaultAlignment;
  uint64_t data_start = 0;  // file offset of the data section (aligned end of the tensor infos)
  std::vector<GgufTensorInfo> tensors;  // file order (= data order)
};

// Parses and validates the GGUF file whose complete contents are [data, data + size); `path`
// is used in error messages only. Throws Error. (The reader's open() and the fuzz target,
// native/fuzz/, call it.)
GgufHeader parse_gguf_header(const uint8_t* data, uint64_t size, const std::string& path);

// The DType of a ggml type id, false for ids ggml does not define (or no longer reads).
bool ggml_type_dtype(uint32_t ggml_type, DType* out);

// Hugging Face name of a llama.cpp tensor name for a known architecture (llama, mistral,
// qwen2, qwen3, gemma, gemma2, gemma3, phi3), or "" when there is none (gguf_names.cc).
std::string gguf_hf_name(const std::string& arch, const std::string& gguf_name);
// Whether the architecture's converter permutes the rows of attn_q / attn_k for RoPE (the
// LlamaModel family: llama, mistral).
bool gguf_permutes_qk(const std::string& arch);
// The row map that undoes the converter's permutation of a [rows, ...] Q or K weight (or bias)
// with n_head heads: logical (Hugging Face) row h hd + j hd/2 + i is stored as row
// h hd + 2 i + j (hd = rows / n_head). Empty when rows is not a multiple of 2 n_head.
std::vector<uint32_t> gguf_qk_row_map(uint64_t rows, uint64_t n_head);

}  // namespace mother
