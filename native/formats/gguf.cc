#include "gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_set>

#include "../core/error.h"
#include "../core/json.h"
#include "../core/mapped_file.h"
#include "reader.h"

namespace mother {

namespace {

// GGUF metadata value types (docs/gguf.md).
enum GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12, kTypeCount = 13,
};
const char* const kTypeNames[kTypeCount] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                            "string", "array", "u64", "i64", "f64"};
// Bytes of a fixed-size value, 0 for strings and arrays.
uint64_t fixed_size(uint32_t t) {
  switch (t) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}
// The fewest bytes one value of type t takes (a string: its 8-byte length; an array: its
// 4-byte type and 8-byte count).
uint64_t min_size(uint32_t t) { return t == kString ? 8 : t == kArray ? 12 : fixed_size(t); }

constexpr size_t kArrayTextElems = 64;  // longer arrays are summarised in the metadata text

std::string json_quote(const char* s, size_t n) {
  std::string out = "\"";
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') { out += '\\'; out += static_cast<char>(c); }
    else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out += b; }
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

// The shortest decimal that reads back as the same float (f32) or double.
std::string fmt_double(double v, bool f32) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char b[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(b, sizeof b, "%.*g", digits, v);
    const double back = std::strtod(b, nullptr);
    if (f32 ? static_cast<float>(back) == static_cast<float>(v) : back == v) break;
  }
  return b;
}

class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& path) : p_(data), size_(size), path_(path) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  const uint8_t* here() const { return p_ + pos_; }
  // Fails with ERR_GGUF_TRUNCATED naming `what` unless n more bytes exist.
  void need(uint64_t n, const std::string& what, const std::string& tensor = "") const {
    if (n > left())
      fail(ErrorCode::GgufTruncated, path_, tensor,
           "file is truncated: " + what + " at byte " + std::to_string(pos_) + " needs " + std::to_string(n) +
               " bytes, " + std::to_string(left()) + " are left");
  }
  uint64_t uint(unsigned bytes, const std::string& what, const std::string& tensor = "") {
    need(bytes, what, tensor);
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p_[pos_ + i]) << (8 * i);
    pos_ += bytes;
    return v;
  }
  uint32_t u32(const std::string& what, const std::string& tensor = "") { return static_cast<uint32_t>(uint(4, what, tensor)); }
  uint64_t u64(const std::string& what, const std::string& tensor = "") { return uint(8, what, tensor); }
  void skip(uint64_t n) { pos_ += n; }  // after need()

 private:
  const uint8_t* p_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
};

struct Parser {
  Cursor c;
  const std::string& path;

  // A string: u64 length + bytes. `cap`: its largest allowed length; `utf8`: must be UTF-8.
  std::string read_string(const std::string& what, uint64_t cap, bool utf8, bool nonempty, const std::string& tensor = "") {
    const uint64_t at = c.pos();
    const uint64_t len = c.u64("the length of " + what, tensor);
    if (len > cap)
      fail(ErrorCode::GgufString, path, tensor,
           what + " at byte " + std::to_string(at) + " claims " + std::to_string(len) + " bytes, more than the cap of " +
               std::to_string(cap));
    if (len > c.left())
      fail(ErrorCode::GgufString, path, tensor,
           what + " at byte " + std::to_string(at) + " claims " + std::to_string(len) + " bytes, past the end of the file (" +
               std::to_string(c.left()) + " left)");
    if (nonempty && len == 0) fail(ErrorCode::GgufString, path, tensor, what + " at byte " + std::to_string(at) + " is empty");
    std::string s(reinterpret_cast<const char*>(c.here()), static_cast<size_t>(len));
    size_t bad = 0;
    if (utf8 && !json::valid_utf8(s.data(), s.size(), &bad))
      fail(ErrorCode::GgufString, path, tensor, what + " at byte " + std::to_string(at) + " is not valid UTF-8 (bad byte " + std::to_string(bad) + ")");
    c.skip(len);
    return s;
  }

  // One scalar of fixed-size type t as text (validates bools).
  std::string scalar_text(uint32_t t, const std::string& key) {
    const uint64_t at = c.pos();
    const uint64_t raw = c.uint(static_cast<unsigned>(fixed_size(t)), "the value of " + quoted(key));
    switch (t) {
      case kU8: case kU16: case kU32: case kU64: return std::to_string(raw);
      case kI8: return std::to_string(static_cast<int8_t>(raw));
      case kI16: return std::to_string(static_cast<int16_t>(raw));
      case kI32: return std::to_string(static_cast<int32_t>(raw));
      case kI64: return std::to_string(static_cast<int64_t>(raw));
      case kF32: { float f; uint32_t b = static_cast<uint32_t>(raw); std::memcpy(&f, &b, 4); return fmt_double(f, true); }
      case kF64: { double f; std::memcpy(&f, &raw, 8); return fmt_double(f, false); }
      case kBool:
        if (raw > 1)
          fail(ErrorCode::GgufValue, path, "",
               "bool value of " + quoted(key) + " at byte " + std::to_string(at) + " is " + std::to_string(raw) + ", not 0 or 1");
        return raw ? "true" : "false";
      default: return "";
    }
  }

  // A value of type t; its text goes to *text when text is not null.
  void read_value(uint32_t t, const std::string& key, unsigned depth, std::string* text) {
    if (t == kString) {
      std::string s = read_string("the string value of " + quoted(key), kGgufMaxStringBytes, false, false);
      if (text) *text = depth == 0 ? s : json_quote(s.data(), s.size());
      return;
    }
    if (t != kArray) {
      std::string s = scalar_text(t, key);
      if (text) *text = std::move(s);
      return;
    }
    const uint64_t at = c.pos();
    if (depth + 1 > kGgufMaxDepth)
      fail(ErrorCode::GgufArray, path, "", "array value of " + quoted(key) + " at byte " + std::to_string(at) + " is nested more than " +
                                               std::to_string(kGgufMaxDepth) + " deep");
    const uint32_t et = c.u32("the element type of the array " + quoted(key));
    if (et >= kTypeCount)
      fail(ErrorCode::GgufValue, path, "", "array " + quoted(key) + " at byte " + std::to_string(at) + " has the unknown element type " + std::to_string(et));
    const uint64_t n = c.u64("the length of the array " + quoted(key));
    if (n > kGgufMaxArrayElems)
      fail(ErrorCode::GgufArray, path, "", "array " + quoted(key) + " at byte " + std::to_string(at) + " claims " + std::to_string(n) +
                                               " elements, more than the cap of " + std::to_string(kGgufMaxArrayElems));
    // n <= 2^28 and min_size <= 12: no overflow
    if (n * min_size(et) > c.left())
      fail(ErrorCode::GgufArray, path, "", "array " + quoted(key) + " at byte " + std::to_string(at) + " claims " + std::to_string(n) + " " +
                                               kTypeNames[et] + " elements, more than the " + std::to_string(c.left()) + " bytes left in the file");
    const bool show = text && n <= kArrayTextElems;
    std::string out = show ? "[" : "";
    if (fixed_size(et) && et != kBool && !show) {
      c.skip(n * fixed_size(et));  // checked above
    } else {
      for (uint64_t i = 0; i < n; ++i) {
        std::string e;
        read_value(et, key, depth + 1, show ? &e : nullptr);
        if (show) { if (i) out += ","; out += e; }
      }
    }
    if (text) *text = show ? out + "]" : "[" + std::to_string(n) + " x " + kTypeNames[et] + "]";
  }
};

bool is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

bool ggml_type_dtype(uint32_t t, DType* out) {
  static const struct { uint32_t id; DType d; } kMap[] = {
      {0, DType::F32},      {1, DType::F16},     {2, DType::Q4_0},    {3, DType::Q4_1},    {6, DType::Q5_0},
      {7, DType::Q5_1},     {8, DType::Q8_0},    {9, DType::Q8_1},    {10, DType::Q2_K},   {11, DType::Q3_K},
      {12, DType::Q4_K},    {13, DType::Q5_K},   {14, DType::Q6_K},   {15, DType::Q8_K},   {16, DType::IQ2_XXS},
      {17, DType::IQ2_XS},  {18, DType::IQ3_XXS}, {19, DType::IQ1_S}, {20, DType::IQ4_NL}, {21, DType::IQ3_S},
      {22, DType::IQ2_S},   {23, DType::IQ4_XS}, {24, DType::I8},     {25, DType::I16},    {26, DType::I32},
      {27, DType::I64},     {28, DType::F64},    {29, DType::IQ1_M},  {30, DType::BF16},   {34, DType::TQ1_0},
      {35, DType::TQ2_0},   {39, DType::MXFP4},
  };
  for (const auto& m : kMap)
    if (m.id == t) { *out = m.d; return true; }
  return false;
}

GgufHeader parse_gguf_header(const uint8_t* data, uint64_t size, const std::string& path) {
  if (size < 4 || std::memcmp(data, "GGUF", 4) != 0)
    fail(ErrorCode::GgufMagic, path, "", size < 4 ? "file is " + std::to_string(size) + " bytes, too small for the GGUF magic"
                                                  : std::string("file does not start with the GGUF magic bytes \"GGUF\""));
  Parser ps{Cursor(data, size, path), path};
  Cursor& c = ps.c;
  c.skip(4);
  GgufHeader h;
  h.version = c.u32("the version");
  if (h.version == 0x02000000u || h.version == 0x03000000u)
    fail(ErrorCode::GgufVersion, path, "", "big-endian GGUF files are not supported (version bytes read " + std::to_string(h.version) + ")");
  if (h.version == 1)
    fail(ErrorCode::GgufVersion, path, "", "GGUF version 1 (32-bit counts, 2023) is not supported: re-convert the model with a current llama.cpp");
  if (h.version != 2 && h.version != 3)
    fail(ErrorCode::GgufVersion, path, "", "GGUF version " + std::to_string(h.version) + " is not supported (2 and 3 are)");
  h.tensor_count = c.u64("the tensor count");
  h.kv_count = c.u64("the key/value count");
  // A key/value takes at least 14 bytes (8-byte key length, a 1-byte key, a 4-byte type, a
  // 1-byte value), a tensor info at least 25 (length, a 1-byte name, n_dims, type, offset).
  const uint64_t room = c.left();
  if (h.kv_count > room / 14 || h.tensor_count > room / 25 || h.kv_count * 14 + h.tensor_count * 25 > room)
    fail(ErrorCode::GgufCount, path, "",
         "the header claims " + std::to_string(h.tensor_count) + " tensors and " + std::to_string(h.kv_count) +
             " key/values, more than the " + std::to_string(room) + " bytes after it can hold");

  std::unordered_set<std::string> keys;
  h.metadata.reserve(static_cast<size_t>(h.kv_count));
  for (uint64_t i = 0; i < h.kv_count; ++i) {
    const uint64_t at = c.pos();
    std::string key = ps.read_string("the key of key/value " + std::to_string(i), kGgufMaxKeyBytes, true, true);
    if (!keys.insert(key).second)
      fail(ErrorCode::DuplicateKey, path, "", "duplicate key " + quoted(key) + " at byte " + std::to_string(at));
    const uint32_t t = c.u32("the value type of " + quoted(key));
    if (t >= kTypeCount)
      fail(ErrorCode::GgufValue, path, "", "key " + quoted(key) + " has the unknown value type " + std::to_string(t));
    std::string text;
    if (key == "general.alignment") {
      if (t != kU32)
        fail(ErrorCode::GgufValue, path, "", std::string("\"general.alignment\" must be a u32, got ") + kTypeNames[t]);
      const uint32_t a = c.u32("the value of \"general.alignment\"");
      if (!is_pow2(a))
        fail(ErrorCode::GgufAlignment, path, "", "\"general.alignment\" is " + std::to_string(a) + ", not a power of two");
      h.alignment = a;
      text = std::to_string(a);
    } else {
      if ((key == "split.count" || key == "split.no" || key == "split.tensors.count") &&
          !(t == kU8 || t == kU16 || t == kU32 || t == kU64 || t == kI8 || t == kI16 || t == kI32 || t == kI64))
        fail(ErrorCode::GgufValue, path, "", quoted(key) + " must be an integer, got " + kTypeNames[t]);
      ps.read_value(t, key, 0, &text);
    }
    h.metadata.emplace_back(std::move(key), std::move(text));
  }

  std::unordered_set<std::string> names;
  h.tensors.reserve(static_cast<size_t>(h.tensor_count));
  for (uint64_t i = 0; i < h.tensor_count; ++i) {
    GgufTensorInfo t;
    const uint64_t at = c.pos();
    t.name = ps.read_string("the name of tensor info " + std::to_string(i), kGgufMaxNameBytes, true, true);
    if (!names.insert(t.name).second)
      fail(ErrorCode::DuplicateTensor, path, t.name, "tensor name appears twice in the tensor infos (byte " + std::to_string(at) + ")");
    const uint32_t n_dims = c.u32("the dimension count", t.name);
    if (n_dims > kGgufMaxDims)
      fail(ErrorCode::GgufDims, path, t.name, std::to_string(n_dims) + " dimensions, more than ggml's " + std::to_string(kGgufMaxDims));
    t.count = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.u64("dimension " + std::to_string(d), t.name);
      if (ne > static_cast<uint64_t>(INT64_MAX))
        fail(ErrorCode::GgufDims, path, t.name, "dimension " + std::to_string(d) + " is " + std::to_string(ne) + ", 2^63 or more");
      t.ne.push_back(ne);
      if (__builtin_mul_overflow(t.count, ne, &t.count) || t.count > static_cast<uint64_t>(INT64_MAX))
        fail(ErrorCode::ShapeOverflow, path, t.name, "the product of the dimensions overflows 63 bits");
    }
    t.ggml_type = c.u32("the type", t.name);
    if (!ggml_type_dtype(t.ggml_type, &t.dtype))
      fail(ErrorCode::UnknownDtype, path, t.name,
           "unknown ggml type " + std::to_string(t.ggml_type) +
               (t.ggml_type == 4 || t.ggml_type == 5 || (t.ggml_type >= 31 && t.ggml_type <= 33) || (t.ggml_type >= 36 && t.ggml_type <= 38)
                    ? " (a type ggml no longer reads)"
                    : ""));
    t.offset = c.u64("the data offset", t.name);
    uint32_t be, bb;
    dtype_block(t.dtype, &be, &bb);
    const uint64_t ne0 = t.ne.empty() ? 1 : t.ne[0];
    if (ne0 % be != 0)
      fail(ErrorCode::GgufBlock, path, t.name,
           "first dimension " + std::to_string(ne0) + " is not a multiple of the " + std::to_string(be) + "-element blocks of " + dtype_name(t.dtype));
    if (__builtin_mul_overflow(t.count / be, static_cast<uint64_t>(bb), &t.bytes))
      fail(ErrorCode::ShapeOverflow, path, t.name, "the byte size of the tensor overflows 64 bits");
    h.tensors.push_back(std::move(t));
  }

  // The data section starts at the end of the tensor infos, padded to the alignment.
  const uint64_t end_infos = c.pos();
  const uint64_t pad = (h.alignment - end_infos % h.alignment) % h.alignment;
  h.data_start = end_infos + pad;  // end_infos <= size < 2^64 - 2^32: no overflow
  // Tensor data: in info order, each at the previous one's end padded to the alignment (as
  // gguf.cpp requires), inside the file.
  uint64_t expected = 0;
  for (const GgufTensorInfo& t : h.tensors) {
    if (t.offset % h.alignment != 0)
      fail(ErrorCode::GgufAlignment, path, t.name,
           "data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(h.alignment));
    if (t.offset > expected)
      fail(ErrorCode::OffsetGap, path, t.name,
           "data offset " + std::to_string(t.offset) + " leaves a gap: the previous tensor's data ends (padded) at " + std::to_string(expected));
    if (t.offset < expected)
      fail(ErrorCode::OffsetOverlap, path, t.name,
           "data offset " + std::to_string(t.offset) + " overlaps the previous tensor's data, which ends (padded) at " + std::to_string(expected));
    uint64_t end;
    if (__builtin_add_overflow(t.offset, t.bytes, &end) || end > size - std::min(size, h.data_start) || h.data_start > size)
      fail(ErrorCode::Truncated, path, t.name,
           "file is truncated: tensor data [" + std::to_string(t.offset) + ", " + std::to_string(t.offset) + " + " + std::to_string(t.bytes) +
               ") runs past the end of the data section (" + std::to_string(size > h.data_start ? size - h.data_start : 0) + " bytes)");
    const uint64_t tail = (h.alignment - end % h.alignment) % h.alignment;
    expected = end + tail;  // end <= size: no overflow
  }
  return h;
}

namespace {

bool has_suffix(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

bool claims_gguf(const std::string& path) {
  if (has_suffix(path, ".gguf")) return true;
  const int fd = open_regular_file(path, true);  // never blocks (a FIFO is refused later, by MappedFile)
  if (fd < 0) return false;
  char magic[4];
  const ssize_t n = ::read(fd, magic, 4);
  ::close(fd);
  return n == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

void open_gguf(const std::string& path, Model& into) {
  auto map = std::make_shared<MappedFile>(path);
  GgufHeader h = parse_gguf_header(map->data(), map->size(), path);
  map->release(0, h.data_start < map->size() ? h.data_start : map->size());
  const uint32_t file = static_cast<uint32_t>(into.files.size());
  for (GgufTensorInfo& t : h.tensors) {
    TensorView v;
    v.name = std::move(t.name);
    if (dtype_is_block(t.dtype)) v.set_block(t.dtype);
    else v.set_plain(t.dtype);
    v.shape.assign(t.ne.rbegin(), t.ne.rend());  // Hugging Face order: outermost first
    v.count = t.count;
    v.file = file;
    v.map = map.get();
    v.offset = h.data_start + t.offset;
    v.bytes = t.bytes;
    into.tensors.push_back(std::move(v));
  }
  into.files.push_back(ModelFile{std::move(map), "gguf", h.data_start, std::move(h.metadata)});
}

// ---- after all files of a model: split sets, names, row maps --------------------------------

const std::string* meta(const ModelFile& f, const std::string& key) {
  for (const auto& kv : f.metadata)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

// An integer metadata value (text of an integer scalar), or def.
int64_t meta_int(const ModelFile& f, const std::string& key, int64_t def) {
  const std::string* v = meta(f, key);
  if (!v || v->empty() || v->front() == '[') return def;
  char* end = nullptr;
  const long long x = std::strtoll(v->c_str(), &end, 10);
  return end && *end == '\0' ? static_cast<int64_t>(x) : def;
}

// A head count for layer `layer`: a scalar, or element `layer` of a per-layer array; 0 if none.
uint64_t head_count(const ModelFile& f, const std::string& key, uint64_t layer) {
  const std::string* v = meta(f, key);
  if (!v || v->empty()) return 0;
  if (v->front() != '[') {
    const int64_t x = meta_int(f, key, 0);
    return x > 0 ? static_cast<uint64_t>(x) : 0;
  }
  uint64_t i = 0;
  const char* s = v->c_str() + 1;
  while (*s && *s != ']') {
    char* end = nullptr;
    const long long x = std::strtoll(s, &end, 10);
    if (end == s) return 0;  // a summarised or non-integer array
    if (i == layer) return x > 0 ? static_cast<uint64_t>(x) : 0;
    ++i;
    s = end;
    if (*s == ',') ++s;
  }
  return 0;
}

// The layer number of "blk.N.*", or -1.
int64_t layer_of(const std::string& name) {
  if (name.compare(0, 4, "blk.") != 0) return -1;
  size_t i = 4;
  int64_t n = 0;
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') n = n * 10 + (name[i++] - '0');
  return i < name.size() && name[i] == '.' ? n : -1;
}

void finish_gguf(Model& m) {
  std::vector<uint32_t> files;
  for (uint32_t i = 0; i < m.files.size(); ++i)
    if (m.files[i].format == "gguf") files.push_back(i);
  if (files.empty()) return;
  const ModelFile& first = m.files[files[0]];

  // A split set: every file says how many there are and which one it is.
  const int64_t count = meta_int(first, "split.count", 1);
  if (count > 1 || files.size() > 1) {
    for (size_t k = 0; k < files.size(); ++k) {
      const ModelFile& f = m.files[files[k]];
      const int64_t c = meta_int(f, "split.count", -1), no = meta_int(f, "split.no", -1);
      if (c != count || c < 1)
        fail(ErrorCode::GgufSplit, f.path(), "",
             "split.count is " + (meta(f, "split.count") ? *meta(f, "split.count") : std::string("missing")) +
                 ", but the first file of the set says " + std::to_string(count));
      if (no != static_cast<int64_t>(k))
        fail(ErrorCode::GgufSplit, f.path(), "",
             "split.no is " + (meta(f, "split.no") ? *meta(f, "split.no") : std::string("missing")) + ", but this is file " +
                 std::to_string(k) + " (0-based) of the split set as given");
    }
    if (static_cast<int64_t>(files.size()) < count)
      fail(ErrorCode::MissingShard, m.files[files.back()].path(), "",
           "split set of " + std::to_string(count) + " files, only " + std::to_string(files.size()) + " given: split " +
               std::to_string(files.size() + 1) + " of " + std::to_string(count) + " is missing");
    if (static_cast<int64_t>(files.size()) > count)
      fail(ErrorCode::GgufSplit, m.files[files[count]].path(), "",
           "split set of " + std::to_string(count) + " files, " + std::to_string(files.size()) + " given");
    const int64_t want = meta_int(first, "split.tensors.count", -1);
    uint64_t have = 0;
    for (const TensorView& t : m.tensors)
      if (m.files[t.file].format == "gguf") ++have;
    if (want >= 0 && static_cast<uint64_t>(want) != have)
      fail(ErrorCode::GgufSplit, first.path(), "",
           "split.tensors.count is " + std::to_string(want) + ", the split files hold " + std::to_string(have) + " tensors");
  }

  // llama.cpp names -> Hugging Face names, and the Q/K permutation undone.
  const std::string* arch_p = meta(first, "general.architecture");
  if (!arch_p) return;
  const std::string arch = *arch_p;
  const bool permute = gguf_permutes_qk(arch);
  std::vector<std::pair<uint64_t, std::shared_ptr<const std::vector<uint32_t>>>> cache;  // (rows * 2^20 + heads) -> map
  for (TensorView& t : m.tensors) {
    if (m.files[t.file].format != "gguf") continue;
    const std::string gguf_name = t.name;
    std::string hf = gguf_hf_name(arch, gguf_name);
    if (!hf.empty()) t.name = std::move(hf);
    if (!permute) continue;
    const bool q = gguf_name.find(".attn_q.") != std::string::npos, k = gguf_name.find(".attn_k.") != std::string::npos;
    const int64_t layer = layer_of(gguf_name);
    if ((!q && !k) || layer < 0 || t.shape.empty()) continue;
    const uint64_t heads_q = head_count(first, arch + ".attention.head_count", static_cast<uint64_t>(layer));
    const uint64_t heads_kv = head_count(first, arch + ".attention.head_count_kv", static_cast<uint64_t>(layer));
    const uint64_t heads = q ? heads_q : (heads_kv ? heads_kv : heads_q);
    const uint64_t rows = t.shape[0];
    if (heads == 0 || rows > UINT32_MAX) continue;
    const uint64_t key = (rows << 20) ^ heads;
    std::shared_ptr<const std::vector<uint32_t>> map;
    for (const auto& e : cache)
      if (e.first == key) map = e.second;
    if (!map) {
      auto v = std::make_shared<std::vector<uint32_t>>(gguf_qk_row_map(rows, heads));
      if (v->empty()) continue;  // rows not a multiple of 2 heads: left as stored
      map = v;
      cache.emplace_back(key, map);
      m.row_maps.push_back(map);
    }
    t.row_map = map.get();
  }
}

}  // namespace

extern const Reader kGgufReader = {"gguf", claims_gguf, open_gguf, finish_gguf};

}  // namespace mother
