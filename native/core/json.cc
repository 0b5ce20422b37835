#include "json.h"

#include <unordered_set>

namespace mother {
namespace json {

namespace {

constexpr int kMaxDepth = 128;

class Parser {
 public:
  Parser(const char* p, size_t n) : p_(p), n_(n) {}

  Value parse_document() {
    skip_ws();
    Value v = parse_value(0);
    skip_ws();
    if (i_ != n_) fail("trailing characters after the JSON value");
    return v;
  }

 private:
  const char* p_;
  size_t n_;
  size_t i_ = 0;
  std::vector<std::string> path_;  // keys of the objects enclosing the current value

  [[noreturn]] void fail(const std::string& msg) { throw ParseError{i_, msg}; }

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

  std::string parse_number() {
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
    return std::string(p_ + start, i_ - start);
  }
};

}  // namespace

const Value* Value::find(const std::string& key) const {
  for (const auto& m : members)
    if (m.first == key) return &m.second;
  return nullptr;
}

bool valid_utf8(const char* s, size_t n, size_t* bad_offset) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s);
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else { if (bad_offset) *bad_offset = i; return false; }
    if (n - i < len) { if (bad_offset) *bad_offset = i; return false; }
    for (size_t k = 1; k < len; ++k) {
      unsigned char d = p[i + k];
      if ((d & 0xC0) != 0x80) { if (bad_offset) *bad_offset = i; return false; }
      cp = (cp << 6) | (d & 0x3F);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    if (overlong || surrogate || cp > 0x10FFFF) { if (bad_offset) *bad_offset = i; return false; }
    i += len;
  }
  return true;
}

Value parse(const char* p, size_t n) {
  Parser parser(p, n);
  return parser.parse_document();
}

bool to_u64(const Value& v, uint64_t* out) {
  if (v.kind != Value::Kind::Number || v.text.empty()) return false;
  uint64_t r = 0;
  for (char c : v.text) {
    if (c < '0' || c > '9') return false;  // sign, fraction or exponent
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (r > (UINT64_MAX - d) / 10) return false;
    r = r * 10 + d;
  }
  *out = r;
  return true;
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::Null: return "null";
    case Value::Kind::Bool: return "boolean";
    case Value::Kind::Number: return "number";
    case Value::Kind::String: return "string";
    case Value::Kind::Array: return "array";
    case Value::Kind::Object: return "object";
  }
  return "?";
}

}  // namespace json
}  // namespace mother
