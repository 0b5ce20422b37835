#include "safetensors.h"

#include <algorithm>
#include <memory>

#include "../core/error.h"
#include "../core/json.h"
#include "../core/mapped_file.h"
#include "reader.h"

namespace mother {

namespace {

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

const char* kind_at(json::Reader& r) {
  switch (r.peek()) {
    case '{': return "object";
    case '[': return "array";
    case '"': return "string";
    case 't': case 'f': return "boolean";
    case 'n': return "null";
    default: return "number";
  }
}

// Reads an array of non-negative integers below 2^64 (the reader is on '[').
bool read_u64_array(json::Reader& r, std::vector<uint64_t>* out, std::string* bad) {
  r.expect('[', "'['");
  r.skip_ws();
  if (r.consume(']')) return true;
  for (;;) {
    r.skip_ws();
    if (r.peek() == '-' || (r.peek() >= '0' && r.peek() <= '9')) {
      json::Value v;
      v.kind = json::Value::Kind::Number;
      v.text = r.parse_number();
      uint64_t x;
      if (!json::to_u64(v, &x)) { *bad = v.text; return false; }
      out->push_back(x);
    } else {
      *bad = kind_at(r);
      return false;
    }
    r.skip_ws();
    if (r.consume(',')) continue;
    r.expect(']', "']'");
    return true;
  }
}

// One tensor entry {"dtype", "shape", "data_offsets", ...} (the reader is on its value).
TensorInfo read_tensor(json::Reader& r, const std::string& path, const std::string& name) {
  if (r.peek() != '{')
    fail(ErrorCode::HeaderSchema, path, name, std::string("expected an object, got ") + kind_at(r));
  TensorInfo t;
  t.name = name;
  bool has_dtype = false, has_shape = false, has_offsets = false;
  std::string dtype_name;
  r.expect('{', "'{'");
  r.skip_ws();
  if (!r.consume('}')) {
    for (;;) {
      r.skip_ws();
      std::string key = r.parse_string();
      r.skip_ws();
      r.expect(':', "':'");
      r.skip_ws();
      if (key == "dtype") {
        if (r.peek() != '"')
          fail(ErrorCode::HeaderSchema, path, name, std::string("\"dtype\" must be a string, got ") + kind_at(r));
        dtype_name = r.parse_string();
        has_dtype = true;
      } else if (key == "shape") {
        if (r.peek() != '[')
          fail(ErrorCode::HeaderSchema, path, name, std::string("\"shape\" must be an array, got ") + kind_at(r));
        std::string bad;
        if (!read_u64_array(r, &t.shape, &bad))
          fail(ErrorCode::HeaderSchema, path, name, "\"shape\" entries must be non-negative integers below 2^64, got " + bad);
        has_shape = true;
      } else if (key == "data_offsets") {
        std::vector<uint64_t> offs;
        std::string bad;
        if (r.peek() != '[') fail(ErrorCode::HeaderSchema, path, name, "\"data_offsets\" must be an array [begin, end]");
        if (!read_u64_array(r, &offs, &bad))
          fail(ErrorCode::HeaderSchema, path, name, "\"data_offsets\" entries must be non-negative integers below 2^64, got " + bad);
        if (offs.size() != 2) fail(ErrorCode::HeaderSchema, path, name, "\"data_offsets\" must be an array [begin, end]");
        t.begin = offs[0];
        t.end = offs[1];
        has_offsets = true;
      } else {
        r.skip_value(1);  // unknown fields are ignored, as by the reference reader
      }
      r.skip_ws();
      if (r.consume(',')) continue;
      r.expect('}', "'}'");
      break;
    }
  }
  if (!has_dtype) fail(ErrorCode::HeaderSchema, path, name, "missing field \"dtype\"");
  if (!has_shape) fail(ErrorCode::HeaderSchema, path, name, "missing field \"shape\"");
  if (!has_offsets) fail(ErrorCode::HeaderSchema, path, name, "missing field \"data_offsets\"");
  if (!dtype_from_name(dtype_name, &t.dtype))
    fail(ErrorCode::UnknownDtype, path, name, "unknown dtype " + quoted(dtype_name));
  return t;
}

// The header's top-level object, straight into the table (JSON already validated).
void read_table(json::Reader& r, const std::string& path, Header& h) {
  r.rewind();
  r.skip_ws();
  if (r.peek() != '{')
    fail(ErrorCode::HeaderSchema, path, "", std::string("header must be a JSON object, got ") + kind_at(r));
  r.expect('{', "'{'");
  r.skip_ws();
  if (r.consume('}')) return;
  for (;;) {
    r.skip_ws();
    std::string key = r.parse_string();
    r.skip_ws();
    r.expect(':', "':'");
    r.skip_ws();
    if (key == "__metadata__") {
      if (r.peek() == 'n') {
        r.skip_value(1);
      } else {
        if (r.peek() != '{') fail(ErrorCode::HeaderSchema, path, "", "\"__metadata__\" must be an object of strings");
        json::Value meta = r.parse_value(1);
        for (const auto& kv : meta.members) {
          if (!kv.second.is_string())
            fail(ErrorCode::HeaderSchema, path, "", "\"__metadata__\" value for " + quoted(kv.first) + " must be a string");
          h.metadata.emplace_back(kv.first, kv.second.text);
        }
      }
    } else {
      h.tensors.push_back(read_tensor(r, path, key));
    }
    r.skip_ws();
    if (r.consume(',')) continue;
    r.expect('}', "'}'");
    return;
  }
}

}  // namespace

Header parse_header(const uint8_t* data, uint64_t file_size, const std::string& path) {
  if (file_size < 8)
    fail(ErrorCode::FileTooSmall, path, "",
         "file is " + std::to_string(file_size) + " bytes, too small for a safetensors header (8-byte length prefix)");
  Header h;
  h.header_len = read_u64_le(data);
  if (h.header_len > kMaxHeaderBytes)
    fail(ErrorCode::HeaderTooLarge, path, "",
         "header length " + std::to_string(h.header_len) + " exceeds the 100,000,000-byte limit");
  if (h.header_len > file_size - 8)
    fail(ErrorCode::HeaderLength, path, "",
         "header length " + std::to_string(h.header_len) + " runs past the end of the file (" +
             std::to_string(file_size) + " bytes)");
  h.data_start = 8 + h.header_len;
  const char* text = reinterpret_cast<const char*>(data + 8);
  size_t bad = 0;
  if (!json::valid_utf8(text, h.header_len, &bad))
    fail(ErrorCode::HeaderUtf8, path, "", "header is not valid UTF-8 (bad byte at header offset " + std::to_string(bad) + ")");

  // Phase 1: the whole header must be valid JSON (syntax, nesting, duplicate keys), checked
  // without building a tree. Phase 2 reads the tensor table straight from the text, so memory
  // is the table itself, not a JSON tree (~90 bytes per value) of a header of up to 100 MB.
  json::Reader r(text, h.header_len);
  try {
    r.validate_document();
  } catch (const json::ParseError& e) {
    if (e.duplicate_key) {
      // A duplicate top-level key is a duplicated tensor; a nested one is a repeated field inside
      // one tensor's entry (that tensor is the one concerned) or a repeated __metadata__ key.
      const std::vector<std::string>& outer = e.path;
      const std::string at = " at header offset " + std::to_string(e.offset);
      if (outer.empty())
        fail(ErrorCode::DuplicateKey, path, e.key == "__metadata__" ? "" : e.key,
             "duplicate key " + quoted(e.key) + at);
      if (outer[0] == "__metadata__")
        fail(ErrorCode::DuplicateKey, path, "", "duplicate key " + quoted(e.key) + " in \"__metadata__\"" + at);
      fail(ErrorCode::DuplicateKey, path, outer[0], "duplicate key " + quoted(e.key) + " inside the tensor entry" + at);
    }
    fail(ErrorCode::HeaderJson, path, "", "header is not valid JSON: " + e.message + " at header offset " + std::to_string(e.offset));
  }
  try {
    read_table(r, path, h);
  } catch (const json::ParseError& e) {  // cannot happen after validation; never let it escape
    fail(ErrorCode::HeaderJson, path, "", "header is not valid JSON: " + e.message);
  }

  // Offsets must tile the data buffer exactly, from 0, in sorted order.
  std::stable_sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (auto& t : h.tensors) {
    if (t.end < t.begin)
      fail(ErrorCode::OffsetOrder, path, t.name,
           "data_offsets end " + std::to_string(t.end) + " is before begin " + std::to_string(t.begin));
    if (t.begin > cursor)
      fail(ErrorCode::OffsetGap, path, t.name,
           "data_offsets begin " + std::to_string(t.begin) + " leaves a gap: previous data ends at " + std::to_string(cursor));
    if (t.begin < cursor)
      fail(ErrorCode::OffsetOverlap, path, t.name,
           "data_offsets begin " + std::to_string(t.begin) + " overlaps data that ends at " + std::to_string(cursor));
    uint64_t count = 1;
    for (uint64_t d : t.shape)
      if (!checked_mul(count, d, &count))
        fail(ErrorCode::ShapeOverflow, path, t.name, "the product of the shape overflows 64 bits");
    uint64_t bits;
    if (!checked_mul(count, dtype_bits(t.dtype), &bits))
      fail(ErrorCode::ShapeOverflow, path, t.name, "shape x dtype size overflows 64 bits");
    if (bits % 8 != 0)
      fail(ErrorCode::SizeMismatch, path, t.name,
           std::to_string(count) + " elements of " + dtype_name(t.dtype) + " are not a whole number of bytes");
    if (bits / 8 != t.end - t.begin)
      fail(ErrorCode::SizeMismatch, path, t.name,
           "shape x dtype is " + std::to_string(bits / 8) + " bytes but data_offsets span " +
               std::to_string(t.end - t.begin) + " bytes");
    t.count = count;
    cursor = t.end;
  }
  // cursor <= 2^64-1 and data_start <= 100,000,008: compare without overflow.
  uint64_t available = file_size - h.data_start;
  if (cursor > available)
    fail(ErrorCode::Truncated, path, h.tensors.empty() ? "" : h.tensors.back().name,
         "file is truncated: tensor data needs " + std::to_string(cursor) + " bytes after the header, the file has " +
             std::to_string(available));
  if (cursor < available)
    fail(ErrorCode::TrailingBytes, path, "",
         std::to_string(available - cursor) + " trailing bytes after the end of the tensor data");
  return h;
}

namespace {

bool claims_safetensors(const std::string& path) {
  static const std::string kSuffix = ".safetensors";
  return path.size() >= kSuffix.size() && path.compare(path.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

void open_safetensors(const std::string& path, Model& into) {
  auto map = std::make_shared<MappedFile>(path);
  Header h = parse_header(map->data(), map->size(), path);
  // The header has been parsed; its pages are not needed any more.
  map->release(0, h.data_start);
  const uint32_t file = static_cast<uint32_t>(into.files.size());
  for (TensorInfo& t : h.tensors) {
    TensorView v;
    v.name = std::move(t.name);
    v.set_plain(t.dtype);
    v.shape = std::move(t.shape);
    v.count = t.count;
    v.file = file;
    v.map = map.get();
    v.offset = h.data_start + t.begin;
    v.bytes = t.end - t.begin;
    into.tensors.push_back(std::move(v));
  }
  into.files.push_back(ModelFile{std::move(map), "safetensors", h.header_len, std::move(h.metadata)});
}

}  // namespace

extern const Reader kSafetensorsReader = {"safetensors", claims_safetensors, open_safetensors};

}  // namespace mother
