// Errors raised by the native core. Every error carries a stable code, the file it concerns
// and, where there is one, the tensor; the addon turns it into a JS Error with those fields.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>

namespace mother {

// What a code says about the failure, for callers that act on classes of codes (the CLI's
// exit status): the input files are unreadable or invalid, the call itself was wrong, the
// run could not finish, or a bug.
enum class ErrorKind { Input, Usage, Runtime, Internal };

// Every error code, once: X(enumerator, "ERR_NAME", kind, "what it means"). The enum, the
// names, the addon's `errorCodes` export and TypeScript's list of codes all come from here;
// a few codes are only ever raised by the TypeScript side (NotFound, NotAModel, NoAddon: the
// loader cannot ask an addon it could not load, so it knows that code without it) or for
// exceptions that are not mother::Error (Internal), but are listed so that the list is whole.
#define MOTHER_ERROR_CODES(X)                                                                          \
  X(NotFound, "ERR_NOT_FOUND", Input, "the path does not exist")                                       \
  X(NotAModel, "ERR_NOT_A_MODEL", Input, "the path holds no weights in a format mother reads")         \
  X(FileOpen, "ERR_FILE_OPEN", Input, "cannot open, stat or map the file")                             \
  X(FileTooSmall, "ERR_FILE_TOO_SMALL", Input, "fewer than 8 bytes: no header length")                 \
  X(HeaderTooLarge, "ERR_HEADER_TOO_LARGE", Input, "the header length claims more than 100,000,000 bytes") \
  X(HeaderLength, "ERR_HEADER_LENGTH", Input, "8 + the header length runs past the end of the file")   \
  X(HeaderUtf8, "ERR_HEADER_UTF8", Input, "the header bytes are not valid UTF-8")                      \
  X(HeaderJson, "ERR_HEADER_JSON", Input, "the header is not valid JSON")                              \
  X(HeaderSchema, "ERR_HEADER_SCHEMA", Input, "valid JSON of the wrong shape (missing field, wrong type, bad number)") \
  X(DuplicateKey, "ERR_DUPLICATE_KEY", Input, "the same key twice in one JSON object")                 \
  X(UnknownDtype, "ERR_UNKNOWN_DTYPE", Input, "a dtype the format does not define (safetensors dtype string, GGUF type id)") \
  X(OffsetOrder, "ERR_OFFSET_ORDER", Input, "data_offsets end is before begin")                        \
  X(OffsetGap, "ERR_OFFSET_GAP", Input, "the sorted data offsets leave a hole")                        \
  X(OffsetOverlap, "ERR_OFFSET_OVERLAP", Input, "the sorted data offsets overlap")                     \
  X(ShapeOverflow, "ERR_SHAPE_OVERFLOW", Input, "the product of the shape (x dtype bits) overflows 64 bits") \
  X(SizeMismatch, "ERR_SIZE_MISMATCH", Input, "shape x dtype size is not the byte span of the data offsets") \
  X(Truncated, "ERR_TRUNCATED", Input, "the data buffer runs past the end of the file")                \
  X(TrailingBytes, "ERR_TRAILING_BYTES", Input, "bytes after the end of the data buffer")              \
  X(IndexInvalid, "ERR_INDEX_INVALID", Input, "the shard index (*.index.json) is malformed")           \
  X(MissingShard, "ERR_MISSING_SHARD", Input, "the shard index names a shard file that does not exist") \
  X(IndexTensorMissing, "ERR_INDEX_TENSOR_MISSING", Input, "the shard index maps a tensor to a shard that does not hold it") \
  X(DuplicateTensor, "ERR_DUPLICATE_TENSOR", Input, "the same tensor name in two shards")              \
  X(ZipInvalid, "ERR_ZIP_INVALID", Input, "a malformed ZIP archive (end records, central directory, local headers, bounds, overlaps)") \
  X(ZipUnsupported, "ERR_ZIP_UNSUPPORTED", Input, "a ZIP entry that is compressed or encrypted, or an archive on several disks") \
  X(PickleInvalid, "ERR_PICKLE_INVALID", Input, "a malformed pickle or one outside what a state dict uses (opcode, stack, memo, argument types)") \
  X(PickleLimit, "ERR_PICKLE_LIMIT", Input, "a pickle beyond a limit (objects, references, stack, marks, memo, nesting, name length)") \
  X(UnsafePickle, "ERR_UNSAFE_PICKLE", Input, "a pickle names a global outside the allow-list of tensor-rebuilding globals (never run)") \
  X(TorchFormat, "ERR_TORCH_FORMAT", Input, "not a PyTorch checkpoint layout (no data.pkl, legacy magic/version/system info, not a dict of tensors)") \
  X(TorchUnsupported, "ERR_TORCH_UNSUPPORTED", Input, "a PyTorch feature mother does not read (quantized, sparse, complex128, big-endian, tar format)") \
  X(TorchStorage, "ERR_TORCH_STORAGE", Input, "a storage missing or of the wrong size, or a tensor outside its storage") \
  X(GgufMagic, "ERR_GGUF_MAGIC", Input, "a .gguf file that does not start with the magic bytes GGUF")  \
  X(GgufVersion, "ERR_GGUF_VERSION", Input, "a GGUF version other than 2 and 3 (version 1, big-endian files, newer versions)") \
  X(GgufTruncated, "ERR_GGUF_TRUNCATED", Input, "the GGUF header (key/values, tensor infos) runs past the end of the file") \
  X(GgufCount, "ERR_GGUF_COUNT", Input, "the GGUF tensor or key/value count cannot fit in the file")    \
  X(GgufString, "ERR_GGUF_STRING", Input, "a GGUF string longer than its cap or the file, empty, or not UTF-8 (keys, tensor names)") \
  X(GgufArray, "ERR_GGUF_ARRAY", Input, "a GGUF metadata array longer than its cap or the file, or nested too deep") \
  X(GgufValue, "ERR_GGUF_VALUE", Input, "a GGUF value of an unknown type, a bool not 0 or 1, or a known key of the wrong type") \
  X(GgufDims, "ERR_GGUF_DIMS", Input, "a GGUF tensor with more than 4 dimensions or a dimension of 2^63 or more") \
  X(GgufBlock, "ERR_GGUF_BLOCK", Input, "a GGUF tensor whose first dimension is not a whole number of blocks of its type") \
  X(GgufAlignment, "ERR_GGUF_ALIGNMENT", Input, "general.alignment is not a power of two, or a tensor offset is not a multiple of it") \
  X(GgufSplit, "ERR_GGUF_SPLIT", Input, "the files of a GGUF split set disagree (split.count, split.no, split.tensors.count)") \
  X(ProtobufTruncated, "ERR_PROTOBUF_TRUNCATED", Input, "protobuf: a varint or fixed-width value is cut off by the end of its message") \
  X(ProtobufVarint, "ERR_PROTOBUF_VARINT", Input, "protobuf: a varint longer than 10 bytes or above 2^64 - 1") \
  X(ProtobufLength, "ERR_PROTOBUF_LENGTH", Input, "protobuf: a length-delimited field runs past the end of its enclosing message") \
  X(ProtobufTag, "ERR_PROTOBUF_TAG", Input, "protobuf: field number 0 or above 2^29 - 1, wire type 6 or 7, or a group (wire types 3, 4)") \
  X(ProtobufDepth, "ERR_PROTOBUF_DEPTH", Input, "protobuf: messages nested deeper than 100")          \
  X(OnnxSchema, "ERR_ONNX_SCHEMA", Input, "ONNX: valid protobuf of the wrong shape (no graph, a known field with the wrong wire type or repeated, a missing or bad name, a Constant without exactly one value)") \
  X(OnnxDtype, "ERR_ONNX_DTYPE", Input, "ONNX: a tensor's data_type is missing, UNDEFINED or not a TensorProto.DataType") \
  X(OnnxDims, "ERR_ONNX_DIMS", Input, "ONNX: a negative dimension, or more than 64 dimensions")     \
  X(OnnxDataField, "ERR_ONNX_DATA_FIELD", Input, "ONNX: tensor data in a field its data_type does not use, or in more than one place") \
  X(OnnxDataSize, "ERR_ONNX_DATA_SIZE", Input, "ONNX: the bytes or values stored for a tensor are not dims x data_type") \
  X(OnnxValueRange, "ERR_ONNX_VALUE_RANGE", Input, "ONNX: a typed-field value outside its data_type (e.g. 70000 in int32_data of FLOAT16)") \
  X(OnnxExternalInvalid, "ERR_ONNX_EXTERNAL_INVALID", Input, "ONNX: malformed external_data (no location, a bad offset or length, a repeated key)") \
  X(OnnxExternalPath, "ERR_ONNX_EXTERNAL_PATH", Input, "ONNX: an external data location outside the model's folder (absolute, .., empty parts, NUL)") \
  X(OnnxExternalMissing, "ERR_ONNX_EXTERNAL_MISSING", Input, "ONNX: an external data file that does not exist") \
  X(OnnxExternalRange, "ERR_ONNX_EXTERNAL_RANGE", Input, "ONNX: external data offset + length past the end of its file") \
  X(OnnxDuplicateName, "ERR_ONNX_DUPLICATE_NAME", Input, "ONNX: two initializers or Constant outputs with one name") \
  X(OnnxQuantization, "ERR_ONNX_QUANTIZATION", Input, "ONNX: a quantised weight (NAME_quantized) whose scale or zero point has the wrong dtype, shape or value (a scale not finite and > 0)") \
  X(OnnxDecodeLimit, "ERR_ONNX_DECODE_LIMIT", Input, "ONNX: values stored in typed fields need more than 256 MiB of decoded copies in one file") \
  X(AdapterConfig, "ERR_ADAPTER_CONFIG", Input, "PEFT adapter: adapter_config.json missing, not valid JSON, or a field of the wrong type or value") \
  X(AdapterTensor, "ERR_ADAPTER_TENSOR", Input, "PEFT adapter: a LoRA tensor without its partner, of the wrong rank, shape or dtype, or not named as PEFT names them") \
  X(FileChanged, "ERR_FILE_CHANGED", Input, "a file shrank, grew or was rewritten or replaced while it was read") \
  X(NotAFile, "ERR_NOT_A_FILE", Input, "a path to read is not a regular file (FIFO, socket, device, directory)") \
  X(InvalidArgument, "ERR_INVALID_ARGUMENT", Usage, "a bad argument or option value")                  \
  X(Unsupported, "ERR_UNSUPPORTED", Usage, "not available here (e.g. a SIMD path this CPU lacks)")      \
  X(Cancelled, "ERR_CANCELLED", Runtime, "the caller aborted the operation")                           \
  X(Backend, "ERR_BACKEND", Runtime, "the GPU backend is unavailable or a device call failed")         \
  X(Output, "ERR_OUTPUT", Runtime, "the output cannot be written (stdout or --out: no space left, an I/O error)") \
  X(NoAddon, "ERR_NO_ADDON", Runtime, "no native addon for this platform loads (npm rebuild mother)")  \
  X(Internal, "ERR_INTERNAL", Internal, "a bug: an unexpected exception inside mother")

enum class ErrorCode {
#define MOTHER_ERROR_ENUM(name, code, kind, what) name,
  MOTHER_ERROR_CODES(MOTHER_ERROR_ENUM)
#undef MOTHER_ERROR_ENUM
};

struct ErrorCodeInfo {
  ErrorCode code;
  const char* name;  // "ERR_FILE_OPEN"
  ErrorKind kind;
  const char* what;  // one line
};

// The list above as data, in its order; *count receives its length.
const ErrorCodeInfo* error_codes(size_t* count);
const char* error_code_name(ErrorCode c);
const char* error_kind_name(ErrorKind k);  // "input", "usage", "runtime", "internal"

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string file, std::string tensor, const std::string& message)
      : std::runtime_error(message), code_(code), file_(std::move(file)), tensor_(std::move(tensor)) {}
  ErrorCode code() const { return code_; }
  const std::string& file() const { return file_; }
  const std::string& tensor() const { return tensor_; }

 private:
  ErrorCode code_;
  std::string file_;
  std::string tensor_;
};

}  // namespace mother
