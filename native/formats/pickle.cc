#include "pickle.h"

#include <cstring>

#include "../core/json.h"
#include "reader.h"

namespace mother {
namespace pickle {

namespace {

// The opcodes (Lib/pickletools.py names), those interpreted and those refused by name.
enum Op : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F', INT = 'I', BININT = 'J',
  BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N', PERSID = 'P', BINPERSID = 'Q', REDUCE = 'R',
  STRING = 'S', BINSTRING = 'T', SHORT_BINSTRING = 'U', UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a',
  BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h',
  INST = 'i', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p', BINPUT = 'q',
  LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
  PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85, TUPLE2 = 0x86,
  TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b, BINBYTES = 'B',
  SHORT_BINBYTES = 'C', SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f,
  ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
  BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98,
};

const char* refused_name(uint8_t op) {
  switch (op) {
    case FLOAT: return "FLOAT (protocol 0 text)";
    case INT: return "INT (protocol 0 text)";
    case LONG: return "LONG (protocol 0 text)";
    case STRING: return "STRING (protocol 0 text)";
    case UNICODE: return "UNICODE (protocol 0 text)";
    case GET: return "GET (protocol 0 text)";
    case PUT: return "PUT (protocol 0 text)";
    case PERSID: return "PERSID (protocol 0 text)";
    case OBJ: return "OBJ (builds an instance of a class on the stack)";
    case EMPTY_SET: return "EMPTY_SET";
    case ADDITEMS: return "ADDITEMS";
    case FROZENSET: return "FROZENSET";
    case BYTEARRAY8: return "BYTEARRAY8";
    case NEXT_BUFFER: return "NEXT_BUFFER (out-of-band buffer)";
    case READONLY_BUFFER: return "READONLY_BUFFER (out-of-band buffer)";
    default: return nullptr;
  }
}

std::string hex2(uint8_t b) {
  static const char* h = "0123456789abcdef";
  return std::string("0x") + h[b >> 4] + h[b & 15];
}

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::BigInt: return "int (beyond 64 bits)";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Ext: return "object";
  }
  return "?";
}

std::string printable_name(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= 200) {
      out += "...";
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char* h = "0123456789abcdef";
      out += "\\x";
      out += h[c >> 4];
      out += h[c & 15];
    }
  }
  return out;
}

Machine::Machine(Policy& policy, std::string path, std::string what, Limits limits)
    : policy_(policy), path_(std::move(path)), what_(std::move(what)), limits_(limits) {}

void Machine::fail(ErrorCode code, const std::string& what) const {
  mother::fail(code, path_, "", what_ + " (pickle offset " + std::to_string(op_offset_) + "): " + what);
}

Ref Machine::make(Object o) {
  if (objects_.size() >= limits_.max_objects)
    fail(ErrorCode::PickleLimit, "more than " + std::to_string(limits_.max_objects) + " objects");
  objects_.push_back(o);
  return static_cast<Ref>(objects_.size() - 1);
}

Ref Machine::make_none() { return make(Object{}); }
Ref Machine::make_bool(bool v) {
  Object o;
  o.kind = Kind::Bool;
  o.b = v;
  return make(o);
}
Ref Machine::make_int(int64_t v) {
  Object o;
  o.kind = Kind::Int;
  o.i = v;
  return make(o);
}
Ref Machine::make_str(std::string s, Kind kind) {
  Object o;
  o.kind = kind;
  o.data = static_cast<uint32_t>(strings_.size());
  const Ref r = make(o);
  strings_.push_back(std::move(s));
  return r;
}
void Machine::check_refs(uint64_t more) {
  if (more > limits_.max_refs - refs_)
    fail(ErrorCode::PickleLimit, "more than " + std::to_string(limits_.max_refs) + " references in tuples, lists and dicts");
  refs_ += more;
}
Ref Machine::make_list(Kind kind, std::vector<Ref> items) {
  check_refs(items.size());
  Object o;
  o.kind = kind;
  o.data = static_cast<uint32_t>(lists_.size());
  const Ref r = make(o);
  lists_.push_back(std::move(items));
  return r;
}
Ref Machine::make_global(uint32_t tag) {
  Object o;
  o.kind = Kind::Global;
  o.tag = tag;
  return make(o);
}
Ref Machine::make_ext(uint32_t tag, int64_t index) {
  Object o;
  o.kind = Kind::Ext;
  o.tag = tag;
  o.i = index;
  return make(o);
}
void Machine::append(Ref container, Ref item) {
  check_refs(1);
  lists_[objects_[container].data].push_back(item);
}

void Machine::push(Ref r) {
  if (stack_.size() >= limits_.max_stack)
    fail(ErrorCode::PickleLimit, "more than " + std::to_string(limits_.max_stack) + " values on the stack");
  stack_.push_back(r);
}

Ref Machine::pop() {
  const size_t base = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= base) fail(ErrorCode::PickleInvalid, marks_.empty() ? "stack underflow" : "stack underflow (a MARK is in the way)");
  const Ref r = stack_.back();
  stack_.pop_back();
  return r;
}

Ref Machine::top() const {
  const size_t base = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= base) fail(ErrorCode::PickleInvalid, marks_.empty() ? "stack underflow" : "stack underflow (a MARK is in the way)");
  return stack_.back();
}

std::vector<Ref> Machine::pop_to_mark() {
  if (marks_.empty()) fail(ErrorCode::PickleInvalid, "no MARK to pop to");
  const size_t base = marks_.back();
  marks_.pop_back();
  std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(base), stack_.end());
  stack_.resize(base);
  return items;
}

void Machine::memo_put(uint64_t index) {
  const Ref v = top();
  auto it = memo_.find(index);
  if (it != memo_.end()) {
    it->second = v;
    return;
  }
  if (memo_.size() >= limits_.max_memo) fail(ErrorCode::PickleLimit, "more than " + std::to_string(limits_.max_memo) + " memo entries");
  memo_.emplace(index, v);
}

Ref Machine::memo_get(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end()) fail(ErrorCode::PickleInvalid, "memo entry " + std::to_string(index) + " is read before it is written");
  return it->second;
}

Ref Machine::load(const uint8_t* data, uint64_t size, uint64_t* consumed) {
  if (size > limits_.max_bytes)
    fail(ErrorCode::PickleLimit, "the pickle is " + std::to_string(size) + " bytes (limit " + std::to_string(limits_.max_bytes) + ")");
  uint64_t pos = 0;
  auto need = [&](uint64_t n) {
    if (n > size - pos) fail(ErrorCode::PickleInvalid, "truncated: the opcode needs " + std::to_string(n) + " more bytes");
  };
  auto read = [&](uint64_t n) {
    need(n);
    const uint8_t* p = data + pos;
    pos += n;
    return p;
  };
  auto le = [](const uint8_t* p, unsigned n) {
    uint64_t v = 0;
    for (unsigned k = n; k-- > 0;) v = (v << 8) | p[k];
    return v;
  };
  auto text = [&](uint64_t n, Kind kind) {
    const uint8_t* p = read(n);
    std::string s(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    size_t bad = 0;
    if (kind == Kind::Str && !json::valid_utf8(s.data(), s.size(), &bad))
      fail(ErrorCode::PickleInvalid, "a string of " + std::to_string(n) + " bytes is not valid UTF-8 (byte " + std::to_string(bad) + ")");
    push(make_str(std::move(s), kind));
  };
  auto line = [&]() {
    // A GLOBAL / INST argument: bytes up to a newline, at most max_global of them.
    const uint64_t limit = size - pos < limits_.max_global + 1 ? size - pos : limits_.max_global + 1;
    const void* nl = std::memchr(data + pos, '\n', static_cast<size_t>(limit));
    if (!nl) {
      if (limit == size - pos) fail(ErrorCode::PickleInvalid, "truncated: a global's name has no terminating newline");
      fail(ErrorCode::PickleLimit, "a global's module or name is longer than " + std::to_string(limits_.max_global) + " bytes");
    }
    const uint64_t n = static_cast<const uint8_t*>(nl) - (data + pos);
    std::string s(reinterpret_cast<const char*>(data + pos), static_cast<size_t>(n));
    pos += n + 1;
    return s;
  };
  auto long_int = [&](uint64_t n) {
    const uint8_t* p = read(n);
    if (n <= 8) {
      uint64_t v = n == 0 ? 0 : le(p, static_cast<unsigned>(n));
      if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~0ull << (8 * n);  // sign-extend
      push(make_int(static_cast<int64_t>(v)));
      return;
    }
    if (n > limits_.max_bigint) fail(ErrorCode::PickleLimit, "an integer of " + std::to_string(n) + " bytes");
    push(make_str(std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)), Kind::BigInt));
  };
  auto make_tuple = [&](std::vector<Ref> items) { push(make_list(Kind::Tuple, std::move(items))); };
  auto require = [&](Ref r, Kind k, const char* opname) {
    if (objects_[r].kind != k)
      fail(ErrorCode::PickleInvalid, std::string(opname) + " expects a " + kind_name(k) + ", got a " + kind_name(objects_[r].kind));
  };
  auto named_global = [&](const std::string& module, const std::string& name) { return make_global(policy_.global(*this, module, name)); };

  while (true) {
    op_offset_ = pos;
    if (pos >= size) fail(ErrorCode::PickleInvalid, "truncated: no STOP opcode");
    const uint8_t op = data[pos++];
    switch (op) {
      case PROTO: {
        const uint8_t v = *read(1);
        if (v < 2 || v > 5) fail(ErrorCode::PickleInvalid, "pickle protocol " + std::to_string(v) + " (protocols 2 to 5 are read)");
        break;
      }
      case FRAME: {
        const uint64_t n = le(read(8), 8);
        if (n > size - pos) fail(ErrorCode::PickleInvalid, "truncated: a FRAME of " + std::to_string(n) + " bytes runs past the end");
        break;  // framing only groups the opcodes that follow
      }
      case STOP: {
        const Ref v = pop();
        if (!marks_.empty() || !stack_.empty())
          fail(ErrorCode::PickleInvalid, "STOP with " + std::to_string(stack_.size()) + " values and " + std::to_string(marks_.size()) +
                                             " MARKs left on the stack");
        *consumed = pos;
        return v;
      }
      case MARK:
        if (marks_.size() >= limits_.max_marks)
          fail(ErrorCode::PickleLimit, "more than " + std::to_string(limits_.max_marks) + " nested MARKs");
        marks_.push_back(stack_.size());
        break;
      case POP: {
        const size_t base = marks_.empty() ? 0 : marks_.back();
        if (stack_.size() > base) stack_.pop_back();
        else pop_to_mark();
        break;
      }
      case POP_MARK: pop_to_mark(); break;
      case DUP: push(top()); break;
      case NONE: push(make_none()); break;
      case NEWTRUE: push(make_bool(true)); break;
      case NEWFALSE: push(make_bool(false)); break;
      case BININT: push(make_int(static_cast<int32_t>(static_cast<uint32_t>(le(read(4), 4))))); break;
      case BININT1: push(make_int(*read(1))); break;
      case BININT2: push(make_int(static_cast<int64_t>(le(read(2), 2)))); break;
      case LONG1: long_int(*read(1)); break;
      case LONG4: {
        const int32_t n = static_cast<int32_t>(static_cast<uint32_t>(le(read(4), 4)));
        if (n < 0) fail(ErrorCode::PickleInvalid, "LONG4 with a negative length");
        long_int(static_cast<uint64_t>(n));
        break;
      }
      case BINFLOAT: {
        const uint8_t* p = read(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];  // big-endian
        Object o;
        o.kind = Kind::Float;
        std::memcpy(&o.f, &bits, 8);
        push(make(o));
        break;
      }
      case SHORT_BINUNICODE: text(*read(1), Kind::Str); break;
      case BINUNICODE: text(le(read(4), 4), Kind::Str); break;
      case BINUNICODE8: text(le(read(8), 8), Kind::Str); break;
      case SHORT_BINSTRING: text(*read(1), Kind::Str); break;  // Python 2 str, decoded as UTF-8 (torch.load's encoding)
      case BINSTRING: {
        const int32_t n = static_cast<int32_t>(static_cast<uint32_t>(le(read(4), 4)));
        if (n < 0) fail(ErrorCode::PickleInvalid, "BINSTRING with a negative length");
        text(static_cast<uint64_t>(n), Kind::Str);
        break;
      }
      case SHORT_BINBYTES: text(*read(1), Kind::Bytes); break;
      case BINBYTES: text(le(read(4), 4), Kind::Bytes); break;
      case BINBYTES8: text(le(read(8), 8), Kind::Bytes); break;
      case EMPTY_TUPLE: make_tuple({}); break;
      case TUPLE: make_tuple(pop_to_mark()); break;
      case TUPLE1: {
        const Ref a = pop();
        make_tuple({a});
        break;
      }
      case TUPLE2: {
        const Ref b = pop(), a = pop();
        make_tuple({a, b});
        break;
      }
      case TUPLE3: {
        const Ref c = pop(), b = pop(), a = pop();
        make_tuple({a, b, c});
        break;
      }
      case EMPTY_LIST: push(make_list(Kind::List, {})); break;
      case LIST: push(make_list(Kind::List, pop_to_mark())); break;
      case EMPTY_DICT: push(make_list(Kind::Dict, {})); break;
      case DICT: {
        std::vector<Ref> kv = pop_to_mark();
        if (kv.size() % 2) fail(ErrorCode::PickleInvalid, "DICT with an odd number of items");
        push(make_list(Kind::Dict, std::move(kv)));
        break;
      }
      case APPEND: {
        const Ref v = pop();
        const Ref l = top();
        require(l, Kind::List, "APPEND");
        append(l, v);
        break;
      }
      case APPENDS: {
        std::vector<Ref> items = pop_to_mark();
        const Ref l = top();
        require(l, Kind::List, "APPENDS");
        check_refs(items.size());
        auto& dst = lists_[objects_[l].data];
        dst.insert(dst.end(), items.begin(), items.end());
        break;
      }
      case SETITEM: {
        const Ref v = pop(), k = pop();
        const Ref d = top();
        require(d, Kind::Dict, "SETITEM");
        check_refs(2);
        auto& dst = lists_[objects_[d].data];
        dst.push_back(k);
        dst.push_back(v);
        break;
      }
      case SETITEMS: {
        std::vector<Ref> kv = pop_to_mark();
        if (kv.size() % 2) fail(ErrorCode::PickleInvalid, "SETITEMS with an odd number of items");
        const Ref d = top();
        require(d, Kind::Dict, "SETITEMS");
        check_refs(kv.size());
        auto& dst = lists_[objects_[d].data];
        dst.insert(dst.end(), kv.begin(), kv.end());
        break;
      }
      case GLOBAL: {
        const std::string module = line();
        const std::string name = line();
        push(named_global(module, name));
        break;
      }
      case STACK_GLOBAL: {
        const Ref name = pop(), module = pop();
        require(module, Kind::Str, "STACK_GLOBAL");
        require(name, Kind::Str, "STACK_GLOBAL");
        push(named_global(str(module), str(name)));
        break;
      }
      case INST: {
        // INST module name: calls a class with the values above the MARK. The global is looked
        // up first, so that one outside the allow-list is refused as such; none is interpreted.
        const std::string module = line();
        const std::string name = line();
        policy_.global(*this, module, name);
        fail(ErrorCode::PickleInvalid, "opcode INST (protocol 0 instance creation) is not interpreted");
      }
      case EXT1: case EXT2: case EXT4: {
        const unsigned n = op == EXT1 ? 1 : op == EXT2 ? 2 : 4;
        const uint64_t code = le(read(n), n);
        fail(ErrorCode::UnsafePickle, "extension code " + std::to_string(code) +
                                          " (a global from the copyreg extension registry) is not in the allow-list; nothing from the file is run");
      }
      case REDUCE: {
        const Ref args = pop();
        const Ref fn = top();
        require(fn, Kind::Global, "REDUCE");
        require(args, Kind::Tuple, "REDUCE");
        const Ref r = policy_.reduce(*this, fn, args);
        stack_.back() = r;
        break;
      }
      case BUILD: {
        const Ref state = pop();
        const Ref inst = top();
        const Ref r = policy_.build(*this, inst, state);
        stack_.back() = r;
        break;
      }
      case NEWOBJ: {
        const Ref args = pop(), cls = pop();
        require(cls, Kind::Global, "NEWOBJ");
        require(args, Kind::Tuple, "NEWOBJ");
        push(policy_.newobj(*this, cls, args));
        break;
      }
      case NEWOBJ_EX: {
        const Ref kwargs = pop(), args = pop(), cls = pop();
        require(cls, Kind::Global, "NEWOBJ_EX");
        require(args, Kind::Tuple, "NEWOBJ_EX");
        require(kwargs, Kind::Dict, "NEWOBJ_EX");
        if (!items(kwargs).empty()) fail(ErrorCode::PickleInvalid, "NEWOBJ_EX with keyword arguments");
        push(policy_.newobj(*this, cls, args));
        break;
      }
      case BINPERSID: {
        const Ref pid = pop();
        push(policy_.persistent_load(*this, pid));
        break;
      }
      case BINGET: push(memo_get(*read(1))); break;
      case LONG_BINGET: push(memo_get(le(read(4), 4))); break;
      case BINPUT: memo_put(*read(1)); break;
      case LONG_BINPUT: memo_put(le(read(4), 4)); break;
      case MEMOIZE: memo_put(memo_.size()); break;
      default: {
        const char* name = refused_name(op);
        fail(ErrorCode::PickleInvalid, name ? std::string("opcode ") + name + " is not interpreted"
                                            : "unknown opcode " + hex2(op));
      }
    }
  }
}

}  // namespace pickle
}  // namespace mother
