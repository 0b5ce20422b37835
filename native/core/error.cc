#include "error.h"

namespace mother {

const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::FileOpen: return "ERR_FILE_OPEN";
    case ErrorCode::FileTooSmall: return "ERR_FILE_TOO_SMALL";
    case ErrorCode::HeaderTooLarge: return "ERR_HEADER_TOO_LARGE";
    case ErrorCode::HeaderLength: return "ERR_HEADER_LENGTH";
    case ErrorCode::HeaderUtf8: return "ERR_HEADER_UTF8";
    case ErrorCode::HeaderJson: return "ERR_HEADER_JSON";
    case ErrorCode::HeaderSchema: return "ERR_HEADER_SCHEMA";
    case ErrorCode::DuplicateKey: return "ERR_DUPLICATE_KEY";
    case ErrorCode::UnknownDtype: return "ERR_UNKNOWN_DTYPE";
    case ErrorCode::OffsetOrder: return "ERR_OFFSET_ORDER";
    case ErrorCode::OffsetGap: return "ERR_OFFSET_GAP";
    case ErrorCode::OffsetOverlap: return "ERR_OFFSET_OVERLAP";
    case ErrorCode::ShapeOverflow: return "ERR_SHAPE_OVERFLOW";
    case ErrorCode::SizeMismatch: return "ERR_SIZE_MISMATCH";
    case ErrorCode::Truncated: return "ERR_TRUNCATED";
    case ErrorCode::TrailingBytes: return "ERR_TRAILING_BYTES";
    case ErrorCode::IndexInvalid: return "ERR_INDEX_INVALID";
    case ErrorCode::MissingShard: return "ERR_MISSING_SHARD";
    case ErrorCode::IndexTensorMissing: return "ERR_INDEX_TENSOR_MISSING";
    case ErrorCode::DuplicateTensor: return "ERR_DUPLICATE_TENSOR";
    case ErrorCode::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case ErrorCode::Unsupported: return "ERR_UNSUPPORTED";
    case ErrorCode::Cancelled: return "ERR_CANCELLED";
    case ErrorCode::Backend: return "ERR_BACKEND";
  }
  return "ERR_UNKNOWN";
}

}  // namespace mother
