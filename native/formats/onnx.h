// ONNX reader: the tensors of a ModelProto (onnx/onnx.proto), read with the bounded protobuf
// reader (protobuf.h) without copying tensor data where the file holds it as plain bytes.
// Its Reader (kOnnxReader, registered in registry.cc) claims *.onnx files.
//
// Read: the initializers of the main graph and of every subgraph (GRAPH and GRAPHS attributes
// of any node: If branches, Loop and Scan bodies, ...), and the outputs of Constant nodes
// (value, value_float(s), value_int(s)) wherever they are; a constant is named by its node's
// output, an initializer by its own name. Storage:
// - raw_data, and external data (data_location = EXTERNAL: location / offset / length, files
//   in the model's folder): viewed in place in the memory map;
// - float_data / double_data written as ONE packed record: the payload is the little-endian
//   array itself, viewed in place too;
// - anything else (varint fields: int32_data carrying FLOAT16, BFLOAT16, FLOAT8, int8, bool...,
//   int64_data, uint64_data; unpacked or split float/double records; value_int(s)): decoded
//   once into a copy owned by the model, at most kOnnxMaxDecodedBytes per file. Varints cannot
//   be addressed by element index, so a view in place would need an index of every element's
//   offset, about as large as the copy; exporters keep large tensors in raw_data (or external
//   files) and typed fields for small constants, so the copy stays small, and the engines see
//   a plain TensorView.
// Metadata: onnx.ir_version, onnx.producer_name / _version, onnx.domain, onnx.model_version,
// onnx.opset.<domain>, onnx.initializers and onnx.constants (how many of each were read),
// onnx.dequantized (how many quantised weights are read as float views: OnnxRole), the
// model's metadata_props as they are, the tensors left out, and as
// "onnx.not_dequantized.<name>" (with the reason) the quantised-looking weights left as integer
// tensors (no scale or zero point, a dtype other than UINT8 / INT8, blocked quantisation, a
// per-channel scale whose axis no node gives).
// Listed in the file's metadata as "onnx.skipped.<name>" (with the reason) and left out:
// STRING, COMPLEX128, INT4/UINT4/INT2/UINT2, FLOAT4E2M1 with an odd count, segmented tensors,
// sparse initializers and sparse or string Constants.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/dtype.h"

namespace mother {

constexpr uint64_t kOnnxMaxDecodedBytes = 256ull << 20;  // decoded copies per file
constexpr unsigned kOnnxMaxDims = 64;
constexpr uint64_t kOnnxMaxNameBytes = 65536;        // tensor names, attribute names, op types
constexpr uint64_t kOnnxMaxStringBytes = 1ull << 20;  // metadata values, external data entries

enum class OnnxStorage : uint8_t { InFile, External, Decoded, Skipped };

// A tensor's part in an ONNX linear quantisation (onnxruntime's quantize_dynamic / quantize_static,
// the older onnx.quantize): the quantised weight NAME_quantized (UINT8 or INT8) with its scale
// NAME_scale (FLOAT, FLOAT16 or BFLOAT16) and zero point NAME_zero_point (the weight's dtype),
// both scalars (per tensor) or 1-D of the length of one axis (per channel; the axis from the
// nodes that consume the weight). The weight is read as one float view of values
// (q - zero_point) x scale (DecodeKind::AffineU8 / AffineI8), named NAME; the scale and zero
// point are then not listed.
enum class OnnxRole : uint8_t { Tensor, QuantData, QuantScale, QuantZero };

struct OnnxQuant {
  std::string view;              // the float view's name: NAME (NAME_quantized if NAME is taken)
  uint32_t scale = 0, zero = 0;  // indices of NAME_scale and NAME_zero_point in OnnxModel::tensors
  int64_t axis = -1;             // the channel axis (0 .. rank - 1); -1: per tensor
  uint64_t inner = 1;            // per channel: the product of the dims after the axis
  bool values = false;           // scales and zeros read (parse_onnx reads them unless external)
  std::vector<double> scales;    // finite, > 0
  std::vector<int32_t> zeros;
};

struct OnnxTensor {
  std::string name;
  int32_t data_type = 0;  // TensorProto.DataType
  std::vector<uint64_t> shape;
  uint64_t count = 0;     // elements (the product of shape)
  DType dtype = DType::F32;  // mother's dtype (not for Skipped)
  OnnxStorage storage = OnnxStorage::InFile;
  uint64_t offset = 0;    // InFile: in the .onnx file; Decoded: in OnnxModel::decoded; External: in its file
  uint64_t bytes = 0;     // byte span: dims x data_type
  std::string location;   // External: the file, relative to the model's folder (checked: stays inside)
  bool length_given = false;  // External: "length" was given (else the data must run to the end of the file)
  std::string skipped;    // Skipped: why
  OnnxRole role = OnnxRole::Tensor;
  OnnxQuant quant;        // QuantData: the pairing
};

struct OnnxModel {
  std::vector<OnnxTensor> tensors;     // in the order of the file (a graph's fields, subgraphs depth first)
  std::vector<uint8_t> decoded;        // the decoded copies (8-byte aligned per tensor)
  std::vector<std::pair<std::string, std::string>> metadata;
  uint64_t in_file_bytes = 0;          // bytes of tensor data viewed in place in the .onnx file
};

// Parses and validates the ONNX ModelProto [data, data + size). `path` is used in error
// messages only; external data files are not opened (the reader's open() does, and checks the
// ranges against them; it also reads the scales and zero points stored there). Throws Error.
// (The reader's open() and the fuzz target call it.)
OnnxModel parse_onnx(const uint8_t* data, uint64_t size, const std::string& path);

// Reads and checks the scales and zero points of the quantised weight `q` (role QuantData) from
// the bytes of its scale and zero point tensors: every scale finite and > 0, else
// Error(OnnxQuantization) naming the scale tensor.
void read_onnx_quant(OnnxTensor& q, const OnnxTensor& scale, const uint8_t* scale_bytes, const OnnxTensor& zero,
                     const uint8_t* zero_bytes, const std::string& path);

// "FLOAT16" for 10; "UNKNOWN" outside the enum.
const char* onnx_dtype_name(int32_t data_type);

}  // namespace mother
