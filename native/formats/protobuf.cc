#include "protobuf.h"

#include "reader.h"

namespace mother {
namespace pb {

namespace {

std::string at(uint64_t offset, const char* what) {
  return " at byte " + std::to_string(offset) + " (in " + what + ")";
}

}  // namespace

const char* wire_name(Wire w) {
  switch (w) {
    case Wire::Varint: return "varint";
    case Wire::I64: return "fixed64";
    case Wire::Len: return "length-delimited";
    case Wire::I32: return "fixed32";
  }
  return "unknown";
}

uint64_t read_varint(const uint8_t* base, uint64_t* pos, uint64_t end, const std::string& path, const char* what) {
  const uint64_t start = *pos;
  uint64_t v = 0;
  for (unsigned i = 0; i < 10; ++i) {
    if (start + i >= end)
      fail(ErrorCode::ProtobufTruncated, path, "",
           "protobuf: varint cut off by the end of its message after " + std::to_string(i) + " byte(s)" + at(start, what));
    const uint8_t b = base[start + i];
    if (i == 9 && (b & 0x80))
      fail(ErrorCode::ProtobufVarint, path, "", "protobuf: varint longer than 10 bytes" + at(start, what));
    if (i == 9 && b > 1)
      fail(ErrorCode::ProtobufVarint, path, "", "protobuf: varint above 2^64 - 1" + at(start, what));
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *pos = start + i + 1;
      return v;
    }
  }
  fail(ErrorCode::Internal, path, "", "protobuf: unreachable end of read_varint" + at(start, what));
}

uint64_t count_packed_varints(const uint8_t* base, uint64_t begin, uint64_t end, const std::string& path,
                              const char* what) {
  uint64_t n = 0;
  uint64_t pos = begin;
  while (pos < end) {
    read_varint(base, &pos, end, path, what);
    ++n;
  }
  return n;
}

Cursor::Cursor(const uint8_t* base, uint64_t size, const std::string& path, const char* what)
    : base_(base), begin_(0), end_(size), pos_(0), depth_(0), path_(&path), what_(what) {}

bool Cursor::next(Field* f) {
  if (pos_ >= end_) return false;
  const uint64_t tag_at = pos_;
  const uint64_t tag = read_varint(base_, &pos_, end_, *path_, what_);
  const uint64_t wire = tag & 7;
  const uint64_t number = tag >> 3;
  if (number == 0 || number > 0x1fffffff)
    fail(ErrorCode::ProtobufTag, *path_, "", "protobuf: field number " + std::to_string(number) + " is outside 1 .. 2^29 - 1" + at(tag_at, what_));
  if (wire == 3 || wire == 4)
    fail(ErrorCode::ProtobufTag, *path_, "",
         "protobuf: field " + std::to_string(number) + " is a group (wire type " + std::to_string(wire) +
             "), which ONNX never uses" + at(tag_at, what_));
  if (wire == 6 || wire == 7)
    fail(ErrorCode::ProtobufTag, *path_, "", "protobuf: undefined wire type " + std::to_string(wire) + " of field " + std::to_string(number) + at(tag_at, what_));
  f->number = static_cast<uint32_t>(number);
  f->wire = static_cast<Wire>(wire);
  switch (f->wire) {
    case Wire::Varint: {
      f->offset = pos_;
      f->value = read_varint(base_, &pos_, end_, *path_, what_);
      f->length = pos_ - f->offset;
      return true;
    }
    case Wire::I32:
    case Wire::I64: {
      const uint64_t n = f->wire == Wire::I32 ? 4 : 8;
      if (end_ - pos_ < n)
        fail(ErrorCode::ProtobufTruncated, *path_, "",
             std::string("protobuf: ") + wire_name(f->wire) + " value of field " + std::to_string(number) +
                 " cut off by the end of its message (" + std::to_string(end_ - pos_) + " byte(s) left)" + at(pos_, what_));
      f->offset = pos_;
      f->length = n;
      f->value = n == 4 ? load_u32_le(base_ + pos_) : load_u64_le(base_ + pos_);
      pos_ += n;
      return true;
    }
    case Wire::Len: {
      const uint64_t len_at = pos_;
      const uint64_t len = read_varint(base_, &pos_, end_, *path_, what_);
      if (len > end_ - pos_)
        fail(ErrorCode::ProtobufLength, *path_, "",
             "protobuf: field " + std::to_string(number) + " is " + std::to_string(len) + " bytes long, past the end of its message (" +
                 std::to_string(end_ - pos_) + " byte(s) left)" + at(len_at, what_));
      f->offset = pos_;
      f->length = len;
      f->value = 0;
      pos_ += len;
      return true;
    }
  }
  return false;  // unreachable: every wire type is handled above
}

Cursor Cursor::sub(const Field& f, const char* what) const {
  if (depth_ + 1 > kMaxDepth)
    fail(ErrorCode::ProtobufDepth, *path_, "",
         "protobuf: messages nested deeper than " + std::to_string(kMaxDepth) + at(f.offset, what));
  return Cursor(base_, f.offset, f.offset + f.length, depth_ + 1, path_, what);
}

}  // namespace pb
}  // namespace mother
