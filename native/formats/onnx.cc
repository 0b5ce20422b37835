#include "onnx.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "../core/error.h"
#include "../core/json.h"
#include "../core/mapped_file.h"
#include "protobuf.h"
#include "reader.h"

namespace mother {

namespace {

using pb::Cursor;
using pb::Field;
using pb::Wire;

// ---- field numbers (onnx/onnx.proto) -----------------------------------------------------

namespace model_f { enum : uint32_t { ir_version = 1, producer_name = 2, producer_version = 3, domain = 4, model_version = 5, graph = 7, opset_import = 8, metadata_props = 14 }; }
namespace opset_f { enum : uint32_t { domain = 1, version = 2 }; }
namespace entry_f { enum : uint32_t { key = 1, value = 2 }; }  // StringStringEntryProto
namespace graph_f { enum : uint32_t { node = 1, initializer = 5, sparse_initializer = 15 }; }
namespace node_f { enum : uint32_t { input = 1, output = 2, op_type = 4, attribute = 5, domain = 7 }; }
namespace attr_f { enum : uint32_t { name = 1, f = 2, i = 3, s = 4, t = 5, g = 6, floats = 7, ints = 8, strings = 9, graphs = 11, type = 20, sparse_tensor = 22 }; }
namespace attr_type { enum : uint64_t { FLOAT = 1, INT = 2, STRING = 3, TENSOR = 4, GRAPH = 5, FLOATS = 6, INTS = 7, STRINGS = 8, GRAPHS = 10, SPARSE_TENSOR = 11 }; }
namespace tensor_f { enum : uint32_t { dims = 1, data_type = 2, segment = 3, float_data = 4, int32_data = 5, string_data = 6, int64_data = 7, name = 8, raw_data = 9, double_data = 10, uint64_data = 11, external_data = 13, data_location = 14 }; }
namespace sparse_f { enum : uint32_t { values = 1 }; }

// ---- data types --------------------------------------------------------------------------

// Which repeated field of TensorProto holds a data type's values when raw_data is not used.
enum class Typed : uint8_t { Float, Int32, String, Int64, Double, Uint64 };

struct TypeInfo {
  const char* name;
  unsigned bits;         // per element in raw_data (0: STRING)
  bool readable;         // has a mother dtype
  DType dtype;
  Typed field;
  unsigned vnum, vden;   // typed values per element: vnum / vden (complex 2/1, 4-bit 1/2, 2-bit 1/4)
  int64_t lo;            // int32_data / uint64_data value range (unsigned bound for uint64_data)
  uint64_t hi;
  const char* skip;      // why it is left out, when not readable
};

constexpr int64_t kI32Min = -2147483648LL;
constexpr uint64_t kU64Max = ~0ull;

// Index = TensorProto.DataType.
const TypeInfo kTypes[] = {
    {"UNDEFINED", 0, false, DType::F32, Typed::Float, 1, 1, 0, 0, nullptr},
    {"FLOAT", 32, true, DType::F32, Typed::Float, 1, 1, 0, 0, nullptr},
    {"UINT8", 8, true, DType::U8, Typed::Int32, 1, 1, 0, 255, nullptr},
    {"INT8", 8, true, DType::I8, Typed::Int32, 1, 1, -128, 127, nullptr},
    {"UINT16", 16, true, DType::U16, Typed::Int32, 1, 1, 0, 65535, nullptr},
    {"INT16", 16, true, DType::I16, Typed::Int32, 1, 1, -32768, 32767, nullptr},
    {"INT32", 32, true, DType::I32, Typed::Int32, 1, 1, kI32Min, 2147483647, nullptr},
    {"INT64", 64, true, DType::I64, Typed::Int64, 1, 1, 0, 0, nullptr},
    {"STRING", 0, false, DType::F32, Typed::String, 1, 1, 0, 0, "strings are not weights"},
    {"BOOL", 8, true, DType::BOOL, Typed::Int32, 1, 1, 0, 1, nullptr},
    {"FLOAT16", 16, true, DType::F16, Typed::Int32, 1, 1, 0, 65535, nullptr},
    {"DOUBLE", 64, true, DType::F64, Typed::Double, 1, 1, 0, 0, nullptr},
    {"UINT32", 32, true, DType::U32, Typed::Uint64, 1, 1, 0, 4294967295ull, nullptr},
    {"UINT64", 64, true, DType::U64, Typed::Uint64, 1, 1, 0, kU64Max, nullptr},
    {"COMPLEX64", 64, true, DType::C64, Typed::Float, 2, 1, 0, 0, nullptr},
    {"COMPLEX128", 128, false, DType::F32, Typed::Double, 2, 1, 0, 0, "COMPLEX128 has no dtype in mother"},
    {"BFLOAT16", 16, true, DType::BF16, Typed::Int32, 1, 1, 0, 65535, nullptr},
    {"FLOAT8E4M3FN", 8, true, DType::F8_E4M3, Typed::Int32, 1, 1, 0, 255, nullptr},
    {"FLOAT8E4M3FNUZ", 8, true, DType::F8_E4M3FNUZ, Typed::Int32, 1, 1, 0, 255, nullptr},
    {"FLOAT8E5M2", 8, true, DType::F8_E5M2, Typed::Int32, 1, 1, 0, 255, nullptr},
    {"FLOAT8E5M2FNUZ", 8, true, DType::F8_E5M2FNUZ, Typed::Int32, 1, 1, 0, 255, nullptr},
    {"UINT4", 4, false, DType::F32, Typed::Int32, 1, 2, 0, 255, "4-bit integers have no dtype in mother"},
    {"INT4", 4, false, DType::F32, Typed::Int32, 1, 2, 0, 255, "4-bit integers have no dtype in mother"},
    {"FLOAT4E2M1", 4, true, DType::F4, Typed::Int32, 1, 2, 0, 255, nullptr},
    {"FLOAT8E8M0", 8, true, DType::F8_E8M0, Typed::Int32, 1, 1, 0, 255, nullptr},
    {"UINT2", 2, false, DType::F32, Typed::Int32, 1, 4, 0, 255, "2-bit integers have no dtype in mother"},
    {"INT2", 2, false, DType::F32, Typed::Int32, 1, 4, 0, 255, "2-bit integers have no dtype in mother"},
};
constexpr int32_t kTypeCount = static_cast<int32_t>(sizeof(kTypes) / sizeof(kTypes[0]));

const char* typed_field_name(Typed t) {
  switch (t) {
    case Typed::Float: return "float_data";
    case Typed::Int32: return "int32_data";
    case Typed::String: return "string_data";
    case Typed::Int64: return "int64_data";
    case Typed::Double: return "double_data";
    case Typed::Uint64: return "uint64_data";
  }
  return "?";
}

// ---- helpers ----------------------------------------------------------------------------

std::string str(uint64_t v) { return std::to_string(v); }

// Every record of one repeated numeric field of a message.
struct Repeated {
  uint64_t records = 0;
  uint64_t values = 0;
  bool one_packed = false;       // exactly one record, length-delimited (packed)
  uint64_t offset = 0, length = 0;  // of that record's payload
};

// A node that consumes a quantised weight (an input named NAME_quantized, at the position the
// op takes its weight), and the axis it says that weight's per-channel scale runs along.
struct QuantUse {
  std::string op;
  int64_t axis = 0;      // as the op gives it: negative counts from the end
  bool blocked = false;  // DequantizeLinear with block_size > 0 (blocked quantisation)
};

// The state of one parse.
struct Ctx {
  const uint8_t* data;
  const std::string& path;
  OnnxModel& out;
  std::unordered_set<std::string> names;
  uint64_t initializers = 0, constants = 0;  // read (not skipped)
  std::unordered_map<std::string, std::vector<QuantUse>> uses;  // by the weight's name
};

const std::string kQuantizedSuffix = "_quantized";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The ops that consume a quantised weight: the weight's input position, and the axis of its
// per-channel scale (DequantizeLinear: its axis attribute, default 1; the convolutions: the
// output channels, 0; the matrix products: B's columns, the last axis).
struct QuantOp {
  const char* op;
  size_t input;
  int64_t axis;
  bool axis_attr;
};
const QuantOp kQuantOps[] = {
    {"DequantizeLinear", 0, 1, true},       {"ConvInteger", 1, 0, false},          {"QLinearConv", 3, 0, false},
    {"MatMulInteger", 1, -1, false},        {"QLinearMatMul", 3, -1, false},      {"DynamicQuantizeMatMul", 1, -1, false},
    {"MatMulIntegerToFloat", 1, -1, false},
};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string shape_str(const std::vector<uint64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

bool last_read(const Ctx& c) { return !c.out.tensors.empty() && c.out.tensors.back().storage != OnnxStorage::Skipped; }

// A string field: checked for length and UTF-8 (names end up as JS strings and must
// round-trip). `tensor` attributes the error.
std::string read_string(const Ctx& c, const Field& f, const char* field, uint64_t cap, const std::string& tensor) {
  if (f.wire != Wire::Len)
    fail(ErrorCode::OnnxSchema, c.path, tensor, std::string("field ") + field + " must be length-delimited, got " + pb::wire_name(f.wire) + " at byte " + str(f.offset));
  if (f.length > cap)
    fail(ErrorCode::OnnxSchema, c.path, tensor, std::string(field) + " is " + str(f.length) + " bytes, above the limit of " + str(cap) + " at byte " + str(f.offset));
  const char* p = reinterpret_cast<const char*>(c.data + f.offset);
  size_t bad = 0;
  if (!json::valid_utf8(p, f.length, &bad))
    fail(ErrorCode::OnnxSchema, c.path, tensor, std::string(field) + " is not valid UTF-8 (bad byte at " + str(f.offset + bad) + ")");
  return std::string(p, f.length);
}

void expect_wire(const Ctx& c, const Field& f, Wire w, const char* field, const std::string& tensor) {
  if (f.wire != w)
    fail(ErrorCode::OnnxSchema, c.path, tensor,
         std::string("field ") + field + " must be " + pb::wire_name(w) + ", got " + pb::wire_name(f.wire) + " at byte " + str(f.offset));
}

void once(const Ctx& c, bool* seen, const Field& f, const char* field, const std::string& tensor) {
  if (*seen) fail(ErrorCode::OnnxSchema, c.path, tensor, std::string("field ") + field + " appears twice (at byte " + str(f.offset) + ")");
  *seen = true;
}

// Adds one record of a repeated numeric field: `scalar` is its unpacked wire type (Varint,
// I32, I64); packed records are length-delimited.
void add_record(const Ctx& c, Repeated* r, const Field& f, Wire scalar, const char* field, const std::string& tensor,
                const char* msg) {
  if (f.wire == scalar) {
    r->values += 1;
  } else if (f.wire == Wire::Len) {
    if (scalar == Wire::Varint) {
      r->values += pb::count_packed_varints(c.data, f.offset, f.offset + f.length, c.path, msg);
    } else {
      const uint64_t w = scalar == Wire::I32 ? 4 : 8;
      if (f.length % w != 0)
        fail(ErrorCode::ProtobufTruncated, c.path, tensor,
             std::string("protobuf: packed ") + field + " of " + str(f.length) + " bytes is not a whole number of " + str(w) + "-byte values at byte " + str(f.offset));
      r->values += f.length / w;
    }
    if (r->records == 0) {
      r->offset = f.offset;
      r->length = f.length;
    }
  } else {
    fail(ErrorCode::OnnxSchema, c.path, tensor,
         std::string("field ") + field + " must be " + pb::wire_name(scalar) + " or packed, got " + pb::wire_name(f.wire) + " at byte " + str(f.offset));
  }
  r->one_packed = r->records == 0 && f.wire == Wire::Len;
  r->records += 1;
}

// Calls fn(value, offset) for every value of field `number` in the message (packed or not);
// the records were validated by add_record.
template <typename Fn>
void for_each_value(const Cursor& msg, uint32_t number, Wire scalar, const std::string& path, Fn fn) {
  Cursor c = msg;
  Field f;
  const uint8_t* data = msg.base();
  while (c.next(&f)) {
    if (f.number != number) continue;
    if (f.wire != Wire::Len) {
      fn(f.value, f.offset);
      continue;
    }
    uint64_t pos = f.offset;
    const uint64_t end = f.offset + f.length;
    while (pos < end) {
      const uint64_t at = pos;
      if (scalar == Wire::Varint) {
        fn(pb::read_varint(data, &pos, end, path, msg.what()), at);
      } else if (scalar == Wire::I32) {
        fn(pb::load_u32_le(data + pos), at);
        pos += 4;
      } else {
        fn(pb::load_u64_le(data + pos), at);
        pos += 8;
      }
    }
  }
}

void put_le(std::vector<uint8_t>& out, uint64_t v, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Reserves `bytes` of decoded copy for `name` (8-byte aligned); returns its offset.
uint64_t reserve_decoded(Ctx& c, uint64_t bytes, const std::string& name, const char* field) {
  std::vector<uint8_t>& d = c.out.decoded;
  const uint64_t start = (d.size() + 7) / 8 * 8;
  if (bytes > kOnnxMaxDecodedBytes || start > kOnnxMaxDecodedBytes - bytes)
    fail(ErrorCode::OnnxDecodeLimit, c.path, name,
         std::string("decoding ") + field + " needs " + str(bytes) + " bytes, and the decoded copies of this file would exceed " +
             str(kOnnxMaxDecodedBytes) + " bytes (store large tensors in raw_data or external data)");
  d.resize(start);
  d.reserve(start + bytes);
  return start;
}

bool is_digits(const std::string& s) {
  if (s.empty() || s.size() > 20) return false;
  for (char ch : s)
    if (ch < '0' || ch > '9') return false;
  return true;
}

bool parse_u64(const std::string& s, uint64_t* out) {
  if (!is_digits(s)) return false;
  uint64_t v = 0;
  for (char ch : s) {
    const uint64_t d = static_cast<uint64_t>(ch - '0');
    if (v > (kU64Max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// A location relative to the model's folder that cannot leave it: not absolute, no ".." or
// empty parts, no NUL (the same rule as shard names in an index).
bool confined(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\0') != std::string::npos) return false;
  size_t start = 0;
  for (;;) {
    const size_t slash = p.find('/', start);
    const std::string part = p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

void add_name(Ctx& c, const std::string& name, const char* what) {
  if (!c.names.insert(name).second)
    fail(ErrorCode::OnnxDuplicateName, c.path, name, std::string("a second tensor (") + what + ") with this name");
}

void skip_tensor(Ctx& c, OnnxTensor&& t, const std::string& why) {
  t.storage = OnnxStorage::Skipped;
  t.skipped = why;
  c.out.metadata.emplace_back("onnx.skipped." + t.name, why);
  c.out.tensors.push_back(std::move(t));
}

// ---- TensorProto ----------------------------------------------------------------------

// Reads the TensorProto `msg` as the tensor `name` (an initializer's own name, or a Constant's
// output) and appends it.
void read_tensor(Ctx& c, const Cursor& msg, const std::string& name) {
  OnnxTensor t;
  t.name = name;
  bool has_type = false, has_raw = false, has_location = false, has_segment = false;
  uint64_t raw_offset = 0, raw_length = 0, location = 0, dtype_value = 0;
  Repeated typed[6];  // by Typed
  uint64_t strings = 0;
  std::vector<std::pair<std::string, std::string>> external;
  bool negative_dim = false;
  uint64_t negative_at = 0;
  int64_t negative_value = 0;

  Cursor cur = msg;
  Field f;
  while (cur.next(&f)) {
    switch (f.number) {
      case tensor_f::dims: {
        auto add_dim = [&](uint64_t v, uint64_t at) {
          if (t.shape.size() >= kOnnxMaxDims)
            fail(ErrorCode::OnnxDims, c.path, name, "more than " + str(kOnnxMaxDims) + " dims");
          if (static_cast<int64_t>(v) < 0 && !negative_dim) {
            negative_dim = true;
            negative_at = at;
            negative_value = static_cast<int64_t>(v);
          }
          t.shape.push_back(v);
        };
        if (f.wire == Wire::Varint) {
          add_dim(f.value, f.offset);
        } else if (f.wire == Wire::Len) {
          uint64_t pos = f.offset;
          const uint64_t end = f.offset + f.length;
          while (pos < end) {
            const uint64_t at = pos;
            add_dim(pb::read_varint(c.data, &pos, end, c.path, "TensorProto.dims"), at);
          }
        } else {
          expect_wire(c, f, Wire::Varint, "dims", name);
        }
        break;
      }
      case tensor_f::data_type:
        expect_wire(c, f, Wire::Varint, "data_type", name);
        once(c, &has_type, f, "data_type", name);
        dtype_value = f.value;
        break;
      case tensor_f::segment:
        expect_wire(c, f, Wire::Len, "segment", name);
        has_segment = true;
        break;
      case tensor_f::float_data: add_record(c, &typed[0], f, Wire::I32, "float_data", name, "TensorProto.float_data"); break;
      case tensor_f::int32_data: add_record(c, &typed[1], f, Wire::Varint, "int32_data", name, "TensorProto.int32_data"); break;
      case tensor_f::string_data:
        expect_wire(c, f, Wire::Len, "string_data", name);
        ++strings;
        break;
      case tensor_f::int64_data: add_record(c, &typed[3], f, Wire::Varint, "int64_data", name, "TensorProto.int64_data"); break;
      case tensor_f::double_data: add_record(c, &typed[4], f, Wire::I64, "double_data", name, "TensorProto.double_data"); break;
      case tensor_f::uint64_data: add_record(c, &typed[5], f, Wire::Varint, "uint64_data", name, "TensorProto.uint64_data"); break;
      case tensor_f::raw_data:
        expect_wire(c, f, Wire::Len, "raw_data", name);
        once(c, &has_raw, f, "raw_data", name);
        raw_offset = f.offset;
        raw_length = f.length;
        break;
      case tensor_f::external_data: {
        expect_wire(c, f, Wire::Len, "external_data", name);
        Cursor e = cur.sub(f, "StringStringEntryProto");
        Field g;
        bool has_key = false, has_value = false;
        std::string key, value;
        while (e.next(&g)) {
          if (g.number == entry_f::key) {
            once(c, &has_key, g, "external_data.key", name);
            key = read_string(c, g, "external_data key", kOnnxMaxStringBytes, name);
          } else if (g.number == entry_f::value) {
            once(c, &has_value, g, "external_data.value", name);
            value = read_string(c, g, "external_data value", kOnnxMaxStringBytes, name);
          }
        }
        for (const auto& kv : external)
          if (kv.first == key)
            fail(ErrorCode::OnnxExternalInvalid, c.path, name, "external_data key " + quoted(key) + " appears twice");
        external.emplace_back(std::move(key), std::move(value));
        break;
      }
      case tensor_f::data_location:
        expect_wire(c, f, Wire::Varint, "data_location", name);
        once(c, &has_location, f, "data_location", name);
        location = f.value;
        break;
      default:
        break;  // name (read by the caller), doc_string, metadata_props, unknown fields
    }
  }

  // data type and shape
  const int64_t dt = static_cast<int64_t>(dtype_value);
  if (!has_type || dt <= 0 || dt >= kTypeCount)
    fail(ErrorCode::OnnxDtype, c.path, name,
         has_type ? "data_type " + std::to_string(dt) + (dt == 0 ? " is UNDEFINED" : " is not a TensorProto.DataType")
                  : std::string("no data_type"));
  t.data_type = static_cast<int32_t>(dt);
  const TypeInfo& ti = kTypes[dt];
  if (negative_dim)
    fail(ErrorCode::OnnxDims, c.path, name, "dimension " + std::to_string(negative_value) + " is negative (at byte " + str(negative_at) + ")");
  uint64_t count = 1;
  for (uint64_t d : t.shape)
    if (__builtin_mul_overflow(count, d, &count))
      fail(ErrorCode::ShapeOverflow, c.path, name, "the product of the dims overflows 64 bits");
  t.count = count;
  uint64_t bits = 0;
  if (__builtin_mul_overflow(count, static_cast<uint64_t>(ti.bits), &bits))
    fail(ErrorCode::ShapeOverflow, c.path, name, std::string("dims x ") + ti.name + " size overflows 64 bits");
  t.bytes = bits / 8 + (bits % 8 != 0);
  if (ti.readable) t.dtype = ti.dtype;

  // where the data is
  if (has_location && location > 1)
    fail(ErrorCode::OnnxSchema, c.path, name, "data_location " + str(location) + " is neither DEFAULT (0) nor EXTERNAL (1)");
  const bool is_external = has_location && location == 1;
  int typed_present = -1;
  for (int k = 0; k < 6; ++k) {
    if (typed[k].records == 0) continue;
    if (typed_present >= 0)
      fail(ErrorCode::OnnxDataField, c.path, name,
           std::string("data in both ") + typed_field_name(static_cast<Typed>(typed_present)) + " and " + typed_field_name(static_cast<Typed>(k)));
    typed_present = k;
  }
  if (strings > 0) {
    if (typed_present >= 0)
      fail(ErrorCode::OnnxDataField, c.path, name, std::string("data in both string_data and ") + typed_field_name(static_cast<Typed>(typed_present)));
    typed_present = static_cast<int>(Typed::String);
  }
  const int places = (has_raw ? 1 : 0) + (typed_present >= 0 ? 1 : 0) + (is_external ? 1 : 0);
  if (places > 1)
    fail(ErrorCode::OnnxDataField, c.path, name,
         std::string("data in more than one place (") + (has_raw ? "raw_data " : "") +
             (typed_present >= 0 ? std::string(typed_field_name(static_cast<Typed>(typed_present))) + " " : std::string()) +
             (is_external ? "external data" : "") + ")");
  if (!is_external && !external.empty())
    fail(ErrorCode::OnnxDataField, c.path, name, "external_data entries but data_location is not EXTERNAL");
  if (typed_present >= 0 && static_cast<Typed>(typed_present) != ti.field)
    fail(ErrorCode::OnnxDataField, c.path, name,
         std::string(typed_field_name(static_cast<Typed>(typed_present))) + " cannot hold " + ti.name + " (it goes in " + typed_field_name(ti.field) + ")");
  if (dt == 8 && (has_raw || is_external))
    fail(ErrorCode::OnnxDataField, c.path, name, "STRING tensors must use string_data");

  // the sizes
  uint64_t want_values = 0;
  {
    uint64_t scaled;
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(ti.vnum), &scaled))
      fail(ErrorCode::ShapeOverflow, c.path, name, "the value count overflows 64 bits");
    want_values = scaled / ti.vden + (scaled % ti.vden != 0);
  }
  if (has_raw && raw_length != t.bytes)
    fail(ErrorCode::OnnxDataSize, c.path, name,
         "dims x " + std::string(ti.name) + " is " + str(t.bytes) + " bytes but raw_data holds " + str(raw_length));
  if (typed_present >= 0) {
    const uint64_t got = static_cast<Typed>(typed_present) == Typed::String ? strings : typed[typed_present].values;
    if (got != want_values)
      fail(ErrorCode::OnnxDataSize, c.path, name,
           "dims x " + std::string(ti.name) + " needs " + str(want_values) + " values but " +
               typed_field_name(static_cast<Typed>(typed_present)) + " holds " + str(got));
  }
  if (places == 0 && count > 0)
    fail(ErrorCode::OnnxDataSize, c.path, name, str(count) + " elements but no data (no raw_data, typed field or external data)");

  uint64_t ext_offset = 0, ext_length = 0;
  bool ext_has_length = false;
  if (is_external) {
    bool has_loc = false;
    for (const auto& kv : external) {
      if (kv.first == "location") {
        has_loc = true;
        if (!confined(kv.second))
          fail(ErrorCode::OnnxExternalPath, c.path, name,
               "external data location " + quoted(kv.second.find('\0') == std::string::npos ? kv.second : "<contains NUL>") +
                   " is not a path inside the model's folder (absolute, .., empty parts or NUL)");
        t.location = kv.second;
      } else if (kv.first == "offset") {
        if (!parse_u64(kv.second, &ext_offset))
          fail(ErrorCode::OnnxExternalInvalid, c.path, name, "external data offset " + quoted(kv.second) + " is not a decimal integer below 2^64");
      } else if (kv.first == "length") {
        if (!parse_u64(kv.second, &ext_length))
          fail(ErrorCode::OnnxExternalInvalid, c.path, name, "external data length " + quoted(kv.second) + " is not a decimal integer below 2^64");
        ext_has_length = true;
      }
      // checksum, basepath and unknown keys: ignored
    }
    if (!has_loc) fail(ErrorCode::OnnxExternalInvalid, c.path, name, "external data without a location");
    if (ext_has_length && ext_length != t.bytes)
      fail(ErrorCode::OnnxDataSize, c.path, name,
           "dims x " + std::string(ti.name) + " is " + str(t.bytes) + " bytes but the external data length is " + str(ext_length));
    uint64_t end;
    if (__builtin_add_overflow(ext_offset, t.bytes, &end))
      fail(ErrorCode::OnnxExternalRange, c.path, name, "external data offset " + str(ext_offset) + " + length overflows 64 bits");
  }

  // left out
  if (has_segment) return skip_tensor(c, std::move(t), std::string(ti.name) + ": segmented tensors (TensorProto.segment) are not read");
  if (!ti.readable) return skip_tensor(c, std::move(t), std::string(ti.name) + ": " + ti.skip);
  if (ti.dtype == DType::F4 && count % 2 != 0)
    return skip_tensor(c, std::move(t), "FLOAT4E2M1: an odd number of 4-bit values (mother reads F4 in whole bytes)");

  if (is_external) {
    t.storage = OnnxStorage::External;
    t.offset = ext_offset;
    t.length_given = ext_has_length;
  } else if (has_raw) {
    t.storage = OnnxStorage::InFile;
    t.offset = raw_offset;
    c.out.in_file_bytes += t.bytes;
  } else if (typed_present < 0) {
    t.storage = OnnxStorage::InFile;  // no elements
    t.offset = msg.begin();
  } else {
    const Repeated& r = typed[typed_present];
    const Typed field = static_cast<Typed>(typed_present);
    if ((field == Typed::Float || field == Typed::Double) && r.one_packed) {
      // one packed record of little-endian floats / doubles: the tensor's bytes as they are
      t.storage = OnnxStorage::InFile;
      t.offset = r.offset;
      c.out.in_file_bytes += t.bytes;
    } else {
      t.storage = OnnxStorage::Decoded;
      const char* fname = typed_field_name(field);
      t.offset = reserve_decoded(c, t.bytes, name, fname);
      std::vector<uint8_t>& d = c.out.decoded;
      const unsigned out_bytes = ti.bits * ti.vden / (ti.vnum * 8);
      uint64_t index = 0;
      switch (field) {
        case Typed::Float:
          for_each_value(msg, tensor_f::float_data, Wire::I32, c.path, [&](uint64_t v, uint64_t) { put_le(d, v, 4); });
          break;
        case Typed::Double:
          for_each_value(msg, tensor_f::double_data, Wire::I64, c.path, [&](uint64_t v, uint64_t) { put_le(d, v, 8); });
          break;
        case Typed::Int64:
          for_each_value(msg, tensor_f::int64_data, Wire::Varint, c.path, [&](uint64_t v, uint64_t) { put_le(d, v, 8); });
          break;
        case Typed::Int32:
          for_each_value(msg, tensor_f::int32_data, Wire::Varint, c.path, [&](uint64_t v, uint64_t at) {
            const int64_t s = static_cast<int64_t>(v);
            if (s < ti.lo || s > static_cast<int64_t>(ti.hi))
              fail(ErrorCode::OnnxValueRange, c.path, name,
                   "int32_data value " + std::to_string(s) + " (index " + str(index) + ", byte " + str(at) + ") does not fit " + ti.name +
                       " (" + std::to_string(ti.lo) + " .. " + str(ti.hi) + ")");
            put_le(d, v, out_bytes);
            ++index;
          });
          break;
        case Typed::Uint64:
          for_each_value(msg, tensor_f::uint64_data, Wire::Varint, c.path, [&](uint64_t v, uint64_t at) {
            if (v > ti.hi)
              fail(ErrorCode::OnnxValueRange, c.path, name,
                   "uint64_data value " + str(v) + " (index " + str(index) + ", byte " + str(at) + ") does not fit " + ti.name);
            put_le(d, v, out_bytes);
            ++index;
          });
          break;
        case Typed::String:
          break;  // not readable: skipped above
      }
      if (d.size() != t.offset + t.bytes)  // cannot happen: the value count was checked
        fail(ErrorCode::Internal, c.path, name, "decoded " + str(d.size() - t.offset) + " bytes, expected " + str(t.bytes));
    }
  }
  c.out.tensors.push_back(std::move(t));
}

// The name field of a TensorProto (an initializer's name).
std::string tensor_name(const Ctx& c, const Cursor& msg) {
  Cursor cur = msg;
  Field f;
  bool seen = false;
  std::string name;
  while (cur.next(&f)) {
    if (f.number != tensor_f::name) continue;
    once(c, &seen, f, "TensorProto.name", name);
    name = read_string(c, f, "tensor name", kOnnxMaxNameBytes, "");
  }
  return name;
}

// ---- graphs, nodes, attributes ----------------------------------------------------------

void read_graph(Ctx& c, const Cursor& g);

// A scalar or 1-D Constant from value_float(s) / value_int(s).
void constant_from_list(Ctx& c, const Cursor& attr, const std::string& name, uint32_t number, bool is_float, bool scalar,
                        const Field* single) {
  OnnxTensor t;
  t.name = name;
  t.data_type = is_float ? 1 : 7;
  t.dtype = is_float ? DType::F32 : DType::I64;
  const unsigned w = is_float ? 4 : 8;
  if (scalar) {
    t.count = 1;
    t.bytes = w;
    if (is_float && single) {
      t.storage = OnnxStorage::InFile;  // the fixed32 as it is in the file
      t.offset = single->offset;
      c.out.in_file_bytes += 4;
    } else {
      t.storage = OnnxStorage::Decoded;  // a varint, or a field left out because it is 0 (proto3)
      t.offset = reserve_decoded(c, w, name, is_float ? "value_float" : "value_int");
      put_le(c.out.decoded, single ? single->value : 0, w);
    }
    c.out.tensors.push_back(std::move(t));
    return;
  }
  Repeated r;
  Cursor cur = attr;
  Field f;
  while (cur.next(&f))
    if (f.number == number)
      add_record(c, &r, f, is_float ? Wire::I32 : Wire::Varint, is_float ? "floats" : "ints", name,
                 is_float ? "AttributeProto.floats" : "AttributeProto.ints");
  t.count = r.values;
  t.shape = {r.values};
  t.bytes = r.values * w;  // values <= attribute bytes: no overflow
  if (is_float && r.one_packed) {
    t.storage = OnnxStorage::InFile;
    t.offset = r.offset;
    c.out.in_file_bytes += t.bytes;
  } else {
    t.storage = OnnxStorage::Decoded;
    t.offset = reserve_decoded(c, t.bytes, name, is_float ? "value_floats" : "value_ints");
    for_each_value(attr, number, is_float ? Wire::I32 : Wire::Varint, c.path,
                   [&](uint64_t v, uint64_t) { put_le(c.out.decoded, v, w); });
  }
  c.out.tensors.push_back(std::move(t));
}

// What read_node needs of one AttributeProto.
struct AttrInfo {
  std::string name;
  bool has_type = false;
  uint64_t type = 0;
  bool has_f = false, has_i = false, has_s = false, has_t = false, has_g = false, has_sparse = false;
  Field f_field, i_field, t_field;
};

void read_node(Ctx& c, const Cursor& node) {
  // Pass 1: op_type, domain and outputs (op_type and domain may follow the attributes).
  std::string op_type, domain, output0;
  uint64_t outputs = 0;
  bool seen_op = false, seen_domain = false;
  std::vector<Field> inputs;  // not validated: only compared with the names of quantised weights
  Cursor cur = node;
  Field f;
  while (cur.next(&f)) {
    if (f.number == node_f::input) {
      if (f.wire == Wire::Len) inputs.push_back(f);
    } else if (f.number == node_f::op_type) {
      once(c, &seen_op, f, "NodeProto.op_type", "");
      op_type = read_string(c, f, "op_type", kOnnxMaxNameBytes, "");
    } else if (f.number == node_f::domain) {
      once(c, &seen_domain, f, "NodeProto.domain", "");
      domain = read_string(c, f, "domain", kOnnxMaxNameBytes, "");
    } else if (f.number == node_f::output) {
      std::string out = read_string(c, f, "node output", kOnnxMaxNameBytes, "");
      if (outputs == 0) output0 = std::move(out);
      ++outputs;
    } else if (f.number == node_f::attribute) {
      expect_wire(c, f, Wire::Len, "NodeProto.attribute", "");
    }
  }
  const bool is_constant = op_type == "Constant" && (domain.empty() || domain == "ai.onnx");
  if (is_constant && (outputs != 1 || output0.empty()))
    fail(ErrorCode::OnnxSchema, c.path, output0,
         "a Constant node must have exactly one named output, this one has " + str(outputs) + (outputs == 1 ? " (empty)" : ""));

  // Pass 2: the attributes: subgraphs of any node, the value of a Constant, the axis and
  // block_size of a node that consumes a quantised weight.
  int values = 0;
  bool has_axis = false;
  int64_t axis = 0, block_size = 0;
  cur = node;
  while (cur.next(&f)) {
    if (f.number != node_f::attribute) continue;
    Cursor attr = cur.sub(f, "AttributeProto");
    AttrInfo a;
    bool seen_name = false, seen_type = false;
    Field g;
    Cursor ac = attr;
    const std::string& who = is_constant ? output0 : std::string();
    while (ac.next(&g)) {
      switch (g.number) {
        case attr_f::name:
          once(c, &seen_name, g, "AttributeProto.name", "");
          a.name = read_string(c, g, "attribute name", kOnnxMaxNameBytes, "");
          break;
        case attr_f::type:
          expect_wire(c, g, Wire::Varint, "AttributeProto.type", "");
          once(c, &seen_type, g, "AttributeProto.type", "");
          a.has_type = true;
          a.type = g.value;
          break;
        case attr_f::f:
          expect_wire(c, g, Wire::I32, "AttributeProto.f", who);
          once(c, &a.has_f, g, "AttributeProto.f", who);
          a.f_field = g;
          break;
        case attr_f::i:
          expect_wire(c, g, Wire::Varint, "AttributeProto.i", who);
          once(c, &a.has_i, g, "AttributeProto.i", who);
          a.i_field = g;
          break;
        case attr_f::s:
          expect_wire(c, g, Wire::Len, "AttributeProto.s", who);
          once(c, &a.has_s, g, "AttributeProto.s", who);
          break;
        case attr_f::t:
          expect_wire(c, g, Wire::Len, "AttributeProto.t", who);
          once(c, &a.has_t, g, "AttributeProto.t", who);
          a.t_field = g;
          break;
        case attr_f::sparse_tensor:
          expect_wire(c, g, Wire::Len, "AttributeProto.sparse_tensor", who);
          once(c, &a.has_sparse, g, "AttributeProto.sparse_tensor", who);
          break;
        case attr_f::g: {
          expect_wire(c, g, Wire::Len, "AttributeProto.g", "");
          once(c, &a.has_g, g, "AttributeProto.g", "");
          read_graph(c, ac.sub(g, "GraphProto"));
          break;
        }
        case attr_f::graphs: {
          expect_wire(c, g, Wire::Len, "AttributeProto.graphs", "");
          read_graph(c, ac.sub(g, "GraphProto"));
          break;
        }
        default:
          break;
      }
    }
    if (a.name == "axis" || a.name == "block_size") {
      // proto3 writers leave i out when it is 0
      const int64_t v = a.has_i ? static_cast<int64_t>(a.i_field.value) : 0;
      if (a.name == "axis") {
        has_axis = true;
        axis = v;
      } else {
        block_size = v;
      }
    }
    if (!is_constant) continue;
    const std::string& an = a.name;
    const auto want_type = [&](uint64_t ty, const char* tname) {
      if (a.has_type && a.type != ty)
        fail(ErrorCode::OnnxSchema, c.path, output0, "Constant attribute " + quoted(an) + " must have type " + tname + ", got " + str(a.type));
    };
    if (an == "value") {
      want_type(attr_type::TENSOR, "TENSOR");
      if (!a.has_t) fail(ErrorCode::OnnxSchema, c.path, output0, "Constant attribute \"value\" holds no tensor (t)");
      ++values;
      if (values > 1) break;
      read_tensor(c, attr.sub(a.t_field, "TensorProto"), output0);
    } else if (an == "value_float" || an == "value_int") {
      const bool fl = an == "value_float";
      want_type(fl ? attr_type::FLOAT : attr_type::INT, fl ? "FLOAT" : "INT");
      ++values;
      if (values > 1) break;
      const bool present = fl ? a.has_f : a.has_i;
      constant_from_list(c, attr, output0, 0, fl, true, present ? (fl ? &a.f_field : &a.i_field) : nullptr);
    } else if (an == "value_floats" || an == "value_ints") {
      const bool fl = an == "value_floats";
      want_type(fl ? attr_type::FLOATS : attr_type::INTS, fl ? "FLOATS" : "INTS");
      ++values;
      if (values > 1) break;
      constant_from_list(c, attr, output0, fl ? attr_f::floats : attr_f::ints, fl, false, nullptr);
    } else if (an == "value_string" || an == "value_strings" || an == "sparse_value") {
      ++values;
      if (values > 1) break;
      OnnxTensor t;
      t.name = output0;
      skip_tensor(c, std::move(t), an == "sparse_value" ? "Constant sparse_value: sparse tensors are not read" : "Constant " + an + ": strings are not weights");
    }
    // other attributes of a Constant: ignored
  }
  if (is_constant) {
    if (values != 1)
      fail(ErrorCode::OnnxSchema, c.path, output0,
           "a Constant node must have exactly one value attribute (value, value_float(s), value_int(s), value_string(s), sparse_value), this one has " +
               str(values));
    add_name(c, output0, "a Constant output");
    if (last_read(c)) ++c.constants;
  }
  if (!domain.empty() && domain != "ai.onnx" && domain != "com.microsoft") return;
  for (const QuantOp& q : kQuantOps) {
    if (op_type != q.op || q.input >= inputs.size()) continue;
    const Field& in = inputs[q.input];
    const std::string name(reinterpret_cast<const char*>(c.data + in.offset), in.length);
    if (!ends_with(name, kQuantizedSuffix)) break;
    QuantUse u;
    u.op = op_type;
    u.axis = q.axis_attr && has_axis ? axis : q.axis;
    u.blocked = q.axis_attr && block_size > 0;
    c.uses[name].push_back(std::move(u));
    break;
  }
}

void read_graph(Ctx& c, const Cursor& graph) {
  Cursor cur = graph;
  Field f;
  while (cur.next(&f)) {
    switch (f.number) {
      case graph_f::node:
        expect_wire(c, f, Wire::Len, "GraphProto.node", "");
        read_node(c, cur.sub(f, "NodeProto"));
        break;
      case graph_f::initializer: {
        expect_wire(c, f, Wire::Len, "GraphProto.initializer", "");
        Cursor t = cur.sub(f, "TensorProto");
        std::string name = tensor_name(c, t);
        if (name.empty()) fail(ErrorCode::OnnxSchema, c.path, "", "an initializer without a name (at byte " + str(f.offset) + ")");
        read_tensor(c, t, name);
        add_name(c, name, "an initializer");
        if (last_read(c)) ++c.initializers;
        break;
      }
      case graph_f::sparse_initializer: {
        expect_wire(c, f, Wire::Len, "GraphProto.sparse_initializer", "");
        Cursor s = cur.sub(f, "SparseTensorProto");
        Field g;
        std::string name;
        while (s.next(&g))
          if (g.number == sparse_f::values && g.wire == Wire::Len) name = tensor_name(c, s.sub(g, "TensorProto"));
        if (name.empty()) fail(ErrorCode::OnnxSchema, c.path, "", "a sparse initializer without a name (at byte " + str(f.offset) + ")");
        OnnxTensor t;
        t.name = name;
        skip_tensor(c, std::move(t), "sparse initializer: sparse tensors are not read");
        add_name(c, name, "a sparse initializer");
        break;
      }
      default:
        break;  // name, doc_string, inputs, outputs, value_info, annotations, unknown fields
    }
  }
}

// The bytes of a tensor parse_onnx can read itself (in the file or the decoded copy).
const uint8_t* bytes_of(const Ctx& c, const OnnxTensor& t) {
  return t.storage == OnnxStorage::Decoded ? c.out.decoded.data() + t.offset : c.data + t.offset;
}

// Pairs every quantised weight NAME_quantized with NAME_scale and NAME_zero_point (onnx.h,
// OnnxRole) and checks the three; what cannot be dequantised is left as it is and listed in the
// metadata as onnx.not_dequantized.<name>. Returns how many were paired.
uint64_t pair_quantized(Ctx& c) {
  std::vector<OnnxTensor>& ts = c.out.tensors;
  std::unordered_map<std::string, uint32_t> at;
  for (uint32_t i = 0; i < ts.size(); ++i)
    if (ts[i].storage != OnnxStorage::Skipped) at.emplace(ts[i].name, i);
  uint64_t paired = 0;
  for (uint32_t i = 0; i < ts.size(); ++i) {
    OnnxTensor& q = ts[i];
    if (q.storage == OnnxStorage::Skipped || q.name.size() <= kQuantizedSuffix.size() || !ends_with(q.name, kQuantizedSuffix)) continue;
    const std::string base = q.name.substr(0, q.name.size() - kQuantizedSuffix.size());
    const auto si = at.find(base + "_scale"), zi = at.find(base + "_zero_point");
    const auto leave = [&](const std::string& why) { c.out.metadata.emplace_back("onnx.not_dequantized." + q.name, why); };
    const bool integer = q.dtype == DType::U8 || q.dtype == DType::I8;
    if (si == at.end() || zi == at.end()) {
      if (integer)
        leave(std::string(kTypes[q.data_type].name) + " weight without " + quoted(base + (si == at.end() ? "_scale" : "_zero_point")) +
              ": left as an integer tensor");
      continue;
    }
    if (!integer) {
      leave(std::string(kTypes[q.data_type].name) + ": mother dequantises UINT8 and INT8 weights only");
      continue;
    }
    const OnnxTensor& s = ts[si->second];
    const OnnxTensor& z = ts[zi->second];
    const auto uses = c.uses.find(q.name);
    if (uses != c.uses.end() && std::any_of(uses->second.begin(), uses->second.end(), [](const QuantUse& u) { return u.blocked; })) {
      leave("blocked quantisation (DequantizeLinear block_size): not dequantised");
      continue;
    }
    if (s.dtype != DType::F32 && s.dtype != DType::F16 && s.dtype != DType::BF16)
      fail(ErrorCode::OnnxQuantization, c.path, s.name,
           "the scale of the quantised weight " + quoted(q.name) + " is " + kTypes[s.data_type].name + ": a scale is FLOAT, FLOAT16 or BFLOAT16");
    if (z.dtype != q.dtype)
      fail(ErrorCode::OnnxQuantization, c.path, z.name,
           "the zero point of the quantised weight " + quoted(q.name) + " is " + kTypes[z.data_type].name + " and the weight " +
               kTypes[q.data_type].name + ": they have one dtype");
    if (s.shape.size() > 1)
      fail(ErrorCode::OnnxQuantization, c.path, s.name,
           "the scale of the quantised weight " + quoted(q.name) + " has shape " + shape_str(s.shape) +
               ": a scale is a scalar (per tensor) or 1-D (per channel)");
    if (z.shape != s.shape)
      fail(ErrorCode::OnnxQuantization, c.path, z.name,
           "the zero point of the quantised weight " + quoted(q.name) + " has shape " + shape_str(z.shape) + " and its scale " +
               shape_str(s.shape) + ": they have one shape");
    int64_t axis = -1;
    uint64_t inner = 1;
    if (s.count != 1) {
      if (uses == c.uses.end()) {
        leave("a per-channel scale of " + str(s.count) + " values, and no node that consumes the weight says along which axis: not dequantised");
        continue;
      }
      const int64_t rank = static_cast<int64_t>(q.shape.size());
      for (const QuantUse& u : uses->second) {
        const int64_t a = u.axis < 0 ? u.axis + rank : u.axis;
        if (a < 0 || a >= rank)
          fail(ErrorCode::OnnxQuantization, c.path, q.name,
               u.op + " takes the quantised weight per channel along axis " + std::to_string(u.axis) + ", outside its " + std::to_string(rank) +
                   " dims " + shape_str(q.shape));
        if (axis >= 0 && a != axis)
          fail(ErrorCode::OnnxQuantization, c.path, q.name,
               "the nodes that consume the quantised weight disagree on the axis of its per-channel scale (" + std::to_string(axis) + " and " +
                   std::to_string(a) + ")");
        axis = a;
      }
      if (q.shape[axis] != s.count)
        fail(ErrorCode::OnnxQuantization, c.path, s.name,
             "the scale of the quantised weight " + quoted(q.name) + " has " + str(s.count) + " values, but the weight " + shape_str(q.shape) +
                 " has " + str(q.shape[axis]) + " along axis " + std::to_string(axis));
      for (size_t d = static_cast<size_t>(axis) + 1; d < q.shape.size(); ++d) inner *= q.shape[d];  // <= count: no overflow
    }
    q.role = OnnxRole::QuantData;
    q.quant.view = c.names.count(base) ? q.name : base;
    q.quant.scale = si->second;
    q.quant.zero = zi->second;
    q.quant.axis = axis;
    q.quant.inner = inner;
    ts[si->second].role = OnnxRole::QuantScale;
    ts[zi->second].role = OnnxRole::QuantZero;
    if (s.storage != OnnxStorage::External && z.storage != OnnxStorage::External)
      read_onnx_quant(q, s, bytes_of(c, s), z, bytes_of(c, z), c.path);
    ++paired;
  }
  return paired;
}

}  // namespace

void read_onnx_quant(OnnxTensor& q, const OnnxTensor& s, const uint8_t* sb, const OnnxTensor& z, const uint8_t* zb, const std::string& path) {
  OnnxQuant& p = q.quant;
  p.scales.resize(s.count);
  for (uint64_t i = 0; i < s.count; ++i) {
    double v;
    if (s.dtype == DType::F32) {
      float f;
      std::memcpy(&f, sb + 4 * i, 4);
      v = f;
    } else {
      const uint16_t h = static_cast<uint16_t>(sb[2 * i] | (sb[2 * i + 1] << 8));
      v = s.dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    if (!(std::isfinite(v) && v > 0))
      fail(ErrorCode::OnnxQuantization, path, s.name,
           "scale " + num(v) + " (index " + str(i) + ") of the quantised weight " + quoted(q.name) + " is not finite and > 0");
    p.scales[i] = v;
  }
  p.zeros.resize(z.count);
  for (uint64_t i = 0; i < z.count; ++i) p.zeros[i] = z.dtype == DType::I8 ? static_cast<int8_t>(zb[i]) : static_cast<int32_t>(zb[i]);
  p.values = true;
}

const char* onnx_dtype_name(int32_t data_type) {
  return data_type >= 0 && data_type < kTypeCount ? kTypes[data_type].name : "UNKNOWN";
}

OnnxModel parse_onnx(const uint8_t* data, uint64_t size, const std::string& path) {
  OnnxModel out;
  Ctx c{data, path, out, {}, 0, 0, {}};
  Cursor model(data, size, path, "ModelProto");
  Field f;
  bool seen_graph = false, seen[8] = {};
  std::vector<std::pair<std::string, std::string>> head;  // model fields first, then the graph's skips
  std::vector<std::pair<std::string, std::string>> props;
  while (model.next(&f)) {
    switch (f.number) {
      case model_f::ir_version:
      case model_f::model_version:
        expect_wire(c, f, Wire::Varint, f.number == model_f::ir_version ? "ir_version" : "model_version", "");
        once(c, &seen[f.number], f, f.number == model_f::ir_version ? "ir_version" : "model_version", "");
        head.emplace_back(f.number == model_f::ir_version ? "onnx.ir_version" : "onnx.model_version",
                          std::to_string(static_cast<int64_t>(f.value)));
        break;
      case model_f::producer_name:
      case model_f::producer_version:
      case model_f::domain: {
        const char* key = f.number == model_f::producer_name ? "onnx.producer_name" : f.number == model_f::producer_version ? "onnx.producer_version" : "onnx.domain";
        once(c, &seen[f.number], f, key + 5, "");
        head.emplace_back(key, read_string(c, f, key + 5, kOnnxMaxStringBytes, ""));
        break;
      }
      case model_f::graph:
        expect_wire(c, f, Wire::Len, "graph", "");
        once(c, &seen_graph, f, "graph", "");
        read_graph(c, model.sub(f, "GraphProto"));
        break;
      case model_f::opset_import: {
        expect_wire(c, f, Wire::Len, "opset_import", "");
        Cursor o = model.sub(f, "OperatorSetIdProto");
        Field g;
        std::string domain;
        int64_t version = 0;
        while (o.next(&g)) {
          if (g.number == opset_f::domain) domain = read_string(c, g, "opset domain", kOnnxMaxNameBytes, "");
          if (g.number == opset_f::version) {
            expect_wire(c, g, Wire::Varint, "opset version", "");
            version = static_cast<int64_t>(g.value);
          }
        }
        head.emplace_back("onnx.opset." + (domain.empty() ? std::string("ai.onnx") : domain), std::to_string(version));
        break;
      }
      case model_f::metadata_props: {
        expect_wire(c, f, Wire::Len, "metadata_props", "");
        Cursor e = model.sub(f, "StringStringEntryProto");
        Field g;
        std::string key, value;
        while (e.next(&g)) {
          if (g.number == entry_f::key) key = read_string(c, g, "metadata key", kOnnxMaxNameBytes, "");
          if (g.number == entry_f::value) value = read_string(c, g, "metadata value", kOnnxMaxStringBytes, "");
        }
        props.emplace_back(std::move(key), std::move(value));
        break;
      }
      default:
        break;  // doc_string, training_info, functions, unknown fields
    }
  }
  if (!seen_graph) fail(ErrorCode::OnnxSchema, path, "", "no graph (ModelProto field 7): not an ONNX model");
  const uint64_t dequantized = pair_quantized(c);
  // Metadata: the model's fields, metadata_props, then the tensors left out; keys distinct.
  head.emplace_back("onnx.initializers", std::to_string(c.initializers));
  head.emplace_back("onnx.constants", std::to_string(c.constants));
  head.emplace_back("onnx.dequantized", std::to_string(dequantized));
  std::vector<std::pair<std::string, std::string>> meta = std::move(head);
  for (auto& kv : props) meta.push_back(std::move(kv));
  for (auto& kv : out.metadata) meta.push_back(std::move(kv));
  std::unordered_set<std::string> keys;
  for (const auto& kv : meta)
    if (!keys.insert(kv.first).second)
      fail(ErrorCode::OnnxSchema, path, "", "metadata key " + quoted(kv.first) + " appears twice (opset_import or metadata_props)");
  out.metadata = std::move(meta);
  return out;
}

namespace {

bool claims_onnx(const std::string& path) {
  static const std::string kSuffix = ".onnx";
  return path.size() >= kSuffix.size() && path.compare(path.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

std::string folder_of(const std::string& p) {
  const size_t slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

void open_onnx(const std::string& path, Model& into) {
  auto map = std::make_shared<MappedFile>(path);
  OnnxModel m = parse_onnx(map->data(), map->size(), path);
  map->release(0, map->size());  // the structure has been read; tensor pages are mapped when scanned
  const uint32_t file = static_cast<uint32_t>(into.files.size());
  std::shared_ptr<MappedFile> decoded;
  if (!m.decoded.empty()) decoded = std::make_shared<MappedFile>(path, std::move(m.decoded));
  const MappedFile* onnx_map = map.get();
  into.files.push_back(ModelFile{map, "onnx", map->size() - m.in_file_bytes, std::move(m.metadata), decoded});
  const std::string folder = folder_of(path);
  std::map<std::string, uint32_t> external;  // location -> file index
  std::vector<TensorView> views(m.tensors.size());  // by index in m.tensors
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    OnnxTensor& t = m.tensors[i];
    if (t.storage == OnnxStorage::Skipped) continue;
    TensorView& v = views[i];
    v.name = t.name;
    v.set_plain(t.dtype);
    v.shape = t.shape;
    v.count = t.count;
    v.bytes = t.bytes;
    v.offset = t.offset;
    v.file = file;
    v.map = t.storage == OnnxStorage::Decoded ? decoded.get() : onnx_map;
    if (t.storage == OnnxStorage::External) {
      auto it = external.find(t.location);
      if (it == external.end()) {
        const std::string full = folder + "/" + t.location;
        struct stat st;
        if (::stat(full.c_str(), &st) != 0) {
          const int e = errno;
          if (e == ENOENT || e == ENOTDIR)
            fail(ErrorCode::OnnxExternalMissing, path, v.name, "external data file " + full + " does not exist");
          fail(ErrorCode::FileOpen, path, v.name, "cannot stat external data file " + full + ": " + std::strerror(e));
        }
        auto ext = std::make_shared<MappedFile>(full);
        const uint32_t idx = static_cast<uint32_t>(into.files.size());
        into.files.push_back(ModelFile{std::move(ext), "onnx-external-data", 0, {}, nullptr});
        it = external.emplace(t.location, idx).first;
      }
      const MappedFile& ext = *into.files[it->second].map;
      const uint64_t size = ext.size();
      if (t.offset > size || t.bytes > size - t.offset)
        fail(ErrorCode::OnnxExternalRange, path, v.name,
             "external data [" + str(t.offset) + ", " + str(t.offset + t.bytes) + ") runs past the end of " + ext.path() + " (" + str(size) + " bytes)");
      if (!t.length_given && size - t.offset != t.bytes)
        fail(ErrorCode::OnnxDataSize, path, v.name,
             "external data without a length runs to the end of " + ext.path() + ": " + str(size - t.offset) + " bytes, but dims x " +
                 onnx_dtype_name(t.data_type) + " is " + str(t.bytes));
      v.file = it->second;
      v.map = &ext;
    }
  }
  // The quantised weights: one affine view each (their scales and zero points read here when
  // they are stored in external data), named NAME; the scale and zero point views are dropped.
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    OnnxTensor& q = m.tensors[i];
    if (q.role != OnnxRole::QuantData) continue;
    OnnxQuant& p = q.quant;
    if (!p.values) {
      const TensorView &sv = views[p.scale], &zv = views[p.zero];
      read_onnx_quant(q, m.tensors[p.scale], sv.data(0), m.tensors[p.zero], zv.data(0), path);
      sv.check_read();
      zv.check_read();
    }
    auto a = std::make_shared<AffineQuant>();
    a->scale = std::move(p.scales);
    a->zero = std::move(p.zeros);
    a->axis = p.axis;
    a->inner = p.inner;
    a->data_name = q.name;
    a->scale_name = m.tensors[p.scale].name;
    a->zero_name = m.tensors[p.zero].name;
    views[i].name = p.view;
    views[i].set_affine(q.dtype, a.get());
    into.affines.push_back(std::move(a));
  }
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const OnnxTensor& t = m.tensors[i];
    if (t.storage == OnnxStorage::Skipped || t.role == OnnxRole::QuantScale || t.role == OnnxRole::QuantZero) continue;
    into.tensors.push_back(std::move(views[i]));
  }
}

}  // namespace

extern const Reader kOnnxReader = {"onnx", claims_onnx, open_onnx};

}  // namespace mother
