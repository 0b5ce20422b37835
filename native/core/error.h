// Errors raised by the native core. Every error carries a stable code, the file it concerns
// and, where there is one, the tensor; the addon turns it into a JS Error with those fields.
#pragma once
#include <stdexcept>
#include <string>

namespace mother {

enum class ErrorCode {
  FileOpen,          // cannot open / stat / map the file
  FileTooSmall,      // fewer than 8 bytes: no header length
  HeaderTooLarge,    // header length claims more than 100,000,000 bytes
  HeaderLength,      // 8 + header length runs past the end of the file
  HeaderUtf8,        // header bytes are not valid UTF-8
  HeaderJson,        // header is not valid JSON
  HeaderSchema,      // valid JSON, wrong shape (missing field, wrong type, bad number)
  DuplicateKey,      // the same key twice in one JSON object
  UnknownDtype,      // dtype string not in the safetensors list
  OffsetOrder,       // data_offsets end < begin
  OffsetGap,         // sorted offsets leave a hole
  OffsetOverlap,     // sorted offsets overlap
  ShapeOverflow,     // product of shape (x dtype bits) overflows 64 bits
  SizeMismatch,      // shape x dtype size != end - begin (or not a whole number of bytes)
  Truncated,         // the data buffer runs past the end of the file
  TrailingBytes,     // bytes after the end of the data buffer
  IndexInvalid,      // model.safetensors.index.json malformed
  MissingShard,      // index names a shard file that does not exist
  IndexTensorMissing,// index maps a tensor to a shard that does not contain it
  DuplicateTensor,   // the same tensor name in two shards
  InvalidArgument,   // bad call from JS (unknown option value, ...)
  Unsupported,       // e.g. forced SIMD path not available on this CPU
  Cancelled,         // the caller aborted the operation
  Backend,           // the GPU backend is unavailable or a device call failed
};

const char* error_code_name(ErrorCode c);

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
