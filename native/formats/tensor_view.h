// What every weight format is read into, and all the engines see of it: a model is its files
// and one view per tensor; a view says where a tensor's elements lie in a memory-mapped file
// and how they are stored. Only the readers (native/formats/) know a format's layout.
#pragma once
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/dtype.h"
#include "../core/mapped_file.h"

namespace mother {

// How kernels decode a view's bytes. Plain: element i is one value of `dtype`, stored at its
// natural size in file order; that is every safetensors dtype. The GGUF block types have a
// kind each: blocks of block_elems elements in block_bytes bytes, with their own scales
// (native/stats/quant.h); Opaque: a block type without statistics, never decoded. AffineU8 /
// AffineI8: ONNX linear quantisation, U8 / I8 elements q whose values are (q - zero) x scale
// with one scale and zero point per tensor or per channel (AffineQuant).
enum class DecodeKind : uint8_t { Plain, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, MXFP4, AffineU8, AffineI8, Opaque };

// The parameters of an affine (linear) quantised view: element i of channel c = (i / inner) %
// channels has the value (q_i - zero[c]) x scale[c]. One channel: per tensor. The scales are
// finite and > 0 (F32, F16 or BF16 values, exact in a double), so a value is the exact real
// number: q - zero is an integer of at most 9 bits, its product with a scale of at most 24
// significant bits is exact in float64. Copies of the scale and zero point tensors (the size
// of one axis), never of the quantised data.
struct AffineQuant {
  std::vector<double> scale;
  std::vector<int32_t> zero;
  uint64_t inner = 1;   // elements per step of the channel axis (the product of the dims after it)
  int64_t axis = -1;    // the channel axis; -1: per tensor
  // Where they came from (ONNX initializer names), for inspect.
  std::string data_name, scale_name, zero_name;
};

struct TensorView {
  std::string name;
  DType dtype = DType::F32;          // storage type
  std::vector<uint64_t> shape;
  uint64_t count = 0;                // elements (the product of shape)
  uint32_t file = 0;                 // index into Model::files (the path, for errors)
  const MappedFile* map = nullptr;   // owned by Model::files[file] (its map, or its decoded copy)
  uint64_t offset = 0;               // byte offset of element 0 in the file
  uint64_t bytes = 0;                // byte span of the whole tensor
  // Elements come in blocks of block_elems stored in block_bytes bytes: one element for the
  // whole-byte dtypes, several for the sub-byte ones (set_plain). Every element range a pass
  // hands to a kernel, maps or releases starts on a block boundary.
  uint32_t block_elems = 1;
  uint32_t block_bytes = 0;
  DecodeKind decode = DecodeKind::Plain;
  // Logical row r (rows of count / shape[0] elements) is stored as row (*row_map)[r]; nullptr:
  // in order. Set by readers whose files reorder rows (GGUF's Q/K permutation); owned by the
  // Model (Model::row_maps). Moments do not depend on the order; decoding follows it.
  const std::vector<uint32_t>* row_map = nullptr;
  // AffineU8 / AffineI8: the scales and zero points (owned by the Model: Model::affines).
  const AffineQuant* affine = nullptr;

  // Sets dtype and its plain block layout: 8 / gcd(bits, 8) elements in a whole number of
  // bytes (F4: 2 in 1 byte, F6: 4 in 3 bytes, F32: 1 in 4 bytes).
  void set_plain(DType d) {
    const unsigned bits = dtype_bits(d);
    dtype = d;
    decode = DecodeKind::Plain;
    block_elems = 8 / std::gcd(bits, 8u);
    block_bytes = bits * block_elems / 8;
  }
  // Sets an affine quantised view: U8 or I8 elements, one per byte, decoded with `a`.
  void set_affine(DType d, const AffineQuant* a) {
    set_plain(d);
    decode = d == DType::I8 ? DecodeKind::AffineI8 : DecodeKind::AffineU8;
    affine = a;
  }
  bool is_affine() const { return decode == DecodeKind::AffineU8 || decode == DecodeKind::AffineI8; }
  // Why the elements cannot be read in order (a non-contiguous view in a PyTorch checkpoint),
  // or empty. Such a view has no statistics and takes no part in comparisons.
  std::string unreadable;
  // Sets a GGUF block dtype (dtype_is_block), its block layout and its decode kind.
  void set_block(DType d) {
    dtype = d;
    dtype_block(d, &block_elems, &block_bytes);
    switch (d) {
      case DType::Q8_0: decode = DecodeKind::Q8_0; break;
      case DType::Q4_0: decode = DecodeKind::Q4_0; break;
      case DType::Q4_1: decode = DecodeKind::Q4_1; break;
      case DType::Q5_0: decode = DecodeKind::Q5_0; break;
      case DType::Q5_1: decode = DecodeKind::Q5_1; break;
      case DType::Q2_K: decode = DecodeKind::Q2_K; break;
      case DType::Q3_K: decode = DecodeKind::Q3_K; break;
      case DType::Q4_K: decode = DecodeKind::Q4_K; break;
      case DType::Q5_K: decode = DecodeKind::Q5_K; break;
      case DType::Q6_K: decode = DecodeKind::Q6_K; break;
      case DType::MXFP4: decode = DecodeKind::MXFP4; break;
      default: decode = DecodeKind::Opaque; break;
    }
  }
  // Float values the statistics and pairwise passes reduce.
  bool has_stats() const { return unreadable.empty() && (dtype_has_stats(dtype) || is_affine()); }
  uint64_t byte_offset(uint64_t first) const { return offset + first / block_elems * block_bytes; }
  uint64_t byte_len(uint64_t elems) const { return (elems + block_elems - 1) / block_elems * block_bytes; }
  const uint8_t* data(uint64_t first) const { return map->data() + byte_offset(first); }
  // Elements of a range of at most max_bytes: whole blocks, at least one.
  uint64_t elems_within(uint64_t max_bytes) const {
    const uint64_t blocks = max_bytes / block_bytes;
    return (blocks > 0 ? blocks : 1) * block_elems;
  }
  // Maps the pages of elements [first, first + n) in one call / drops them from the resident
  // set (MappedFile::populate, MappedFile::release).
  void populate(uint64_t first, uint64_t n) const { map->populate(byte_offset(first), byte_len(n)); }
  void release(uint64_t first, uint64_t n) const { map->release(byte_offset(first), byte_len(n)); }
  // After reading elements: throws Error(FileChanged) naming the file and this tensor when a
  // read of the file faulted (it shrank under the map: MappedFile::faulted).
  void check_read() const {
    if (map->faulted()) map->check_unchanged(name);
  }
};

// The dtype name a view is listed with: its storage dtype ("F16", "Q4_K"), or for the affine
// quantised views "QUINT8" / "QINT8" (PyTorch's names for the same per-tensor / per-channel
// scale and zero point quantisation): their values are floats, their storage U8 / I8.
const char* view_dtype_name(const TensorView& v);

struct ModelFile {
  std::shared_ptr<MappedFile> map;
  std::string format;         // the reader's name: "safetensors"
  uint64_t header_bytes = 0;  // the format's header (safetensors: the JSON after the length)
  std::vector<std::pair<std::string, std::string>> metadata;
  // Values the reader decoded instead of mapping (ONNX typed fields stored as varints): views
  // of this file's tensors may point into it instead of into `map` (null when there are none).
  std::shared_ptr<MappedFile> decoded;
  const std::string& path() const { return map->path(); }
};

struct Model {
  std::vector<ModelFile> files;
  std::vector<TensorView> tensors;  // file order, then data offset
  // The row maps the views point to (TensorView::row_map); shared, so views stay valid when
  // the Model moves.
  std::vector<std::shared_ptr<const std::vector<uint32_t>>> row_maps;
  // The affine parameters the views point to (TensorView::affine); shared, as row_maps.
  std::vector<std::shared_ptr<const AffineQuant>> affines;

  // The tensor named `name`, or nullptr.
  const TensorView* find(const std::string& name) const;
  // At the end of a pass: throws Error(FileChanged) for the first file that faulted or whose
  // size, modification time or identity changed since it was opened.
  void check_unchanged() const {
    for (const ModelFile& f : files) f.map->check_unchanged();
  }
  // Builds the name index that find() uses; throws Error(DuplicateTensor) for a name that two
  // files hold. open_model calls it once every file is read.
  void index_names();

 private:
  std::unordered_map<std::string, uint32_t> by_name_;
};

}  // namespace mother
