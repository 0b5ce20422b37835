// A bounded reader of the protobuf wire format (the encoding of ONNX files), without a schema
// and without copying: a Cursor walks the fields of one message inside a buffer, and every
// field it returns lies inside that message. Nothing is trusted:
// - varints are at most 10 bytes and at most 2^64 - 1 (ERR_PROTOBUF_VARINT), and must end
//   inside their message (ERR_PROTOBUF_TRUNCATED), as must fixed 32/64-bit values;
// - a length-delimited field must fit in what is left of its enclosing message
//   (ERR_PROTOBUF_LENGTH), so sub-messages are bounded by their parents;
// - field number 0, numbers above 2^29 - 1, wire types 6 and 7 and groups (wire types 3 and 4,
//   deprecated and never used by ONNX) are rejected (ERR_PROTOBUF_TAG);
// - sub-messages nest at most kMaxDepth deep (ERR_PROTOBUF_DEPTH): callers that recurse into
//   sub-messages do it through sub(), which counts.
// Unknown fields are the caller's to skip: next() has already stepped over their payload.
#pragma once
#include <cstdint>
#include <string>

namespace mother {
namespace pb {

enum class Wire : uint8_t { Varint = 0, I64 = 1, Len = 2, I32 = 5 };

// Nesting limit for messages (protobuf's own parsers default to 100).
constexpr int kMaxDepth = 100;

const char* wire_name(Wire w);  // "varint", "fixed64", "length-delimited", "fixed32"

struct Field {
  uint32_t number = 0;
  Wire wire = Wire::Varint;
  uint64_t value = 0;    // Varint: the value; I32 / I64: the little-endian bits
  uint64_t offset = 0;   // byte offset in the buffer of the value (Len: of the payload)
  uint64_t length = 0;   // Len: payload bytes; I32: 4; I64: 8; Varint: encoded bytes
};

// The fields of one message: bytes [begin, end) of the buffer `base`. `what` names the message
// type in error messages ("GraphProto"); `path` is the file, for errors. Throws mother::Error.
class Cursor {
 public:
  // The top-level message: the whole buffer, depth 0.
  Cursor(const uint8_t* base, uint64_t size, const std::string& path, const char* what);

  // The next field, or false at the end of the message.
  bool next(Field* f);
  // The sub-message held by the length-delimited field f (one level deeper).
  Cursor sub(const Field& f, const char* what) const;

  uint64_t begin() const { return begin_; }
  uint64_t end() const { return end_; }
  int depth() const { return depth_; }
  const uint8_t* base() const { return base_; }
  const std::string& path() const { return *path_; }
  const char* what() const { return what_; }

 private:
  Cursor(const uint8_t* base, uint64_t begin, uint64_t end, int depth, const std::string* path, const char* what)
      : base_(base), begin_(begin), end_(end), pos_(begin), depth_(depth), path_(path), what_(what) {}
  const uint8_t* base_;
  uint64_t begin_, end_, pos_;
  int depth_;
  const std::string* path_;
  const char* what_;
};

// Reads the varint at *pos, which must end before `end`; advances *pos. `what` names the
// enclosing message for errors.
uint64_t read_varint(const uint8_t* base, uint64_t* pos, uint64_t end, const std::string& path, const char* what);

// The number of varints in the packed payload [begin, end), each validated as read_varint does.
uint64_t count_packed_varints(const uint8_t* base, uint64_t begin, uint64_t end, const std::string& path,
                              const char* what);

inline uint32_t load_u32_le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
inline uint64_t load_u64_le(const uint8_t* p) {
  return static_cast<uint64_t>(load_u32_le(p)) | static_cast<uint64_t>(load_u32_le(p + 4)) << 32;
}

}  // namespace pb
}  // namespace mother
