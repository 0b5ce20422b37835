// A strict RFC 8259 JSON parser for safetensors headers and shard indexes.
// Strict where the reference readers are (serde_json): no trailing commas, no comments, no
// lone surrogates, no control characters in strings, nesting limited to 128 levels.
// Stricter where a weight file must be: duplicate keys in an object are an error.
// Numbers keep their source text; callers convert with the exact checked helpers below.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>
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

constexpr int kMaxDepth = 128;

// The parser, usable piece by piece (safetensors headers are read this way, straight into
// their tensor table, without building a tree of the whole header).
class Reader {
 public:
  Reader(const char* p, size_t n) : p_(p), n_(n) {}

  Value parse_document() {
    skip_ws();
    Value v = parse_value(0);
    skip_ws();
    if (i_ != n_) fail("trailing characters after the JSON value");
    return v;
  }

  [[noreturn]] void fail(const std::string& msg) { throw ParseError{i_, msg}; }
  size_t offset() const { return i_; }
  // Consumes c if it is next (no whitespace skipped).
  bool consume(char c) {
    if (i_ < n_ && p_[i_] == c) { ++i_; return true; }
    return false;
  }
  void expect(char c, const char* what) {
    if (!consume(c)) fail(std::string("expected ") + what);
  }
  [[noreturn]] void fail_duplicate(size_t at, const std::string& key, std::vector<std::string> path) {
    ParseError e{at, "duplicate key \"" + key + "\""};
    e.duplicate_key = true;
    e.key = key;
    e.path = std::move(path);
    throw e;
  }

  void skip_ws() {
    while (i_ < n_) {
      char c = p_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') ++i_;
      else break;
    }
  }

  bool eof() const { return i_ >= n_; }
  char peek() const { return p_[i_]; }

  void expect_literal(const char* lit) {
    for (const char* q = lit; *q; ++q) {
      if (eof() || p_[i_] != *q) fail(std::string("invalid literal, expected '") + lit + "'");
      ++i_;
    }
  }

  Value parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 128 levels");
    if (eof()) fail("unexpected end of input, expected a value");
    Value v;
    char c = peek();
    switch (c) {
      case '{': parse_object(v, depth); break;
      case '[': parse_array(v, depth); break;
      case '"': v.kind = Value::Kind::String; v.text = parse_string(); break;
      case 't': expect_literal("true"); v.kind = Value::Kind::Bool; v.boolean = true; break;
      case 'f': expect_literal("false"); v.kind = Value::Kind::Bool; v.boolean = false; break;
      case 'n': expect_literal("null"); v.kind = Value::Kind::Null; break;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          v.kind = Value::Kind::Number;
          v.text = parse_number();
        } else {
          fail(std::string("unexpected character '") + (c >= 0x20 && c < 0x7f ? std::string(1, c) : "?") + "'");
        }
    }
    return v;
  }

  void parse_object(Value& v, int depth) {
    v.kind = Value::Kind::Object;
    ++i_;  // '{'
    skip_ws();
    if (!eof() && peek() == '}') { ++i_; return; }
    std::unordered_set<std::string> seen;
    for (;;) {
      skip_ws();
      if (eof() || peek() != '"') fail("expected a string key");
      size_t key_at = i_;
      std::string key = parse_string();
      if (!seen.insert(key).second) {
        ParseError e{key_at, "duplicate key \"" + key + "\""};
        e.duplicate_key = true;
        e.key = key;
        e.path = path_;
        throw e;
      }
      skip_ws();
      if (eof() || peek() != ':') fail("expected ':' after key");
      ++i_;
      skip_ws();
      path_.push_back(key);
      Value member = parse_value(depth + 1);
      path_.pop_back();
      v.members.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (eof()) fail("unexpected end of input in object");
      if (peek() == ',') { ++i_; continue; }
      if (peek() == '}') { ++i_; return; }
      fail("expected ',' or '}' in object");
    }
  }

  void parse_array(Value& v, int depth) {
    v.kind = Value::Kind::Array;
    ++i_;  // '['
    skip_ws();
    if (!eof() && peek() == ']') { ++i_; return; }
    for (;;) {
      skip_ws();
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (eof()) fail("unexpected end of input in array");
      if (peek() == ',') { ++i_; continue; }
      if (peek() == ']') { ++i_; return; }
      fail("expected ',' or ']' in array");
    }
  }

  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  uint32_t parse_hex4() {
    if (n_ - i_ < 4) fail("truncated \\u escape");
    uint32_t u = 0;
    for (int k = 0; k < 4; ++k) {
      int h = hexval(p_[i_ + k]);
      if (h < 0) fail("invalid hex digit in \\u escape");
      u = (u << 4) | static_cast<uint32_t>(h);
    }
    i_ += 4;
    return u;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::string parse_string() {
    ++i_;  // opening quote
    std::string out;
    for (;;) {
      if (eof()) fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(p_[i_]);
      if (c == '"') { ++i_; return out; }
      if (c < 0x20) fail("control character in string");
      if (c != '\\') {
        // Input was validated as UTF-8 before parsing; copy the run of plain bytes.
        size_t start = i_;
        while (i_ < n_) {
          unsigned char d = static_cast<unsigned char>(p_[i_]);
          if (d == '"' || d == '\\' || d < 0x20) break;
          ++i_;
        }
        out.append(p_ + start, i_ - start);
        continue;
      }
      ++i_;
      if (eof()) fail("unterminated escape");
      char e = p_[i_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t u = parse_hex4();
          if (u >= 0xD800 && u <= 0xDBFF) {
            if (n_ - i_ < 6 || p_[i_] != '\\' || p_[i_ + 1] != 'u') fail("lone leading surrogate in \\u escape");
            i_ += 2;
            uint32_t lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid trailing surrogate in \\u escape");
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
          } else if (u >= 0xDC00 && u <= 0xDFFF) {
            fail("lone trailing surrogate in \\u escape");
          }
          append_utf8(out, u);
          break;
        }
        default: fail("invalid escape character");
      }
    }
  }

  void skip_number() { parse_number_span(); }
  std::string parse_number() {
    size_t start = parse_number_span();
    return std::string(p_ + start, i_ - start);
  }
  // Consumes a number literal; returns its start offset.
  size_t parse_number_span() {
    size_t start = i_;
    if (peek() == '-') ++i_;
    if (eof()) fail("truncated number");
    if (peek() == '0') {
      ++i_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (!eof() && peek() >= '0' && peek() <= '9') ++i_;
    } else {
      fail("invalid number");
    }
    if (!eof() && peek() == '.') {
      ++i_;
      if (eof() || !(peek() >= '0' && peek() <= '9')) fail("invalid number: digit expected after '.'");
      while (!eof() && peek() >= '0' && peek() <= '9') ++i_;
    }
    if (!eof() && (peek() == 'e' || peek() == 'E')) {
      ++i_;
      if (!eof() && (peek() == '+' || peek() == '-')) ++i_;
      if (eof() || !(peek() >= '0' && peek() <= '9')) fail("invalid number: digit expected in exponent");
      while (!eof() && peek() >= '0' && peek() <= '9') ++i_;
    }
    return start;
  }
  // Validates one value (syntax, nesting, duplicate keys) without building it.
  void skip_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 128 levels");
    if (eof()) fail("unexpected end of input, expected a value");
    switch (peek()) {
      case '{': {
        ++i_;
        skip_ws();
        if (consume('}')) return;
        std::unordered_set<std::string> seen;
        for (;;) {
          skip_ws();
          if (eof() || peek() != '"') fail("expected a string key");
          size_t key_at = i_;
          std::string key = parse_string();
          if (!seen.insert(key).second) fail_duplicate(key_at, key, path_);
          skip_ws();
          if (!consume(':')) fail("expected ':' after key");
          skip_ws();
          path_.push_back(key);
          skip_value(depth + 1);
          path_.pop_back();
          skip_ws();
          if (eof()) fail("unexpected end of input in object");
          if (consume(',')) continue;
          if (consume('}')) return;
          fail("expected ',' or '}' in object");
        }
      }
      case '[': {
        ++i_;
        skip_ws();
        if (consume(']')) return;
        for (;;) {
          skip_ws();
          skip_value(depth + 1);
          skip_ws();
          if (eof()) fail("unexpected end of input in array");
          if (consume(',')) continue;
          if (consume(']')) return;
          fail("expected ',' or ']' in array");
        }
      }
      case '"': parse_string(); return;
      case 't': expect_literal("true"); return;
      case 'f': expect_literal("false"); return;
      case 'n': expect_literal("null"); return;
      default: {
        char c = peek();
        if (c == '-' || (c >= '0' && c <= '9')) { skip_number(); return; }
        fail(std::string("unexpected character '") + (c >= 0x20 && c < 0x7f ? std::string(1, c) : "?") + "'");
      }
    }
  }

  // Validates a whole document (one value between optional whitespace) without building it.
  void validate_document() {
    skip_ws();
    skip_value(0);
    skip_ws();
    if (i_ != n_) fail("trailing characters after the JSON value");
  }

  void rewind() { i_ = 0; }

 private:
  const char* p_;
  size_t n_;
  size_t i_ = 0;
  std::vector<std::string> path_;  // keys of the objects enclosing the current value
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
