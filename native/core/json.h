// A strict RFC 8259 JSON parser for safetensors headers and shard indexes.
// Strict where the reference readers are (serde_json): no trailing commas, no comments, no
// lone surrogates, no control characters in strings, nesting limited to 128 levels.
// Stricter where a weight file must be: duplicate keys in an object are an error.
// Numbers keep their source text; callers convert with the exact checked helpers below.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mother {
namespace json {

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  std::string text;  // String: decoded UTF-8; Number: the literal as written
  std::vector<Value> items;                             // Array
  std::vector<std::pair<std::string, Value>> members;   // Object, in source order

  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Number; }
  const Value* find(const std::string& key) const;
};

// Thrown by parse(). offset is the byte offset in the input where the problem was found.
struct ParseError {
  size_t offset;
  std::string message;
  bool duplicate_key = false;
  std::string key;               // for duplicate keys: the repeated key
  std::vector<std::string> path; // for duplicate keys: keys of the enclosing objects, outermost first
};

// True when [p, p+n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
// On failure *bad_offset receives the offset of the first bad byte.
bool valid_utf8(const char* p, size_t n, size_t* bad_offset);

// Parses exactly one JSON value surrounded by optional whitespace. Throws ParseError.
Value parse(const char* p, size_t n);

// Converts a Number's literal to uint64: only plain non-negative integers without fraction
// or exponent that fit in 64 bits. Returns false otherwise.
bool to_u64(const Value& v, uint64_t* out);

const char* kind_name(Value::Kind k);

}  // namespace json
}  // namespace mother
