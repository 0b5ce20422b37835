#include "error.h"

namespace mother {

namespace {
constexpr ErrorCodeInfo kCodes[] = {
#define MOTHER_ERROR_INFO(name, code, kind, what) {ErrorCode::name, code, ErrorKind::kind, what},
    MOTHER_ERROR_CODES(MOTHER_ERROR_INFO)
#undef MOTHER_ERROR_INFO
};
constexpr size_t kCount = sizeof(kCodes) / sizeof(kCodes[0]);
}  // namespace

const ErrorCodeInfo* error_codes(size_t* count) {
  *count = kCount;
  return kCodes;
}

const char* error_code_name(ErrorCode c) {
  const size_t i = static_cast<size_t>(c);
  return i < kCount ? kCodes[i].name : "ERR_UNKNOWN";  // only a value cast from outside the enum
}

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::Input: return "input";
    case ErrorKind::Usage: return "usage";
    case ErrorKind::Runtime: return "runtime";
    case ErrorKind::Internal: return "internal";
  }
  return "internal";
}

}  // namespace mother
